"""LivePortrait's fast paths: the precision W and G run in (``--precision``), the bf16 path's error
against float32 on the conformance kit's golden inputs, and the side-by-side benchmark against a
reference implementation (``puppetry bench --against-reference``). Speed itself is measured by the
benchmark, never here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from puppetry.errors import PuppetryError, WeightsError
from puppetry.methods.liveportrait import models as lp_models
from puppetry.methods.liveportrait.models import RuntimeOptions, resolve_precision

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "liveportrait"
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_follows_the_hardware(monkeypatch, native):
    monkeypatch.setattr(lp_models, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", CUDA) == "fp16"                 # the release's default on a GPU
    assert resolve_precision("fp32", CPU) == "fp32"
    for precision in ("fp16", "bf16"):
        assert resolve_precision(precision, CUDA) == precision
    with pytest.raises(WeightsError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    if native:
        assert resolve_precision("bf16", CPU) == "bf16"
    else:
        with pytest.raises(WeightsError, match="native bf16"):
            resolve_precision("bf16", CPU)
    with pytest.raises(WeightsError, match="unknown precision"):
        resolve_precision("fp8", CPU)


def test_engine_default_is_auto_and_the_cli_refuses_fp16_on_the_cpu(tmp_path, data):
    from puppetry.cli import main
    from puppetry.methods.liveportrait.engine import LivePortraitConfig

    assert LivePortraitConfig().precision == "auto"
    assert RuntimeOptions().precision == "fp32"        # the library's models stay conformance-exact by default
    out = tmp_path / "out.mp4"
    code = main(["-q", "animate", "-s", str(data / "portraits" / "s1.jpg"), "-d", "talk", "--engine", "liveportrait",
                 "--checkpoint-dir", str(tmp_path), "--precision", "fp16", "-o", str(out)])
    assert code != 0 and not out.exists()


def grey(image: torch.Tensor) -> torch.Tensor:
    return (image.clamp(0, 1) * 255).round().to(torch.int16)


def test_bf16_error_against_fp32_on_the_golden_inputs(models):
    """W and G under bf16 autocast against the float32 reference result (golden ``result_rgb``).

    The bound is PSNR >= 35 dB and a mean error of at most 2 grey levels (measured: 37.8 dB, 1.5 levels,
    86 % of pixels within 2 levels). The issue's "2 grey levels on 99 % of pixels" cannot hold on these
    weights for any 8-bit-mantissa path: they are untrained and amplify rounding, so that rounding only W's
    output to bf16 and computing G in float32 already moves 1.8 % of pixels by more than 2 levels (README,
    "LivePortrait speed"). The test forces bf16 even on a CPU without native bf16 (emulated: slower, same
    numbers)."""
    golden = np.load(CONFORMANCE / "golden.npz")
    before = models.precision
    models.precision = "bf16"
    try:
        out = models.warp_decode(torch.from_numpy(golden["F.out"]), torch.from_numpy(golden["x_s"]),
                                 torch.from_numpy(golden["x_d_stitched"]))
    finally:
        models.precision = before
    assert out["image"].dtype == torch.float32
    ours = grey(out["image"][0]).permute(1, 2, 0)
    diff = (ours - torch.from_numpy(golden["result_rgb"]).to(torch.int16)).abs().float()
    psnr = 10 * math.log10(255 ** 2 / float((diff ** 2).mean()))
    assert float(diff.mean()) > 0.05, "bf16 gave the float32 image: autocast did not run"
    assert psnr >= 35.0 and float(diff.mean()) <= 2.0, f"bf16: PSNR {psnr:.1f} dB, mean {diff.mean():.2f} levels"


# ------------------------------------------------------------------ against a reference implementation
# A stand-in for the LivePortrait repository's src/: the reference's module and class names, constructor
# keywords (from models.yaml) and call signatures (W takes the driving keypoints before the source's),
# built on our own networks so that both sides must give the same image.
FAKE_MODULES = {
    "appearance_feature_extractor.py": """
from puppetry.methods.liveportrait.appearance_extractor import AppearanceFeatureExtractor as _Net
class AppearanceFeatureExtractor(_Net):
    def __init__(self, **params):
        super().__init__()
""",
    "motion_extractor.py": """
from puppetry.methods.liveportrait.motion_extractor import MotionExtractor as _Net
class MotionExtractor(_Net):
    def __init__(self, **params):
        super().__init__()
""",
    "warping_network.py": """
from puppetry.methods.liveportrait.warping import WarpingNetwork as _Net
class WarpingNetwork(_Net):
    def __init__(self, **params):
        super().__init__()
    def forward(self, feature_3d, kp_driving, kp_source):
        return super().forward(feature_3d, kp_source, kp_driving)
""",
    "spade_generator.py": """
from puppetry.methods.liveportrait.spade_decoder import SPADEDecoder as _Net
class SPADEDecoder(_Net):
    def __init__(self, **params):
        super().__init__()
""",
    "stitching_retargeting_network.py": """
from puppetry.methods.liveportrait.retargeting import RetargetingMLP
class StitchingRetargetingNetwork(RetargetingMLP):
    def __init__(self, input_size, hidden_sizes, output_size):
        super().__init__((input_size, *hidden_sizes, output_size))
""",
}
FAKE_YAML = """model_params:
  appearance_feature_extractor_params: {image_channel: 3, block_expansion: 64}
  motion_extractor_params: {num_kp: 21, backbone: convnextv2_tiny}
  warping_module_params: {num_kp: 21}
  spade_generator_params: {upscale: 2}
  stitching_retargeting_module_params:
    stitching: {input_size: 126, hidden_sizes: [128, 128, 64], output_size: 65}
"""


def fake_reference(root: Path, broken: bool = False) -> Path:
    modules = root / "src" / "modules"
    modules.mkdir(parents=True)
    for name, text in FAKE_MODULES.items():
        (modules / name).write_text("raise ImportError('needs a package you lack')\n" if broken else text)
    (root / "src" / "config").mkdir()
    (root / "src" / "config" / "models.yaml").write_text(FAKE_YAML)
    return root


def test_side_by_side_with_a_reference(release_dir, tmp_path):
    """The harness feeds both implementations the same weights and inputs (the images agree exactly when
    both run in float32) and prints min / median per module, the frame and the speed-up."""
    from puppetry.methods.liveportrait.reference_bench import compare

    result = compare(fake_reference(tmp_path / "LivePortrait"),
                     {"checkpoint_dir": str(release_dir), "precision": "fp32"}, reps=1, warmup=False)
    assert result.grey_max <= 1 and result.within_2 == 1.0
    for module in ("F", "M", "W", "G", "S"):
        assert len(result.reference.seconds[module]) == len(result.ours.seconds[module]) == 1
        assert result.reference.seconds[module][0] > 0 and result.ours.seconds[module][0] > 0
    table = result.table()
    assert "frame" in table and "speed-up" in table and "fp32" in table and "within 2 grey levels" in table
    assert result.speedup() > 0


def test_against_reference_fails_in_one_line(release_dir, tmp_path, capsys):
    from puppetry.cli import main

    def fails(*args: str) -> str:
        assert main(["-q", "bench", *args]) == 2
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("puppetry: error")]
        assert len(lines) == 1 and "Traceback" not in err and "unexpected" not in err, err
        return lines[0]

    lp = ["--engine", "liveportrait", "--checkpoint-dir", str(release_dir)]
    assert "src/modules/warping_network.py" in fails(*lp, "--against-reference", str(tmp_path / "nowhere"))
    broken = fake_reference(tmp_path / "broken", broken=True)
    assert "needs a package you lack" in fails(*lp, "--against-reference", str(broken))
    assert "no reference implementation" in fails("--engine", "warp", "--against-reference", str(broken))
    with pytest.raises(PuppetryError, match="--reps"):
        from puppetry.methods.liveportrait.reference_bench import compare
        compare(broken, {"checkpoint_dir": str(release_dir)}, reps=0)
