"""Live mode's transport: a WebSocket at ``/live/ws`` that turns webcam JPEGs into animated JPEGs.

Gradio's own image streaming sends each frame through its event queue (an HTTP request and a
server-sent event per frame), which held live mode to about 3 frames per second in Chromium. This
socket carries one binary message per frame each way, and the page keeps two frames in flight, so the
rate is set by the webcam and the server's work (about 10 ms per frame at 384 px on 2 cores).

Protocol (one connection = one live session):

* client -> server, text: ``{"source": TOKEN}`` first (and again whenever the page's source changes);
  ``{"reset": true}`` makes the next frame the rest pose.
* client -> server, binary: one webcam frame as JPEG or PNG.
* server -> client, binary: the animated source as JPEG, one per frame received, in order.
* server -> client, text: ``{"ok": true, "width": W, "height": H}`` when a source is ready;
  ``{"error": MESSAGE}`` for a refused source (the connection stays open) or ``{"dropped": MESSAGE}``
  for a frame that could not be animated (no face in it, not an image).

Sources are named by tokens that only the page's upload handler hands out (:class:`SourceTokens`), so
a client can never make the server read a path of its choosing.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import threading
from collections import OrderedDict

import cv2
import numpy as np
from PIL import Image
from starlette.websockets import WebSocket, WebSocketDisconnect

from puppetry.app.sessions import ASTRONAUT, AppConfig, LiveSession, message

logger = logging.getLogger(__name__)

ROUTE = "/live/ws"
MAX_FRAME_BYTES = 4 * 1024 * 1024        # a 1080p JPEG is well under this
MAX_FRAME_PIXELS = 1920 * 1088
JPEG_QUALITY = 85


class SourceTokens:
    """Opaque tokens for source paths the page accepted (at most ``capacity``, oldest forgotten first)."""

    def __init__(self, capacity: int = 1024):
        self._paths: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity

    def issue(self, path: str | None) -> str:
        """A token for ``path`` (the astronaut's is ``"astronaut"``)."""
        if not path or path == ASTRONAUT:
            return ASTRONAUT
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._paths[token] = path
            while len(self._paths) > self.capacity:
                self._paths.popitem(last=False)
        return token

    def path(self, token: str) -> str | None:
        """The path behind ``token``, or None for an unknown token."""
        if token == ASTRONAUT:
            return ASTRONAUT
        with self._lock:
            return self._paths.get(token)


def decode_frame(data: bytes) -> np.ndarray:
    """A webcam frame (JPEG or PNG bytes) as ``H x W x 3`` uint8 RGB; ValueError when it is not one.

    The size in the header is checked before any pixel is decoded.
    """
    if len(data) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(data) // 1024} KB is larger than {MAX_FRAME_BYTES // 1024 // 1024} MB")
    try:
        with Image.open(io.BytesIO(data)) as header:
            kind, (w, h) = header.format, header.size
    except (OSError, ValueError, Image.DecompressionBombError):
        kind, w, h = None, 0, 0
    if kind not in ("JPEG", "PNG"):
        raise ValueError("the frame is not a JPEG or PNG image")
    if w * h > MAX_FRAME_PIXELS:
        raise ValueError(f"frame larger than {MAX_FRAME_PIXELS} pixels")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the frame is a damaged JPEG or PNG image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_frame(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """``H x W x 3`` uint8 RGB as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class LiveEndpoint:
    """The WebSocket handler; at most ``max_sessions`` live sessions at once (others are told to wait).

    Frames of one connection are animated one after another in a worker thread, so the event loop (and
    the rest of the app) never waits on a frame.
    """

    def __init__(self, config: AppConfig, tokens: SourceTokens, max_sessions: int = 4):
        self.config = config
        self.tokens = tokens
        self.max_sessions = max_sessions
        self._active = 0
        self._lock = threading.Lock()

    async def __call__(self, websocket: WebSocket) -> None:
        await websocket.accept()
        with self._lock:
            full = self._active >= self.max_sessions
            if not full:
                self._active += 1
        if full:
            await websocket.send_text(json.dumps({"error": f"{self.max_sessions} live sessions are running; "
                                                           "try again when one ends"}))
            await websocket.close()
            return
        session: LiveSession | None = None
        try:
            while True:
                msg = await websocket.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("text") is not None:
                    session = await self._control(websocket, session, msg["text"])
                elif msg.get("bytes") is not None:
                    await self._frame(websocket, session, msg["bytes"])
        except WebSocketDisconnect:
            pass
        finally:
            with self._lock:
                self._active -= 1
            if session is not None:
                session.close()

    async def _control(self, websocket: WebSocket, session: LiveSession | None, text: str) -> LiveSession | None:
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            await websocket.send_text(json.dumps({"error": "control messages are JSON objects"}))
            return session
        if request.get("reset") and session is not None:
            session.reset()
        token = request.get("source")
        if token is None:
            return session
        path = self.tokens.path(str(token))
        if path is None:
            await websocket.send_text(json.dumps({"error": "unknown source; upload the portrait again"}))
            return session
        if session is not None and session.source == path:
            return session
        try:
            new = await asyncio.to_thread(LiveSession, path, self.config.live_size)
        except Exception as exc:              # a face-less or broken source: say so, keep the connection
            await websocket.send_text(json.dumps({"error": message(exc, [path])}))
            return session
        if session is not None:
            session.close()
        h, w = new.animator.source.image.shape[:2]
        await websocket.send_text(json.dumps({"ok": True, "width": w, "height": h}))
        return new

    async def _frame(self, websocket: WebSocket, session: LiveSession | None, data: bytes) -> None:
        if session is None:
            await websocket.send_text(json.dumps({"dropped": "no source yet"}))
            return
        try:
            out = await asyncio.to_thread(lambda: encode_frame(session.process(decode_frame(data))))
        except Exception as exc:
            await websocket.send_text(json.dumps({"dropped": message(exc)}))
            return
        await websocket.send_bytes(out)
