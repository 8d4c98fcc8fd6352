"""Tracker and warp-engine time per frame on the benchmark's driving video (the astronaut animated), the
minimum of several runs per stage, for A/B comparisons of two checkouts on a noisy machine:

    python benchmarks/warp_stages.py LABEL           # in each checkout, alternately
"""
import sys
import tempfile
import time

from puppetry.benchmark import demo_driving
from puppetry.media import VideoReader
from puppetry.motion.tracker import MotionTracker
from puppetry.engines.base import DrivingFrame
from puppetry.methods.registry import create_engine
from puppetry.pipeline.source import find_source_faces, load_source_image
tmp = tempfile.mkdtemp(); drv = demo_driving(tmp)
with VideoReader(drv, max_frames=180) as r: rgbs = list(r)
trk = []
for rep in range(3):
    with MotionTracker(30) as t:
        t0 = time.perf_counter(); faces = [t(x) for x in rgbs]; trk.append((time.perf_counter() - t0) / len(rgbs) * 1e3)
ref = faces[0].pose
fr = [DrivingFrame(i, image=x, landmarks=f.landmarks, pose=f.pose, reference=ref) for i, (x, f) in enumerate(zip(rgbs, faces))]
image, name = load_source_image('astronaut', 2048); src = find_source_faces(image, name)
stages = []
for rep in range(4):
    eng = create_engine('warp'); st = eng.prepare(src)
    t0 = time.perf_counter()
    for x in fr: eng.render(st, x)
    stages.append(((time.perf_counter() - t0) / len(fr) * 1e3, {k: round(v / len(fr) * 1e3, 2) for k, v in eng.timings().items()}))
best = min(stages, key=lambda s: s[0])
print(sys.argv[1] if len(sys.argv) > 1 else "this checkout", 'tracker min %.2f ms | engine min %.2f ms %s' % (min(trk), best[0], best[1]))
