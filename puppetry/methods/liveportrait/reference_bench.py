"""Our LivePortrait networks against the reference implementation's, side by side in one process
(``puppetry bench --engine liveportrait --against-reference DIR``).

``DIR`` is a copy of the LivePortrait repository (or its ``src`` folder) that the user supplies; puppetry
never downloads it, and importing it runs its code. Its ``src/modules`` are imported as a private
package, built with the hyper-parameters of its own ``src/config/models.yaml`` and loaded with the same
release weights as ours (``--checkpoint-dir``).

Protocol: the same inputs (the built-in astronaut's face crop as the source, its mirror image as the
driving frame), the same torch threads, one untimed warm-up of each, then ``reps`` interleaved
repetitions (reference first on even repetitions, ours first on odd ones). For every module the minimum
and median seconds are kept. A frame is M on one driving crop, W, G and the stitching MLP S, as in both
implementations' per-frame loops; F runs once per source and is listed apart. Ours runs as the engine
would (``--precision``, ``--compile``, ``--device``); the reference runs as its own pipeline does on the
device: fp16 autocast on CUDA (its default), float32 on the CPU (its fp16 autocast on a CPU without fp16
units takes minutes per frame). The images of the two are compared in grey levels.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from puppetry.errors import PuppetryError, first_line
from puppetry.methods.liveportrait.checkpoints import (BASE_FILES, RETARGETING_FILE, find_checkpoint_dir,
                                                       read_checkpoint, strip_prefix)
from puppetry.methods.liveportrait.models import LivePortraitModels, RuntimeOptions

logger = logging.getLogger(__name__)

PACKAGE = "_puppetry_liveportrait_reference"
REFERENCE_CLASSES = {            # release file key -> (reference module, class, models.yaml key)
    "appearance_feature_extractor": ("appearance_feature_extractor", "AppearanceFeatureExtractor",
                                     "appearance_feature_extractor_params"),
    "motion_extractor": ("motion_extractor", "MotionExtractor", "motion_extractor_params"),
    "warping_module": ("warping_network", "WarpingNetwork", "warping_module_params"),
    "spade_generator": ("spade_generator", "SPADEDecoder", "spade_generator_params"),
}
FRAME_MODULES = ("M", "W", "G", "S")


def _modules_folder(reference_dir: str | Path) -> Path:
    root = Path(reference_dir).expanduser()
    for candidate in (root / "src" / "modules", root / "modules"):
        if (candidate / "warping_network.py").is_file():
            return candidate
    raise PuppetryError(f"no LivePortrait reference implementation in '{root}': expected "
                        "src/modules/warping_network.py there (a copy of the LivePortrait repository; "
                        "puppetry never downloads it)")


def _import_reference(modules: Path) -> Callable[[str], object]:
    """Import ``modules`` as a private package (replacing one imported from elsewhere before); returns
    ``name -> submodule``."""
    known = sys.modules.get(PACKAGE)
    if known is not None and list(known.__path__) != [str(modules)]:
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]
    if PACKAGE not in sys.modules:
        spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
        spec.submodule_search_locations = [str(modules)]
        sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
    return lambda name: importlib.import_module(f"{PACKAGE}.{name}")


def _model_params(modules: Path) -> dict:
    import yaml

    path = modules.parent / "config" / "models.yaml"
    if not path.is_file():
        raise PuppetryError(f"the reference implementation lacks {path} (its networks' hyper-parameters)")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)["model_params"]


def load_reference(reference_dir: str | Path, checkpoint_dir: str | Path | None,
                   device: torch.device) -> dict[str, torch.nn.Module]:
    """The reference's F, M, W, G and S with the release weights, in evaluation mode on ``device``.

    Raises:
        PuppetryError: no reference in ``reference_dir``, or it fails to import, build or load (one line).
    """
    modules = _modules_folder(reference_dir)
    root = find_checkpoint_dir(checkpoint_dir)
    try:
        module = _import_reference(modules)
        params = _model_params(modules)
        nets = {}
        for key, (mod_name, cls_name, params_key) in REFERENCE_CLASSES.items():
            net = getattr(module(mod_name), cls_name)(**params[params_key])
            net.load_state_dict(read_checkpoint(root / BASE_FILES[key]), strict=True)
            nets[key] = net
        stitching_cls = module("stitching_retargeting_network").StitchingRetargetingNetwork
        stitching = stitching_cls(**params["stitching_retargeting_module_params"]["stitching"])
        stitching.load_state_dict(strip_prefix(read_checkpoint(root / RETARGETING_FILE)["retarget_shoulder"]))
        nets["stitching"] = stitching
    except PuppetryError:
        raise
    except Exception as exc:   # the user's copy of another project: any failure is one line
        raise PuppetryError(f"the reference implementation in '{modules}' failed to load: "
                            f"{type(exc).__name__}: {first_line(exc)}") from None
    return {k: v.to(device).eval().requires_grad_(False) for k, v in nets.items()}


def bench_inputs(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The astronaut's face crop and its mirror image: two ``1 x 3 x 256 x 256`` tensors in [0, 1]."""
    from puppetry.methods.liveportrait.crop import align_crop
    from puppetry.methods.liveportrait.engine import INPUT_SIZE, to_tensor
    from puppetry.pipeline.source import find_source_faces, load_source_image

    image, name = load_source_image("astronaut", 2048)
    faces = find_source_faces(image, name)
    crop = align_crop(faces.landmarks[0]).cut(image, INPUT_SIZE)
    source = to_tensor([crop]).to(device)
    return source, source.flip(-1).contiguous()


@dataclass
class Timings:
    """Seconds per call of every module, for one implementation."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in ("F", *FRAME_MODULES)})

    def frame(self) -> list[float]:
        """Seconds per frame of each repetition (M + W + G + S)."""
        return [sum(self.seconds[k][i] for k in FRAME_MODULES) for i in range(len(self.seconds["W"]))]


class _Clock:
    def __init__(self, device: torch.device):
        self.device = device

    def __call__(self, fn: Callable[[], object]) -> tuple[float, object]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        out = fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start, out


def _run_reference(ref: dict, x_s_img: torch.Tensor, x_d_img: torch.Tensor, x_s: torch.Tensor,
                   x_d: torch.Tensor, clock: _Clock, into: Timings | None) -> torch.Tensor:
    """One pass of the reference's modules; returns its image ``1 x 3 x 512 x 512`` (float32)."""
    half = clock.device.type == "cuda"
    with torch.no_grad(), torch.autocast(clock.device.type, dtype=torch.float16, enabled=half):
        times = {"F": clock(lambda: ref["appearance_feature_extractor"](x_s_img))}
        times["M"] = clock(lambda: ref["motion_extractor"](x_d_img))
        times["S"] = clock(lambda: ref["stitching"](torch.cat([x_s.flatten(1), x_d.flatten(1)], dim=1)))
        f_s = times["F"][1].float()
        times["W"] = clock(lambda: ref["warping_module"](f_s, kp_source=x_s, kp_driving=x_d))
        times["G"] = clock(lambda: ref["spade_generator"](feature=times["W"][1]["out"]))
    if into is not None:
        for k, (dt, _) in times.items():
            into.seconds[k].append(dt)
    return times["G"][1].float()


def _run_ours(models: LivePortraitModels, x_s_img: torch.Tensor, x_d_img: torch.Tensor, x_s: torch.Tensor,
              x_d: torch.Tensor, clock: _Clock, into: Timings | None) -> torch.Tensor:
    """One pass of our modules, as the engine calls them; returns the image (float32)."""
    times = {"F": clock(lambda: models.appearance(x_s_img)), "M": clock(lambda: models.motion(x_d_img)),
             "S": clock(lambda: models.stitch(x_s, x_d))}
    models.reset_timings()
    image = models.warp_decode(times["F"][1], x_s, x_d)["image"]
    if into is not None:
        for k, (dt, _) in times.items():
            into.seconds[k].append(dt)
        into.seconds["W"].append(models.seconds["W"])
        into.seconds["G"].append(models.seconds["G"])
    return image


@dataclass
class Comparison:
    """The outcome of :func:`compare`; :meth:`table` is what ``puppetry bench`` prints."""

    reference: Timings
    ours: Timings
    reps: int
    threads: int
    device: str
    precision: str
    compile: bool
    grey_max: int
    within_2: float
    psnr: float

    def table(self) -> str:
        ref_mode = "fp16 autocast" if self.device.startswith("cuda") else "fp32"
        lines = [f"LivePortrait, ours ({self.precision}{', compiled' if self.compile else ''}) against the reference "
                 f"({ref_mode}) on {self.device}, {self.threads} torch threads, {self.reps} interleaved repetitions",
                 f"  {'module':<8} {'reference min / median':>24} {'ours min / median':>20} {'speed-up':>9}"]
        rows = [(k, self.reference.seconds[k], self.ours.seconds[k]) for k in ("F", *FRAME_MODULES)]
        rows.append(("frame", self.reference.frame(), self.ours.frame()))
        for name, ref, ours in rows:
            ratio = statistics.median(ref) / max(statistics.median(ours), 1e-12)
            lines.append(f"  {name:<8} {min(ref) * 1000:10.1f} / {statistics.median(ref) * 1000:9.1f} ms "
                         f"{min(ours) * 1000:8.1f} / {statistics.median(ours) * 1000:7.1f} ms {ratio:8.2f}x")
        lines.append("  (frame = M + W + G + S per driving frame; F runs once per source)")
        lines.append(f"  image, ours against the reference: PSNR {self.psnr:.1f} dB, {100 * self.within_2:.2f} % of "
                     f"pixels within 2 grey levels, largest difference {self.grey_max}")
        return "\n".join(lines)

    def speedup(self) -> float:
        """Median reference frame time over our median frame time."""
        return statistics.median(self.reference.frame()) / statistics.median(self.ours.frame())


def compare(reference_dir: str | Path, engine_options: dict | None = None, reps: int = 3,
            warmup: bool = True) -> Comparison:
    """Time and compare both implementations (module docstring). ``engine_options``: the engine's
    ``checkpoint_dir``, ``device``, ``precision`` and ``compile`` (defaults as in ``LivePortraitConfig``);
    ``warmup``: one untimed pass of each first (the images compared come from the last pass)."""
    from puppetry.methods.liveportrait.engine import LivePortraitConfig
    from puppetry.methods.liveportrait.kinematics import source_keypoints

    if reps < 1:
        raise PuppetryError(f"--reps must be 1 or more, got {reps}")
    known = {"checkpoint_dir", "device", "precision", "compile"}
    cfg = LivePortraitConfig(**{k: v for k, v in (engine_options or {}).items() if k in known})
    runtime = RuntimeOptions(cfg.device, cfg.precision, cfg.compile)
    ours = LivePortraitModels.from_checkpoints(cfg.checkpoint_dir, runtime)
    device = ours.device
    ref = load_reference(reference_dir, cfg.checkpoint_dir, device)
    x_s_img, x_d_img = bench_inputs(device)
    info = ours.motion(torch.cat([x_s_img, x_d_img]))
    x_s, x_d = source_keypoints(info[0]), source_keypoints(info[1])
    clock = _Clock(device)
    timings = {"reference": Timings(), "ours": Timings()}
    runners = {"reference": lambda into: _run_reference(ref, x_s_img, x_d_img, x_s, x_d, clock, into),
               "ours": lambda into: _run_ours(ours, x_s_img, x_d_img, x_s, x_d, clock, into)}
    images = {}
    if warmup:
        for name, run in runners.items():                                # kernels, caches, compilation
            run(None)
    for rep in range(reps):
        for name in (("reference", "ours") if rep % 2 == 0 else ("ours", "reference")):
            images[name] = runners[name](timings[name])
            logger.info("repetition %d/%d: %s done", rep + 1, reps, name)
    grey = [(im.clamp(0, 1) * 255).round().to(torch.int16).cpu() for im in images.values()]
    diff = (grey[0] - grey[1]).abs()
    mse = float((diff.float() ** 2).mean())
    return Comparison(reference=timings["reference"], ours=timings["ours"], reps=reps,
                      threads=torch.get_num_threads(), device=str(device), precision=ours.precision,
                      compile=cfg.compile, grey_max=int(diff.max()), within_2=float((diff <= 2).float().mean()),
                      psnr=10 * math.log10(255 ** 2 / max(mse, 1e-12)))


def reference_table(reference_dir: str, engine_options: dict | None = None, reps: int = 3) -> str:
    """``puppetry bench --against-reference``: :func:`compare`, printed."""
    return compare(reference_dir, engine_options, reps).table()


