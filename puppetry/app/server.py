"""The Gradio page of ``puppetry serve``: animate, preview with sliders, and live webcam puppetry.

The layout only wires widgets to :mod:`puppetry.app.sessions`. Element ids (``elem_id``) are stable
names for scripts and the browser tests: source, use-astronaut, driving, motion, driving-webcam, speech,
engine, mode, region, multiplier, concat, weights-dir, apply-controls, eyes, lips, yaw, pitch, roll,
preview, run, result, status, one checkbox per engine switch that a method's descriptor shows in the app
(its config key with dashes: stitching, paste-back); live mode: live-start, live-stop, live-reset,
live-video (the webcam), live-canvas (the animated source), live-status, live-token.

Live mode does not use Gradio's event queue: ``live.js`` streams webcam JPEGs over the WebSocket of
:mod:`puppetry.app.live_socket` (mounted at ``/live/ws`` by :func:`serve`), which answers each with the
animated source. The page's source reaches the socket as an opaque token (``live-token``).
"""

from __future__ import annotations

import html
import logging
import os
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")      # the app never phones home

import gradio as gr  # noqa: E402

from puppetry.app.live_socket import ROUTE, LiveEndpoint, SourceTokens
from puppetry.app.render_jobs import RenderJobs, RenderStopped
from puppetry.app.sessions import (ASTRONAUT, LIVE_ENGINE, SPEECH_MODEL, AppConfig, PreviewCache, RenderSettings,
                                   message, remove_result, render_preview, run_render, slider_controls)
from puppetry.methods.registry import DEFAULT_ENGINE, app_switches, engine_names, methods, speech_method
from puppetry.motion.procedural import MOTIONS
from puppetry.motion.regions import REGIONS

logger = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)

NO_MOTION = "(none)"
WEIGHTS_FOLDER_ENGINES = [m.name for m in methods() if m.app_weights_key is not None]
SPEECH_ENV = speech_method().speech_weights_env
LIVE_JS = (Path(__file__).with_name("live.js")).read_text(encoding="utf-8")
LIVE_PANEL = """
<div style="display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start">
  <figure style="margin:0"><video id="live-video" autoplay muted playsinline
     style="width:320px;max-width:100%;background:#222"></video><figcaption>Webcam</figcaption></figure>
  <figure style="margin:0"><canvas id="live-canvas" width="384" height="384"
     style="max-width:100%;background:#222"></canvas><figcaption>Animated</figcaption></figure>
</div>
<div style="margin-top:8px">
  <button id="live-start" class="lg primary">Start</button>
  <button id="live-stop" class="lg secondary">Stop</button>
  <button id="live-reset" class="lg secondary">Reset</button>
  <span id="live-status" style="margin-left:12px"></span>
</div>
"""


def _token_html(token: str) -> str:
    return f'<span id="live-token" data-token="{html.escape(token, quote=True)}"></span>'


INTRO = ("Upload a portrait (or pick the astronaut), drive it with a video, an image, a motion template, a "
         "built-in motion, your webcam or speech, and press **Run**. The sliders change the still preview at once.")


def _settings(engine, mode, region, multiplier, concat, weights_dir, apply_controls, eyes, lips, yaw, pitch, roll,
              *switches) -> RenderSettings:
    controls = slider_controls(eyes, lips, yaw, pitch, roll) if apply_controls else slider_controls(1, 0, 0, 0, 0)
    keys = [option.key for option, _ in app_switches()]
    return RenderSettings(engine=engine, relative=(mode == "relative"), region=region, multiplier=multiplier,
                          concat=bool(concat), switches={k: bool(v) for k, v in zip(keys, switches)},
                          weights_dir=weights_dir or "", controls=controls)


def run_page(config: AppConfig, source: str | None, driving_file: str | None, webcam_video: str | None,
             motion: str | None, speech: str | None, *options, stop: threading.Event | None = None
             ) -> tuple[str | None, str]:
    """What **Run** does with the page's values: (the result video or None, the status line).

    Speech replaces the built-in motion; a driving file or webcam video given with it is refused.
    """
    recorded = driving_file or webcam_video
    driving = recorded if speech else recorded or (motion if motion and motion != NO_MOTION else None)
    try:
        return run_render(source, driving, _settings(*options), config, speech=speech or None, stop=stop), "Done."
    except Exception as exc:                        # shown on the page; the app keeps serving
        return None, f"**Error:** {message(exc, [source, driving, speech])}"


def webcam_recorder(**kwargs) -> gr.Video:
    """The webcam recorder for the driving video, whose recording reaches the render as uploaded.

    Gradio's ``Video`` mirrors and mutes a webcam recording with the ``ffmpeg`` program before the render
    sees it: without that program (the app needs none otherwise: PyAV reads and writes the media) every
    recording failed with "Executable 'ffmpeg' not found", and a recording that is not a video gave an
    ffmpeg error instead of the status line. This one is not mirrored (as the live mode's webcam, so both
    drive the source alike) and records no sound, so there is nothing to convert: its ``preprocess`` hands
    the upload on (a subclass would make Gradio write a ``.pyi`` stub beside this module).
    """
    video = gr.Video(sources=["webcam"], webcam_options=gr.WebcamOptions(mirror=False), include_audio=False,
                     **kwargs)

    def recording(payload) -> str | None:
        return None if payload is None or not payload.video.path else str(payload.video.path)

    video.preprocess = recording                    # type: ignore[method-assign]
    return video


def build_app(config: AppConfig = AppConfig(), tokens: SourceTokens | None = None) -> gr.Blocks:
    """The page (not yet launched); ``tokens`` names sources for the live socket.

    Each Run renders in a thread of its own (:class:`~puppetry.app.render_jobs.RenderJobs`) that stops when
    the request is cancelled or its page closes, and leaves nothing behind.
    """
    cache = PreviewCache(max_size=config.preview_size)
    tokens = tokens if tokens is not None else SourceTokens()
    jobs = RenderJobs()

    def on_source(path):
        return path, "" if path else "Upload a portrait or pick the astronaut.", _token_html(tokens.issue(path))

    def on_astronaut():
        return ASTRONAUT, None, _token_html(ASTRONAUT)

    def on_preview(source, engine, weights_dir, eyes, lips, yaw, pitch, roll):
        try:
            settings = RenderSettings(engine=engine, weights_dir=weights_dir or "",
                                      controls=slider_controls(eyes, lips, yaw, pitch, roll))
            return render_preview(cache, source, settings), ""
        except Exception as exc:                    # shown on the page; the app keeps serving
            return None, f"**Error:** {message(exc, [source])}"

    async def on_run(request: gr.Request, source, driving_file, webcam_video, motion, speech, *options,
                     progress=gr.Progress(track_tqdm=True)):
        def work(stop: threading.Event) -> tuple[str | None, str]:
            return run_page(config, source, driving_file, webcam_video, motion, speech, *options, stop=stop)

        try:
            return await jobs.run(getattr(request, "session_hash", None), work,
                                  discard=lambda result: remove_result(result[0]))
        except RenderStopped as exc:
            return None, f"**Error:** {message(exc)}"

    def on_unload(request: gr.Request) -> None:
        jobs.stop(getattr(request, "session_hash", None), "the page was closed")

    with gr.Blocks(title="puppetry", head=f"<script>{LIVE_JS}</script>") as app:
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
                    webcam_video = webcam_recorder(label="...or record the driving video with the webcam",
                                                   elem_id="driving-webcam")
                    motion = gr.Dropdown([NO_MOTION] + list(MOTIONS), value="demo", elem_id="motion",
                                         label="...or a built-in motion (used when no driving file is given)")
                    # format=None: the recording reaches the render as uploaded (no converted copy to clean up)
                    speech = gr.Audio(sources=["upload", "microphone"], type="filepath", format=None,
                                      label="...or speech: upload a recording or record with the microphone "
                                            f"(replaces the motion; needs a speech model, {SPEECH_MODEL})",
                                      elem_id="speech")
            with gr.Row():
                engine = gr.Dropdown(engine_names(), value=DEFAULT_ENGINE, label="Engine", elem_id="engine")
                mode = gr.Radio(["relative", "absolute"], value="relative", label="Motion", elem_id="mode")
                region = gr.Dropdown(list(REGIONS), value="all", label="Region", elem_id="region")
                multiplier = gr.Slider(0, 2, value=1, step=0.05, label="Multiplier", elem_id="multiplier")
                concat = gr.Checkbox(False, label="driving | source | result", elem_id="concat")
            with gr.Accordion("Engine options", open=False):
                switches = [gr.Checkbox(True, label=f"{option.app_label} ({', '.join(owners)})", elem_id=option.elem_id)
                            for option, owners in app_switches()]
                weights_dir = gr.Textbox(label=f"Weights folder ({', '.join(WEIGHTS_FOLDER_ENGINES)}; for speech "
                                               f"one holding {SPEECH_MODEL}; default: each engine's own flag or "
                                               f"environment variable, ${SPEECH_ENV} for speech)",
                                         elem_id="weights-dir")
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
            gr.Markdown(f"Your webcam drives the source portrait ({LIVE_ENGINE} engine) in real time. Look straight at the "
                        "camera at first: that frame is the rest pose; **Reset** takes a new one.")
            gr.HTML(LIVE_PANEL, padding=False)
            live_token = gr.HTML(_token_html(ASTRONAUT), elem_id="live-token-holder", padding=False)

        sliders = [eyes, lips, yaw, pitch, roll]
        preview_inputs = [source, engine, weights_dir, *sliders]
        # Previews run one at a time in the order asked for, so a late one never overwrites a newer one.
        in_order = dict(concurrency_id="preview", concurrency_limit=1)
        source_file.change(on_source, [source_file], [source, status, live_token]).then(
            on_preview, preview_inputs, [preview, status], **in_order)
        astronaut.click(on_astronaut, None, [source, source_file, live_token]).then(
            on_preview, preview_inputs, [preview, status], **in_order)
        for s in sliders:
            s.release(on_preview, preview_inputs, [preview, status], **in_order)
        options = [engine, mode, region, multiplier, concat, weights_dir, apply_controls, *sliders, *switches]
        run.click(on_run, [source, driving_file, webcam_video, motion, speech, *options], [result, status])
        app.load(on_preview, preview_inputs, [preview, status], **in_order)
        app.unload(on_unload)
    app.queue(default_concurrency_limit=config.concurrency, max_size=config.queue_size)
    return app


def serve(config: AppConfig = AppConfig(), host: str = "127.0.0.1", port: int = 7860, share: bool = False,
          block: bool = True) -> gr.Blocks:
    """Build and launch the page (``puppetry serve``) with the live socket at ``/live/ws``."""
    tokens = SourceTokens()
    app = build_app(config, tokens)
    app.launch(server_name=host, server_port=port, share=share, max_file_size=f"{config.max_upload_mb}mb",
               prevent_thread_lock=True, show_error=True, quiet=True)
    app.app.add_api_websocket_route(ROUTE, LiveEndpoint(config, tokens))
    if block:
        app.block_thread()
    return app
