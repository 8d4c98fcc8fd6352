"""``puppetry serve``: the web app on localhost."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger("puppetry")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the web app",
                       description="Start the puppetry web page (Gradio): animate, preview with sliders and "
                                   "puppeteer live from the webcam.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--max-upload-mb", type=int, default=200, help="largest upload in MB (default 200)")
    p.add_argument("--concurrency", type=int, default=2, help="renders at once; others queue (default 2)")
    p.add_argument("--live-size", type=int, default=384, help="longer side of the source in live mode (default 384)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise ValueError("--port must be between 1 and 65535")
    if args.max_upload_mb < 1 or args.concurrency < 1:
        raise ValueError("--max-upload-mb and --concurrency must be at least 1")
    if not 128 <= args.live_size <= 1024:
        raise ValueError("--live-size must be between 128 and 1024")
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise ValueError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); pick another --port") from None
    from puppetry.app.sessions import AppConfig
    from puppetry.app.server import serve

    config = AppConfig(max_upload_mb=args.max_upload_mb, concurrency=args.concurrency, live_size=args.live_size)
    logger.info("serving on http://%s:%d (Ctrl+C stops)", args.host, args.port)
    serve(config, args.host, args.port, args.share, block=True)
    return 0
