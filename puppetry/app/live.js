// Live mode in the page: webcam -> /live/ws -> animated source (see puppetry/app/live_socket.py).
// Two frames stay in flight, so the network round trip overlaps the server's work.
(() => {
  const IN_FLIGHT = 2;
  const MAX_SIDE = 640;          // webcam frames are sent at most this large
  const live = window.puppetryLive = {frames: 0, sent: 0, dropped: 0, fps: 0, error: null, running: false};
  let ws = null, stream = null, inFlight = 0, token = null, ready = false, times = [], fresh = false;
  const grab = document.createElement('canvas');
  const $ = (id) => document.getElementById(id);
  const status = (text) => { const s = $('live-status'); if (s) s.textContent = text; };
  const currentToken = () => { const t = $('live-token'); return t ? t.dataset.token : 'astronaut'; };

  function pump() {
    const video = $('live-video');
    if (!live.running || !ready || !video || video.readyState < 2) return;
    const t = currentToken();
    if (t !== token) { token = t; ready = false; ws.send(JSON.stringify({source: token})); return; }
    // Only new webcam frames are sent: the rate can never exceed the webcam's.
    while (inFlight < IN_FLIGHT && fresh) {
      fresh = false;
      const k = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
      grab.width = Math.round(video.videoWidth * k); grab.height = Math.round(video.videoHeight * k);
      grab.getContext('2d').drawImage(video, 0, 0, grab.width, grab.height);
      inFlight += 1; live.sent += 1;
      grab.toBlob((blob) => { if (ws && ws.readyState === 1) ws.send(blob); else inFlight -= 1; }, 'image/jpeg', 0.8);
    }
  }

  async function show(blob) {
    const canvas = $('live-canvas');
    const bitmap = await createImageBitmap(blob);
    if (canvas) {
      canvas.width = bitmap.width; canvas.height = bitmap.height;
      canvas.getContext('2d').drawImage(bitmap, 0, 0);
      canvas.dataset.frames = String(live.frames + 1);
    }
    bitmap.close();
    live.frames += 1;
    const now = performance.now();
    times.push(now);
    while (times.length && times[0] < now - 1000) times.shift();
    live.fps = times.length;
    status(`${live.fps} frames/s`);
  }

  async function start() {
    if (live.running) return;
    live.error = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
    } catch (e) {
      live.error = 'no webcam: ' + e.message; status(live.error); return;
    }
    const video = $('live-video');
    video.srcObject = stream;
    await video.play();
    const base = location.href.replace(/[?#].*$/, '').replace(/[^/]*$/, '');
    ws = new WebSocket(new URL('live/ws', base).href.replace(/^http/, 'ws'));
    ws.binaryType = 'blob';
    live.running = true; inFlight = 0; ready = false;
    ws.onopen = () => { token = currentToken(); ws.send(JSON.stringify({source: token})); status('preparing the source...'); };
    ws.onmessage = async (ev) => {
      if (typeof ev.data === 'string') {
        const m = JSON.parse(ev.data);
        if (m.ok) { ready = true; status('live'); }
        else if (m.error) { live.error = m.error; status('Error: ' + m.error); }
        else if (m.dropped) { live.dropped += 1; inFlight = Math.max(0, inFlight - 1); }
      } else {
        inFlight = Math.max(0, inFlight - 1);
        await show(ev.data);
      }
      pump();
    };
    ws.onclose = () => { if (live.running) { status('connection closed'); stop(); } };
    const onFrame = () => { fresh = true; pump(); if (live.running) video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);
    setTimeout(pump, 50);
  }

  function stop() {
    live.running = false;
    if (ws) { const w = ws; ws = null; try { w.close(); } catch (e) {} }
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
  }

  document.addEventListener('click', (ev) => {
    if (ev.target.closest('#live-start')) start();
    else if (ev.target.closest('#live-stop')) { stop(); status('stopped'); }
    else if (ev.target.closest('#live-reset') && ws && ws.readyState === 1) ws.send(JSON.stringify({reset: true}));
  });
  setInterval(pump, 200);      // recovers from a lost frame
})();
