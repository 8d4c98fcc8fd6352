"""What the web app does, without the page: previews, renders and live sessions.

Every function here takes plain values (paths, numbers) and returns plain values, so the page
(:mod:`puppetry.app.server`) stays a thin layout and these can be tested without a browser.

Isolation between users: every render writes into its own temporary folder; prepared sources for
previews are cached by (source file, engine options) with one lock per entry, and every live session
owns its own :class:`~puppetry.pipeline.animate.Animator`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from puppetry.errors import MediaError, MotionError, PuppetryError, WeightsError
from puppetry.methods.registry import DEFAULT_ENGINE, engine_method, speech_method
from puppetry.media.video import is_video_path
from puppetry.motion.controls import Controls
from puppetry.pipeline.animate import AnimateOptions, Animator, animate
from puppetry.pipeline.speech import speech_weights

logger = logging.getLogger(__name__)

ASTRONAUT = "astronaut"
LIVE_ENGINE = DEFAULT_ENGINE          # live mode runs the default, training-free engine
SPEECH_MODEL = "audio2motion.pt"      # the speech model's file name in the page's weights folder


@dataclass(frozen=True)
class AppConfig:
    """Settings of ``puppetry serve``.

    Attributes:
        max_upload_mb: largest accepted upload.
        concurrency: renders running at once (others wait in the queue).
        queue_size: most requests waiting; more are refused with a message.
        preview_size: longer side of the source in previews.
        live_size: longer side of the source in live mode (256 to 512 keeps 15+ fps on 2 cores).
        max_frames: most driving frames rendered per request (None: all).
        output_dir: where results are written (a temporary folder by default).
    """

    max_upload_mb: int = 200
    concurrency: int = 2
    queue_size: int = 16
    preview_size: int = 512
    live_size: int = 384
    max_frames: int | None = 1800
    output_dir: str | None = None


@dataclass
class RenderSettings:
    """The page's animation options.

    Attributes:
        switches: the engine checkboxes of the page (options with an ``app_label`` in their method's
            descriptor), by config key: ticked (True) keeps the config's default, unticked sets the switch.
        weights_dir: the page's weights folder; it sets the engine's ``app_weights_key`` (LivePortrait's
            release folder, or one holding wggan.pt and hrhgan.pt) and holds the speech model
            (:data:`SPEECH_MODEL`) when it has one.
    """

    engine: str = DEFAULT_ENGINE
    relative: bool = True
    region: str = "all"
    multiplier: float = 1.0
    concat: bool = False
    switches: dict[str, bool] = field(default_factory=dict)
    weights_dir: str = ""
    controls: Controls = field(default_factory=Controls)

    def engine_options(self) -> dict:
        """The engine's config values that the page sets."""
        method = engine_method(self.engine)
        options = {o.key: (not o.switch) if self.switches.get(o.key, True) else o.switch
                   for o in method.options if o.app_label is not None}
        if method.app_weights_key is not None and self.weights_dir.strip():
            options[method.app_weights_key] = self.weights_dir.strip()
        return options

    def options(self, max_size: int = 2048, max_frames: int | None = None, speech: str | None = None) -> AnimateOptions:
        """The pipeline's options; ``speech`` (a recording) drives the motion with the folder's speech model."""
        return AnimateOptions(engine=self.engine, relative=self.relative, region=self.region,
                              multiplier=float(self.multiplier), concat=self.concat, controls=self.controls,
                              max_size=max_size, max_frames=max_frames, progress=True,
                              engine_options=self.engine_options(), audio=speech,
                              audio_weights=speech_model(self.weights_dir) if speech else None)


def speech_model(weights_dir: str) -> str | None:
    """The speech model in the page's weights folder, or None (the method's environment variable is used)."""
    folder = (weights_dir or "").strip()
    path = Path(folder) / SPEECH_MODEL if folder else None
    return str(path) if path is not None and path.is_file() else None


def check_speech(source: str, settings: RenderSettings) -> None:
    """Refuse, in the page's words, what speech cannot drive: no model, absolute motion, a video source."""
    try:
        speech_weights(speech_model(settings.weights_dir))
    except WeightsError:
        method = speech_method()
        raise WeightsError(f"speech needs a trained speech model: put {SPEECH_MODEL} (from 'puppetry train "
                           f"{next(iter(method.recipes), method.name)}') in the Weights folder or set "
                           f"${method.speech_weights_env}") from None
    if not settings.relative:
        raise MotionError("speech drives relative motion (the change from a closed mouth); set Motion to relative")
    if is_video_path(source):
        raise MotionError("speech drives a still portrait; the source is a video")


def slider_controls(eyes: float, lips: float, yaw: float, pitch: float, roll: float) -> Controls:
    """Controls from the page's sliders. The sliders start at the source as it is: eyes at 1 and lips at 0
    mean "leave them" (no control), so a portrait that smiles with open lips keeps its smile."""
    return Controls(eyes=None if float(eyes) >= 1.0 else float(eyes), lips=None if float(lips) <= 0.0 else float(lips),
                    yaw=float(yaw), pitch=float(pitch), roll=float(roll))


def check_upload(path: str | None, max_mb: int, what: str) -> None:
    """Refuse a missing or too-large upload with one line."""
    if path is None or path == ASTRONAUT:
        return
    if not os.path.isfile(path):
        raise MediaError(f"the {what} upload is missing; upload it again")
    size = os.path.getsize(path) / 2**20
    if size > max_mb:                               # rounded up: 1.04 MB must not read "1 MB; the limit is 1 MB"
        raise MediaError(f"the {what} is {math.ceil(size * 10) / 10:g} MB; the limit is {max_mb} MB")


class PreviewCache:
    """Prepared sources for the slider preview, newest last (a small LRU), one lock per entry."""

    def __init__(self, size: int = 8, max_size: int = 512):
        self.size, self.max_size = size, max_size
        self._entries: OrderedDict[tuple, tuple[Animator, threading.Lock]] = OrderedDict()
        self._building: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, source: str, engine_options: tuple) -> tuple[Animator, threading.Lock]:
        key = (source, engine_options)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:                              # two requests for one new source prepare it once
            with self._lock:
                if key in self._entries:
                    return self._entries[key]
            entry = self._build(key, engine_options)
        with self._lock:
            self._building.pop(key, None)
        return entry

    def _build(self, key: tuple, engine_options: tuple) -> tuple[Animator, threading.Lock]:
        engine, opts = engine_options[0], dict(engine_options[1:])
        animator = Animator(key[0], AnimateOptions(engine=engine, engine_options=opts, max_size=self.max_size,
                                                   progress=False))
        entry = (animator, threading.Lock())
        with self._lock:
            self._entries[key] = entry
            while len(self._entries) > self.size:
                old, _ = self._entries.popitem(last=False)[1]
                old.close()
        return entry


def render_preview(cache: PreviewCache, source: str | None, settings: RenderSettings) -> np.ndarray:
    """The source with the sliders' controls and no driving input (a still, ``H x W x 3`` uint8)."""
    if not source:
        raise MediaError("upload a portrait first (or pick the astronaut)")
    if is_video_path(source):
        raise MediaError("the preview works on still portraits; a source video is animated with Run")
    opts = (settings.engine,) + tuple(sorted(settings.engine_options().items()))
    animator, lock = cache.get(source, opts)
    with lock:
        animator.reset()
        return animator.render(None, settings.controls)


def run_render(source: str | None, driving: str | None, settings: RenderSettings, config: AppConfig,
               speech: str | None = None, stop: threading.Event | None = None) -> str:
    """Animate ``source`` with ``driving`` (a file path or a built-in motion name), or with ``speech`` (a
    recording, which the result carries), into a new mp4.

    Returns the path of the result, in a folder of its own. Raises ``PuppetryError`` on bad input, and
    :class:`~puppetry.errors.Cancelled` when ``stop`` is set before the render ends (its folder is removed).
    """
    if not source:
        raise MediaError("upload a portrait first (or pick the astronaut)")
    if speech and driving:
        raise MediaError("give the motion by speech or by a driving file / webcam video, not both: remove one")
    if not driving and not speech:
        raise MediaError("choose a driving video, image, template or motion")
    check_upload(source, config.max_upload_mb, "source")
    if speech:
        check_upload(speech, config.max_upload_mb, "speech")
        check_speech(source, settings)
    elif os.path.exists(driving):
        check_upload(driving, config.max_upload_mb, "driving file")
    root = Path(config.output_dir or tempfile.gettempdir()) / "puppetry-app"
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=root))
    out = folder / "animation.mp4"
    try:
        animate(source, driving, out, settings.options(max_frames=config.max_frames, speech=speech or None), stop=stop)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return str(out)


def remove_result(path: str | None) -> None:
    """Delete a result of :func:`run_render` that nobody will fetch (its whole folder)."""
    if path:
        shutil.rmtree(Path(path).parent, ignore_errors=True)


class LiveSession:
    """One browser's live mode: webcam frames in, animated source frames out (:data:`LIVE_ENGINE`).

    Args:
        source: the source image path or ``"astronaut"``.
        max_size: longer side of the animated source.
    """

    def __init__(self, source: str, max_size: int = 384):
        self.source = source
        self.animator = Animator(source, AnimateOptions(engine=LIVE_ENGINE, max_size=max_size, progress=False))

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Animate one webcam frame (``H x W x 3`` uint8 RGB)."""
        return self.animator.render(np.ascontiguousarray(frame[..., :3]))

    def reset(self) -> None:
        """The next webcam frame becomes the rest pose."""
        self.animator.reset()

    def close(self) -> None:
        self.animator.close()


def message(exc: BaseException, paths: list[str | None] = ()) -> str:
    """A one-line, user-readable message for the page; upload paths (server folders) become file names."""
    if isinstance(exc, (PuppetryError, ValueError)):
        text = str(exc)
    else:
        logger.exception("unexpected error in the app")
        text = f"unexpected {type(exc).__name__}: {exc}"
    for path in paths:
        if path and os.sep in str(path):
            text = text.replace(str(path), os.path.basename(str(path)))
    return (text.strip().splitlines() or [type(exc).__name__])[0]
