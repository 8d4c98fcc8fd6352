"""Live mode's transport: a WebSocket at ``/live/ws`` that turns webcam JPEGs into animated JPEGs.

Gradio's own image streaming sends each frame through its event queue (an HTTP request and a
server-sent event per frame), which held live mode to about 3 frames per second in Chromium. This
socket carries one binary message per frame each way, and the page keeps two frames in flight, so the
rate is set by the webcam and the server's work (about 10 ms per frame at 384 px on 2 cores).

Protocol (one connection = one live session):

* client -> server, text: ``{"source": TOKEN}`` first (and again whenever the page's source changes);
  ``{"reset": true}`` makes the next frame the rest pose.
* client -> server, binary: one webcam frame as JPEG or PNG.
* server -> client, binary: the animated source as JPEG, one per frame animated, in order.
* server -> client, text: ``{"ok": true, "width": W, "height": H}`` when a source is ready;
  ``{"error": MESSAGE}`` for a refused source or control message (the connection stays open) or
  ``{"dropped": MESSAGE}`` for a frame that was not animated (no face in it, not an image, or stale).

Every frame is answered once, by an image or a ``dropped`` line. Frames never queue up: one is
animated at a time and one more may wait; a frame that arrives while another waits replaces it, and the
replaced one is answered ``dropped`` at once. A client that sends faster than the server animates (more
than the page's two in flight) gets the newest frames, control messages answered without delay and a
server whose memory stays flat.

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
from collections import OrderedDict, deque

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
MAX_WAITING = 8                          # messages waiting for the worker, per connection
FRAMES_WAITING = 2                       # frames waiting in a row: the page keeps two in flight
MAX_CONTROL_CHARS = 4096
STALE = "a newer frame came before this one was animated"
BUSY = "too many messages are waiting; send the next one after a reply"


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

    Each connection is a :class:`LiveConnection`: frames are animated one after another in a worker
    thread, so the event loop (and the rest of the app) never waits on a frame.
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
        try:
            await LiveConnection(websocket, self.config, self.tokens).run()
        finally:
            with self._lock:
                self._active -= 1


class LiveConnection:
    """One connection's live session: a reader that takes each message off the socket as it comes, and a
    worker that animates the newest waiting frame.

    The reader never waits for the animation, so control messages are answered at once and a client that
    sends frames faster than they are animated builds no backlog: a frame that arrives while another still
    waits replaces it (the older one is answered ``{"dropped": ...}``). What waits is bounded: at most
    :data:`MAX_WAITING` messages, and never more than :data:`FRAMES_WAITING` frames in a row (the page keeps
    two frames in flight, and the second may arrive before the worker has taken the first).
    """

    def __init__(self, websocket: WebSocket, config: AppConfig, tokens: SourceTokens):
        self.websocket = websocket
        self.config = config
        self.tokens = tokens
        self.session: LiveSession | None = None
        self.waiting: deque[str | bytes] = deque()
        self.frames = self.dropped = 0
        self._wakeup = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def run(self) -> None:
        """Serve the connection until the client leaves; the session is closed after its last frame."""
        worker = asyncio.create_task(self._work())
        try:
            await self._read()
        except (WebSocketDisconnect, RuntimeError, OSError):     # the socket went away under a receive
            pass
        finally:
            self._closed = True
            self.waiting.clear()
            self._wakeup.set()
            try:
                await worker                            # a frame in work finishes before its animator closes
            except Exception:
                logger.exception("live worker failed")
            if self.session is not None:
                self.session.close()
            logger.debug("live connection closed: %d frames animated, %d dropped", self.frames, self.dropped)

    async def _read(self) -> None:
        while not self._closed:
            msg = await self.websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("bytes") is not None:
                await self._take_frame(msg["bytes"])
            elif msg.get("text") is not None:
                await self._take_control(msg["text"])

    async def _take_frame(self, data: bytes) -> None:
        if len(data) > MAX_FRAME_BYTES:                 # refused unread; nothing this large is kept
            self.dropped += 1
            await self._send_text({"dropped": f"frame of {len(data) // 1024} KB is larger than "
                                              f"{MAX_FRAME_BYTES // 1024 // 1024} MB"})
        elif len(self.waiting) >= FRAMES_WAITING and all(isinstance(m, bytes) for m in
                                                         list(self.waiting)[-FRAMES_WAITING:]):
            del self.waiting[-FRAMES_WAITING]           # the oldest waiting frame is stale: the newest are animated
            self.waiting.append(data)
            self.dropped += 1
            await self._send_text({"dropped": STALE})
        elif len(self.waiting) >= MAX_WAITING:
            self.dropped += 1
            await self._send_text({"dropped": BUSY})
        else:
            self.waiting.append(data)
            self._wakeup.set()

    async def _take_control(self, text: str) -> None:
        if len(text) > MAX_CONTROL_CHARS:
            await self._send_text({"error": "control messages are short JSON objects"})
        elif len(self.waiting) >= MAX_WAITING:
            await self._send_text({"error": BUSY})
        else:
            self.waiting.append(text)
            self._wakeup.set()

    async def _work(self) -> None:
        while not self._closed:
            if not self.waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self.waiting.popleft()
            if isinstance(item, bytes):
                await self._frame(item)
            else:
                await self._control(item)

    async def _send_text(self, payload: dict) -> None:
        await self._send(json.dumps(payload))

    async def _send(self, data: str | bytes) -> None:
        """Send one message; a client that has gone is noted, not raised."""
        if self._closed:
            return
        try:
            async with self._send_lock:
                if isinstance(data, bytes):
                    await self.websocket.send_bytes(data)
                else:
                    await self.websocket.send_text(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._closed = True
            self._wakeup.set()

    async def _control(self, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            await self._send_text({"error": "control messages are JSON objects"})
            return
        if request.get("reset") and self.session is not None:
            self.session.reset()
        token = request.get("source")
        if token is None:
            return
        path = self.tokens.path(str(token))
        if path is None:
            await self._send_text({"error": "unknown source; upload the portrait again"})
            return
        if self.session is not None and self.session.source == path:
            return
        try:
            new = await asyncio.to_thread(LiveSession, path, self.config.live_size)
        except Exception as exc:              # a face-less or broken source: say so, keep the connection
            await self._send_text({"error": message(exc, [path])})
            return
        if self.session is not None:
            self.session.close()
        self.session = new
        h, w = new.animator.source.image.shape[:2]
        await self._send_text({"ok": True, "width": w, "height": h})

    async def _frame(self, data: bytes) -> None:
        session = self.session
        if session is None:
            self.dropped += 1
            await self._send_text({"dropped": "no source yet"})
            return
        try:
            out = await asyncio.to_thread(lambda: encode_frame(session.process(decode_frame(data))))
        except Exception as exc:
            self.dropped += 1
            await self._send_text({"dropped": message(exc)})
            return
        self.frames += 1
        await self._send(out)
