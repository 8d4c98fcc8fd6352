"""The Gradio page of ``puppetry serve``: animate, preview with sliders, and live webcam puppetry.

The layout only wires widgets to :mod:`puppetry.app.sessions`. Element ids (``elem_id``) are stable
names for scripts and the browser tests: source, use-astronaut, driving, motion, driving-webcam,
engine, mode, region, multiplier, concat, stitching, paste-back, checkpoint-dir, apply-controls, eyes,
lips, yaw, pitch, roll, preview, run, result, status, live-webcam, live-output, live-reset.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")      # the app never phones home

import gradio as gr  # noqa: E402
import numpy as np

from puppetry.app.sessions import (ASTRONAUT, AppConfig, LiveSession, PreviewCache, RenderSettings, message,
                                   render_preview, run_render, slider_controls)
from puppetry.engines.registry import available_engines
from puppetry.motion.procedural import MOTIONS
from puppetry.motion.regions import REGIONS

logger = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)

NO_MOTION = "(none)"
INTRO = ("Upload a portrait (or pick the astronaut), drive it with a video, an image, a motion template, a "
         "built-in motion or your webcam, and press **Run**. The sliders change the still preview at once.")


def _settings(engine, mode, region, multiplier, concat, stitching, paste_back, checkpoint_dir, apply_controls,
              eyes, lips, yaw, pitch, roll) -> RenderSettings:
    controls = slider_controls(eyes, lips, yaw, pitch, roll) if apply_controls else slider_controls(1, 0, 0, 0, 0)
    return RenderSettings(engine=engine, relative=(mode == "relative"), region=region, multiplier=multiplier,
                          concat=bool(concat), stitching=bool(stitching), paste_back=bool(paste_back),
                          checkpoint_dir=checkpoint_dir or "", controls=controls)


def build_app(config: AppConfig = AppConfig()) -> gr.Blocks:
    """The page (not yet launched)."""
    cache = PreviewCache(max_size=config.preview_size)

    def on_source(path):
        return path, "" if path else "Upload a portrait or pick the astronaut."

    def on_preview(source, engine, checkpoint_dir, eyes, lips, yaw, pitch, roll):
        try:
            settings = RenderSettings(engine=engine, checkpoint_dir=checkpoint_dir or "",
                                      controls=slider_controls(eyes, lips, yaw, pitch, roll))
            return render_preview(cache, source, settings), ""
        except Exception as exc:                    # shown on the page; the app keeps serving
            return None, f"**Error:** {message(exc, [source])}"

    def on_run(source, driving_file, webcam_video, motion, *options, progress=gr.Progress(track_tqdm=True)):
        driving = driving_file or webcam_video or (motion if motion != NO_MOTION else None)
        try:
            result = run_render(source, driving, _settings(*options), config)
            return result, "Done."
        except Exception as exc:
            return None, f"**Error:** {message(exc, [source, driving])}"

    def on_live(frame, source, session):
        if frame is None:
            return None, session
        try:
            if session is None or session.source != source:
                if session is not None:
                    session.close()
                session = LiveSession(source or ASTRONAUT, config.live_size)
            return session.process(np.asarray(frame)), session
        except Exception as exc:
            logger.warning("live frame dropped: %s", message(exc))
            return None, session

    def on_live_reset(session):
        if session is not None:
            session.reset()
        return session

    with gr.Blocks(title="puppetry") as app:
        gr.Markdown("# puppetry\n" + INTRO)
        source = gr.State(ASTRONAUT)
        with gr.Tab("Animate"):
            with gr.Row():
                with gr.Column():
                    source_file = gr.File(label="Source portrait (image, or a video for LivePortrait editing)",
                                          file_types=["image", "video"], elem_id="source")
                    astronaut = gr.Button("Use the astronaut (example)", elem_id="use-astronaut", size="sm")
                    preview = gr.Image(label="Preview (sliders, no driving)", type="numpy", interactive=False,
                                       elem_id="preview")
                with gr.Column():
                    driving_file = gr.File(label="Driving video, image or motion template (.npz, .pkl)",
                                           file_types=["image", "video", ".npz", ".pkl"], elem_id="driving")
                    webcam_video = gr.Video(label="...or record the driving video with the webcam",
                                            sources=["webcam"], elem_id="driving-webcam")
                    motion = gr.Dropdown([NO_MOTION] + list(MOTIONS), value="demo", elem_id="motion",
                                         label="...or a built-in motion (used when no driving file is given)")
            with gr.Row():
                engine = gr.Dropdown(available_engines(), value="warp", label="Engine", elem_id="engine")
                mode = gr.Radio(["relative", "absolute"], value="relative", label="Motion", elem_id="mode")
                region = gr.Dropdown(list(REGIONS), value="all", label="Region", elem_id="region")
                multiplier = gr.Slider(0, 2, value=1, step=0.05, label="Multiplier", elem_id="multiplier")
                concat = gr.Checkbox(False, label="driving | source | result", elem_id="concat")
            with gr.Accordion("LivePortrait options", open=False):
                stitching = gr.Checkbox(True, label="Stitching", elem_id="stitching")
                paste_back = gr.Checkbox(True, label="Paste back into the full image", elem_id="paste-back")
                checkpoint_dir = gr.Textbox(label="Weights folder (default: $PUPPETRY_LIVEPORTRAIT_DIR)",
                                            elem_id="checkpoint-dir")
            with gr.Row():
                eyes = gr.Slider(0, 1, value=1, step=0.05, label="Eyes open (1: as in the source)", elem_id="eyes")
                lips = gr.Slider(0, 1, value=0, step=0.05, label="Lips open (0: as in the source)", elem_id="lips")
                yaw = gr.Slider(-30, 30, value=0, step=1, label="Yaw °", elem_id="yaw")
                pitch = gr.Slider(-20, 20, value=0, step=1, label="Pitch °", elem_id="pitch")
                roll = gr.Slider(-30, 30, value=0, step=1, label="Roll °", elem_id="roll")
            apply_controls = gr.Checkbox(False, label="Apply the sliders to the animation too",
                                         elem_id="apply-controls")
            run = gr.Button("Run", variant="primary", elem_id="run")
            status = gr.Markdown(elem_id="status")
            result = gr.Video(label="Result", interactive=False, height=512, elem_id="result")

        with gr.Tab("Live"):
            gr.Markdown("Your webcam drives the source portrait (warp engine) in real time. Look straight at the "
                        "camera at first: that frame is the rest pose; **Reset** takes a new one.")
            with gr.Row():
                live_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                   elem_id="live-webcam", webcam_constraints={"video": {"width": 640, "height": 480}})
                live_out = gr.Image(label="Animated", type="numpy", format="jpeg", elem_id="live-output")
            live_reset = gr.Button("Reset", elem_id="live-reset")
            live_state = gr.State(None)

        sliders = [eyes, lips, yaw, pitch, roll]
        preview_inputs = [source, engine, checkpoint_dir, *sliders]
        # Previews run one at a time in the order asked for, so a late one never overwrites a newer one.
        in_order = dict(concurrency_id="preview", concurrency_limit=1)
        source_file.change(on_source, [source_file], [source, status]).then(
            on_preview, preview_inputs, [preview, status], **in_order)
        astronaut.click(lambda: (ASTRONAUT, None), None, [source, source_file]).then(
            on_preview, preview_inputs, [preview, status], **in_order)
        for s in sliders:
            s.release(on_preview, preview_inputs, [preview, status], **in_order)
        options = [engine, mode, region, multiplier, concat, stitching, paste_back, checkpoint_dir, apply_controls,
                   *sliders]
        run.click(on_run, [source, driving_file, webcam_video, motion, *options], [result, status])
        live_in.stream(on_live, [live_in, source, live_state], [live_out, live_state], stream_every=0.05,
                       concurrency_limit=None)
        live_reset.click(on_live_reset, [live_state], [live_state])
        app.load(on_preview, preview_inputs, [preview, status], **in_order)
    app.queue(default_concurrency_limit=config.concurrency, max_size=config.queue_size)
    return app


def serve(config: AppConfig = AppConfig(), host: str = "127.0.0.1", port: int = 7860, share: bool = False,
          block: bool = True) -> gr.Blocks:
    """Build and launch the page (``puppetry serve``)."""
    app = build_app(config)
    app.launch(server_name=host, server_port=port, share=share, max_file_size=f"{config.max_upload_mb}mb",
               prevent_thread_lock=not block, show_error=True, quiet=True)
    return app
