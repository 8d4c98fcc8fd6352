"""The shape of the house: methods declare themselves once, shared layers never import a method, one
frame sink serves every loop, and MediaPipe's native lines stay off the terminal."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from puppetry.cli import main
from puppetry.engines.base import Engine
from puppetry.errors import MediaError
from puppetry.methods import registry
from puppetry.methods.descriptor import Method, Option, load
from puppetry.training.recipe import Recipe

PACKAGE = Path(__file__).resolve().parents[1] / "puppetry"
SLICES = sorted(p.name for p in (PACKAGE / "methods").iterdir() if (p / "__init__.py").is_file())


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(module.split(".")[:-node.level] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_every_method_folder_is_registered():
    assert set(SLICES) == set(registry.METHOD_PACKAGES)
    assert [m.name for m in registry.methods()] == list(registry.METHOD_PACKAGES)


def test_shared_layers_import_no_method():
    slices = tuple(f"puppetry.methods.{s}" for s in SLICES)
    offenders = []
    for path in _modules(PACKAGE):
        if (PACKAGE / "methods") in path.parents and path.parent != PACKAGE / "methods":
            continue                                            # inside a method slice
        for name in _imports(path):
            if name.startswith(slices) and name not in ("puppetry.methods.descriptor", "puppetry.methods.registry"):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not offenders, offenders


@pytest.mark.parametrize("layer", ["training", "engines"])
def test_training_and_engines_do_not_even_import_the_registry(layer):
    for path in _modules(PACKAGE / layer):
        assert not any(n.startswith("puppetry.methods") for n in _imports(path)), path


def test_pipeline_modules_do_not_import_each_other_in_a_circle():
    video_source = _imports(PACKAGE / "pipeline" / "video_source.py")
    assert "puppetry.pipeline.animate" not in video_source
    assert "puppetry.pipeline.video_source" in _imports(PACKAGE / "pipeline" / "animate.py")


def test_method_packages_import_nothing_heavy():
    """The CLI reads every descriptor to build its flags: a descriptor must not pull in torch."""
    code = ("import sys; from puppetry.methods import registry; registry.methods(); "
            "import puppetry.cli; puppetry.cli.build_parser(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("method", registry.methods(), ids=lambda m: m.name)
def test_descriptors_name_real_classes_and_fields(method: Method):
    """Every string in a descriptor resolves: engine and config classes, recipes, recorders, option keys."""
    if method.engine is not None:
        engine, config = load(method.engine), load(method.config)
        assert issubclass(engine, Engine) and engine.name == method.name
        fields = {f.name for f in dataclasses.fields(config)}
        for option in method.options:
            assert option.key in fields, option.flag
            default = next(f for f in dataclasses.fields(config) if f.name == option.key).default
            if option.switch is not None:
                assert option.switch != default, f"{option.flag} sets the default"
        for preset in method.variants.values():
            assert set(preset) <= fields
        if method.app_weights_key is not None:
            assert method.app_weights_key in fields
    else:
        assert not method.options and not method.variants
    for name, target in method.recipes.items():
        recipe = load(target)
        assert issubclass(recipe, Recipe) and recipe.name == name
    if method.template_recorder is not None:
        assert callable(load(method.template_recorder))
    assert bool(method.recipes) != bool(method.not_trainable)


def test_a_shared_flag_is_declared_alike_by_every_engine_that_reads_it():
    for command in ("animate", "bench", "evaluate", "template"):
        for option, owners in registry.command_options(command):
            for name in owners:
                twin = next(o for o in registry.get_method(name).options if o.flag == option.flag)
                assert (twin.key, twin.switch, twin.choices, twin.type) == \
                       (option.key, option.switch, option.choices, option.type), (command, option.flag)


def test_engine_options_refuse_another_engines_flag():
    with pytest.raises(ValueError, match="--no-stitching only apply to --engine liveportrait"):
        registry.engine_options("warp", {"no_stitching": True})
    assert registry.engine_options("liveportrait", {"no_stitching": True, "device": "cpu"}) == \
        {"stitching": False, "device": "cpu"}
    assert registry.engine_options("wggan", {"device": "cpu"}) == {"device": "cpu"}


# --------------------------------------------------------------------------------- adding a method
@dataclasses.dataclass(frozen=True)
class _ToyConfig:
    gain: float = 1.0
    tint: bool = False


class _ToyEngine(Engine):
    """Brightens the source by ``gain`` (tinted red with ``tint``): enough to see options arrive."""

    name = "toy"

    def __init__(self, transfer, config: _ToyConfig):
        super().__init__(transfer)
        self.config = config

    def prepare(self, source):
        return source.image

    def render(self, state, frame):
        out = np.clip(state.astype(np.float32) * self.config.gain, 0, 255).astype(np.uint8)
        if self.config.tint:
            out[..., 1:] //= 2
        return out


@pytest.fixture
def toy_method(monkeypatch):
    """A sixth method added as a user would: one package with METHOD, one line in METHOD_PACKAGES."""
    module = types.ModuleType("puppetry.methods.toy")
    module.ToyEngine, module.ToyConfig = _ToyEngine, _ToyConfig
    module.METHOD = Method(
        name="toy", summary="a test engine", engine="puppetry.methods.toy:ToyEngine",
        config="puppetry.methods.toy:ToyConfig", not_trainable="it is a test",
        options=(Option("--toy-gain", "gain", type=float, commands=("animate", "bench", "evaluate"),
                        help="brightness gain"),
                 Option("--toy-tint", "tint", switch=True, app_label="Tint", help="tint red")))
    monkeypatch.setitem(sys.modules, "puppetry.methods.toy", module)
    monkeypatch.setattr(registry, "METHOD_PACKAGES", registry.METHOD_PACKAGES + ("toy",))
    registry.methods.cache_clear()
    yield module
    registry.methods.cache_clear()


def test_a_new_method_reaches_every_command_without_editing_them(toy_method, tmp_path, s1, capsys):
    from puppetry.app.sessions import RenderSettings
    from puppetry.media import read_video
    from puppetry.media.image import write_image

    source = tmp_path / "s1.png"
    write_image(str(source), s1)
    out = tmp_path / "toy.mp4"
    assert main(["-q", "animate", "-s", str(source), "-d", "blink", "--duration", "0.2", "--fps", "10",
                 "--engine", "toy", "--toy-gain", "0.5", "-o", str(out)]) == 0
    frames, _ = read_video(str(out))
    assert len(frames) == 2
    assert abs(frames[0].mean() - 0.5 * s1.mean()) < 4                 # the flag reached the toy config
    assert main(["animate", "-s", str(source), "--engine", "warp", "--toy-gain", "2", "-o", str(out)]) == 2
    assert "--toy-gain only apply to --engine toy" in capsys.readouterr().err
    assert main(["train", "toy", "--data", str(tmp_path), "-o", str(tmp_path / "run")]) == 2
    assert "cannot train 'toy': it is a test" in capsys.readouterr().err
    assert "toy" in registry.engine_names()
    settings = RenderSettings(engine="toy", switches={"tint": False})
    assert settings.engine_options() == {"tint": True}                    # unticked app box sets the switch
    assert RenderSettings(engine="toy").engine_options() == {"tint": False}


def test_evaluate_gives_a_new_methods_flags_to_it_only(toy_method, data, tmp_path):
    import json

    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--self", str(data / "driving" / "d0.mp4"), "--engine", "warp,toy",
                 "--toy-gain", "1.0", "--max-frames", "3", "--max-size", "256", "--no-identity",
                 "--samples", "1", "-o", str(out)]) == 0
    results = json.loads((out / "metrics.json").read_text())["results"]["self"]
    # gain 1 repeats the source: the toy scores exactly as the static baseline, the warp does not
    assert results["toy"]["mean"]["l1"]["value"] == pytest.approx(results["static"]["mean"]["l1"]["value"])
    assert results["warp"]["mean"]["l1"]["value"] != results["static"]["mean"]["l1"]["value"]


# ------------------------------------------------------------------------------------------ frame sink
def test_frame_sink_writes_only_a_finished_output(tmp_path, s1):
    from puppetry.media import read_video
    from puppetry.pipeline.frame_sink import FrameSink

    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError):
        with FrameSink(str(out), 10) as sink:
            sink.write(s1)
            raise RuntimeError("render failed")
    assert list(tmp_path.iterdir()) == []                            # no output, no temporary file
    with pytest.raises(MediaError, match="nothing came"):
        with FrameSink(str(out), 10, empty="nothing came"):
            pass
    assert list(tmp_path.iterdir()) == []
    small = s1[:64, :96]
    with FrameSink(str(out), 10, concat=True) as sink:
        sink.write(small, driving=small[:32, :32], source=small)
        sink.write(small, driving=None, source=small)
    frames, fps = read_video(str(out))
    assert len(frames) == 2 and fps == pytest.approx(10) and frames[0].shape == (64, 64 + 96 + 96, 3)
    assert frames[1][:, :64].max() == 0                               # a missing driving panel is black
    still = tmp_path / "o.png"
    with FrameSink(str(still), 10) as sink:
        sink.write(np.zeros_like(small))
        sink.write(small)
    from puppetry.media import read_image
    assert np.array_equal(read_image(str(still)), small)             # a still keeps the last frame
    memory = FrameSink(None, 10)
    memory.write(small)
    memory.close()
    assert len(memory.images) == 1 and memory.size == (96, 64)


# --------------------------------------------------------------------------------------------- quiet
def _stderr(tmp_path: Path, *flags: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLOG", "TF_CPP"))}
    run = subprocess.run([sys.executable, "-m", "puppetry", *flags, "animate", "--frames", "3", "-o",
                          str(tmp_path / f"q{len(flags)}.mp4")], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stderr.splitlines()


def test_commands_print_only_puppetry_lines_unless_verbose(tmp_path):
    quiet = _stderr(tmp_path)
    assert quiet and all(line.startswith("puppetry: ") for line in quiet), quiet
    verbose = _stderr(tmp_path, "--verbose")
    native = [line for line in verbose if not line.startswith("puppetry: ")]
    assert any("TensorFlow Lite" in line or "inference_feedback_manager" in line for line in native), verbose


def test_evaluate_prints_only_puppetry_lines(tmp_path, data):
    """A Face Mesh built and left idle while other work runs logged natively once its graph threads started
    (evaluate builds its metric detector first): the graph is now started while silenced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLOG", "TF_CPP"))}
    run = subprocess.run([sys.executable, "-m", "puppetry", "evaluate", "--cross-sources",
                          str(data / "portraits" / "s1.jpg"), "--cross-driving", str(data / "driving" / "d0.mp4"),
                          "--engine", "static", "--max-frames", "3", "--max-size", "256", "--no-identity", "-o",
                          str(tmp_path / "ev")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert lines and all(line.startswith("puppetry: ") for line in lines), lines


def test_face_mesh_stays_quiet_when_the_first_frames_have_no_face(data):
    """Its landmark model starts with the first face found, and logs then: that is silenced too."""
    code = ("import numpy as np; from puppetry.face.landmarks import FaceMeshDetector; "
            "from puppetry.media import read_image; d = FaceMeshDetector('image'); "
            "[d.detect(np.full((256, 256, 3), 180, np.uint8)) for _ in range(4)]; "
            f"assert d.detect(read_image({str(data / 'portraits' / 's1.jpg')!r}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLOG", "TF_CPP"))}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and run.stderr == "", run.stderr
