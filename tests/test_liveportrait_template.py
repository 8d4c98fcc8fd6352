"""LivePortrait motion templates: the 12 official pickles, the restricted unpickler, and our .npz format."""

from __future__ import annotations

import builtins
import json
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from puppetry.errors import MotionError
from puppetry.motion import keypoint_template as lpt
from puppetry.motion.keypoint_template import (KeypointTemplate, is_keypoint_template, load_any_template,
                                            load_pickle_template, load_template, save_template)

# Facts read from the files with pickletools: frame count, fps, and whether they carry eye/lip conditions
# (c_d_eyes_lst / c_d_lip_lst, together with the older 'R_d' key) or not (newer 'R' key, no conditions).
OFFICIAL = {
    "aggrieved": (57, 25, False), "d1": (16, 30, True), "d2": (16, 30, True), "d5": (148, 30, True),
    "d7": (178, 30, True), "d8": (275, 30, True), "laugh": (54, 25, False), "open_lip": (77, 25, False),
    "shake_face": (93, 20, False), "shy": (80, 25, False), "talking": (100, 20, False), "wink": (57, 25, False),
}


@pytest.fixture(scope="module")
def templates(data):
    return data / "templates"


def _header_ints(raw: bytes) -> dict[str, int]:
    """``n_frames`` and ``output_fps`` as pickletools sees them: the integer opcode after each key."""
    ops, out = list(pickletools.genops(raw)), {}
    for i, (op, arg, _) in enumerate(ops):
        if arg in ("n_frames", "output_fps") and arg not in out:
            out[arg] = next(a for o, a, _ in ops[i + 1:] if o.name.startswith("BININT"))
    return out


def _valid_dict(n: int = 3, **top) -> dict:
    """An official-style template dict of ``n`` frames (arrays as LivePortrait stores them, 1 x ...)."""
    rng = np.random.default_rng(0)
    motion = [{"scale": np.full((1, 1), 1.5, np.float32), "R": np.eye(3, dtype=np.float32)[None],
               "exp": rng.normal(0, 0.02, (1, 21, 3)).astype(np.float32),
               "t": rng.normal(0, 0.05, (1, 3)).astype(np.float32)} for _ in range(n)]
    return {"n_frames": n, "output_fps": 25, "motion": motion, **top}


def _write(path, obj, protocol: int = 4):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_template_loads(templates, name):
    n, fps, conditions = OFFICIAL[name]
    raw = (templates / f"{name}.pkl").read_bytes()
    assert _header_ints(raw) == {"n_frames": n, "output_fps": fps}
    assert (b"c_d_eyes_lst" in raw) == conditions and (b"R_d" in raw) == conditions
    tpl = load_pickle_template(templates / f"{name}.pkl")
    assert len(tpl) == n and tpl.fps == fps
    assert tpl.scale.shape == (n,) and tpl.R.shape == (n, 3, 3) and tpl.exp.shape == (n, 21, 3)
    assert tpl.t.shape == (n, 3) and tpl.kp is None
    for a in (tpl.scale, tpl.R, tpl.exp, tpl.t):
        assert a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_allclose(tpl.R @ tpl.R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (n, 3, 3)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(tpl.R), 1.0, atol=1e-5)
    assert 0.5 < tpl.scale.min() and tpl.scale.max() < 3 and np.abs(tpl.exp).max() < 0.5
    assert np.abs(tpl.exp).max() > 0.01  # the expression actually moves
    if conditions:
        assert tpl.c_eyes.shape == (n, 2) and tpl.c_lip.shape == (n,)
        assert (tpl.c_eyes >= 0).all() and (tpl.c_eyes < 1).all() and (tpl.c_lip >= 0).all()
    else:
        assert tpl.c_eyes is None and tpl.c_lip is None
    frame = tpl.frame(n - 1)
    assert set(frame) == {"scale", "R", "exp", "t"} | ({"c_eyes", "c_lip"} if conditions else set())
    assert frame["exp"].shape == (21, 3) and frame["R"].shape == (3, 3) and frame["scale"].shape == ()


def test_official_conditions_match_the_pickled_bytes(templates):
    """d1's first eye condition, as the raw float32 bytes pickletools shows after 'c_d_eyes_lst'."""
    raw = (templates / "d1.pkl").read_bytes()
    ops = list(pickletools.genops(raw))
    start = next(i for i, (_, a, _) in enumerate(ops) if a == "c_d_eyes_lst")
    first = next(a for o, a, _ in ops[start:] if o.name == "SHORT_BINBYTES" and len(a) == 8)
    np.testing.assert_array_equal(load_pickle_template(templates / "d1.pkl").c_eyes[0], np.frombuffer(first, "<f4"))


class _Call:
    """Pickles as a call of ``func(*args)``: what a malicious template would carry."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("make", [
    lambda m: _Call(os.system, f"touch {m}"),
    lambda m: _Call(builtins.eval, f"open({str(m)!r}, 'w').close()"),
    lambda m: _Call(subprocess.Popen, ["touch", str(m)]),
], ids=["os.system", "builtins.eval", "subprocess.Popen"])
@pytest.mark.parametrize("where", ["frame", "top"])
def test_malicious_pickle_is_refused_without_running(tmp_path, make, where):
    marker = tmp_path / "pwned"
    payload = make(marker)
    obj = _valid_dict()
    if where == "frame":
        obj["motion"][1]["exp"] = payload
    else:
        obj["c_eyes_lst"] = [np.zeros((1, 2), np.float32), payload, np.zeros((1, 2), np.float32)]
    path = _write(tmp_path / "evil.pkl", obj)
    name = f"{payload.func.__module__}.{payload.func.__qualname__}"  # os.system pickles as posix.system
    strings = {a for _, a, _ in pickletools.genops(path.read_bytes()) if isinstance(a, str)}
    assert {payload.func.__module__, payload.func.__qualname__} <= strings  # the payload is really in there
    with pytest.raises(MotionError) as err:
        load_pickle_template(path)
    assert f"'{name}'" in str(err.value) and "refused" in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


class _ObjectFlaggedDtype:
    """A float64 dtype whose pickled state sets numpy's 'holds objects' flags."""

    def __reduce__(self):
        return np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0x3F)


class _ArrayOfObjects:
    """An array rebuilt with that dtype from a list of Python objects instead of raw bytes."""

    def __reduce__(self):
        return (np.core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                (1, (1, 21, 3), _ObjectFlaggedDtype(), False, [0.5] * 63))


def test_array_state_smuggling_objects_is_refused(tmp_path):
    obj = _valid_dict()
    obj["motion"][0]["exp"] = _ArrayOfObjects()
    with pytest.raises(MotionError, match="not raw bytes|not numeric"):
        load_pickle_template(_write(tmp_path / "smuggle.pkl", obj))


def test_pickle_cannot_edit_the_allowed_globals(tmp_path, templates):
    """BUILD on the 'numpy.dtype' global with slot state would setattr its __defaults__ for every later load."""
    raw = b"\x80\x04\x8c\x05numpy\x8c\x05dtype\x93N}\x8c\x0c__defaults__\x8c\x01x\x8c\x01y\x86s\x86b."
    (tmp_path / "edit.pkl").write_bytes(raw)
    with pytest.raises(MotionError, match="cannot be modified"):
        load_pickle_template(tmp_path / "edit.pkl")
    assert lpt._dtype.__defaults__ == (False, False)
    assert len(load_pickle_template(templates / "d2.pkl")) == 16


def test_refused_module_is_never_imported(tmp_path, capsys):
    assert "this" not in sys.modules  # importing 'this' prints the Zen of Python
    path = tmp_path / "zen.pkl"
    path.write_bytes(b"\x80\x04\x8c\x04this\x8c\x01s\x93.")
    with pytest.raises(MotionError, match="'this.s'"):
        load_any_template(path)
    assert "this" not in sys.modules and capsys.readouterr().out == ""


def test_valid_crafted_pickles_load_in_every_protocol(tmp_path):
    obj = _valid_dict(4, c_eyes_lst=[np.full((1, 2), 0.3, np.float32)] * 4, c_lip_lst=[])
    for m in obj["motion"]:
        m["kp"] = np.ones((1, 21, 3), np.float32)
    obj["output_fps"] = np.float64(24.0)  # a numpy scalar
    for protocol in (3, 4, 5):  # 5 rebuilds arrays through numpy's _frombuffer
        tpl = load_pickle_template(_write(tmp_path / f"p{protocol}.pkl", obj, protocol))
        assert len(tpl) == 4 and tpl.fps == 24.0 and tpl.kp.shape == (4, 21, 3) and tpl.c_lip is None
        np.testing.assert_array_equal(tpl.exp, np.concatenate([m["exp"] for m in obj["motion"]]))


def _damaged(kind: str) -> object:
    obj = _valid_dict()
    if kind == "object dtype":
        obj["motion"][0]["exp"] = np.zeros((1, 21, 3), dtype=object)
    elif kind == "NaN":
        obj["motion"][2]["t"] = np.array([[0.0, np.nan, 0.0]], np.float32)
    elif kind == "zero frames":
        obj.update(n_frames=0, motion=[])
    elif kind == "n_frames mismatch":
        obj["n_frames"] = 7
    elif kind == "wrong shape":
        obj["motion"][1]["exp"] = np.zeros((1, 20, 3), np.float32)
    elif kind == "missing R":
        del obj["motion"][0]["R"]
    elif kind == "bad fps":
        obj["output_fps"] = 0
    elif kind == "short eye list":
        obj["c_eyes_lst"] = [np.zeros((1, 2), np.float32)]
    elif kind == "not a dict":
        return [1, 2, 3]
    elif kind == "no motion":
        del obj["motion"]
    return obj


@pytest.mark.parametrize("kind, says", [
    ("object dtype", "dtype object is not numeric"), ("NaN", "NaN"), ("zero frames", "no frames"),
    ("n_frames mismatch", "n_frames 7 does not match its 3"), ("wrong shape", "shape (1, 20, 3)"),
    ("missing R", "'motion.R' of frame 0 is missing"), ("bad fps", "fps 0 is not a frame rate"),
    ("short eye list", "'c_eyes_lst' is not a list of 3"), ("not a dict", "not a dict"), ("no motion", "'motion'"),
])
def test_damaged_pickle_is_refused(tmp_path, kind, says):
    with pytest.raises(MotionError) as err:
        load_pickle_template(_write(tmp_path / "bad.pkl", _damaged(kind)))
    assert "bad.pkl" in str(err.value) and says in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_truncated_and_foreign_files_are_refused(tmp_path, templates, data):
    raw = (templates / "d1.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.pkl").write_text("n_frames: 3\nmotion: []\n")
    (tmp_path / "jpeg.pkl").write_bytes((data / "portraits" / "s1.jpg").read_bytes()[:4096])
    for name in ("cut.pkl", "text.pkl", "jpeg.pkl", "missing.pkl"):
        with pytest.raises(MotionError, match=name):
            load_pickle_template(tmp_path / name)


BOMBS = {  # what each would make CPython allocate, and the guard message that must stop it first
    "memo": (b"\x80\x04Nr\xff\xff\xff\x7f.", "memo index"),  # LONG_BINPUT 2**31-1: a 2**32-slot memo
    "bytes8": (b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc.", "bytes8"),  # a terabyte bytes object
    "frame": (b"\x80\x04\x95" + struct.pack("<Q", 2**40) + b"N.", "runs past the end"),  # a terabyte frame
    "reconstruct": (b"\x80\x04\x8c\x15numpy.core.multiarray\x8c\x0c_reconstruct\x93\x8c\x05numpy\x8c\x07ndarray"
                    b"\x93J\x00\x00\x00\x7fJ\x00\x00\x00\x7f\x86C\x01b\x87R.", "over 256 MB"),  # 2**62 bytes
}
_BOMB_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a regression fails here, not on the host
from puppetry.errors import MotionError
from puppetry.motion.keypoint_template import load_pickle_template
out = {}
for path in sys.argv[1:]:
    try:
        load_pickle_template(path)
        out[path] = "loaded"
    except MotionError as exc:
        out[path] = str(exc)
print(json.dumps(out))
"""


def test_memory_bombs_are_refused_before_allocating(tmp_path):
    paths = {}
    for name, (raw, _) in BOMBS.items():
        paths[name] = tmp_path / f"{name}.pkl"
        paths[name].write_bytes(raw)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", _BOMB_CHILD, *map(str, paths.values())], capture_output=True,
                         text=True, timeout=60, env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert run.returncode == 0, run.stderr[-2000:]
    messages = json.loads(run.stdout)
    for name, (_, guard) in BOMBS.items():
        assert guard in messages[str(paths[name])], (name, messages[str(paths[name])])


def test_array_state_claiming_a_huge_shape_is_refused(tmp_path):
    raw = pickle.dumps(np.zeros(4, np.float32), protocol=4)
    huge = raw.replace(b"K\x04\x85", b"J\x00\x00\x00\x40\x85")  # shape (4,) -> (2**30,), data still 16 bytes
    assert huge != raw
    (tmp_path / "huge.pkl").write_bytes(huge)
    with pytest.raises(MotionError, match="over 256 MB"):
        load_pickle_template(tmp_path / "huge.pkl")


def test_oversized_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.pkl"
    with open(path, "wb") as f:
        f.truncate(lpt.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(MotionError, match="at most 256 MB"):
        load_any_template(path)


def test_npz_round_trip(tmp_path, templates):
    for name in ("d1", "wink"):
        tpl = load_pickle_template(templates / f"{name}.pkl")
        path = tmp_path / name / f"{name}.npz"  # the folder is made
        save_template(tpl, path)
        assert os.listdir(path.parent) == [path.name]  # no temp file left behind
        back = load_any_template(path)
        assert back.fps == tpl.fps and len(back) == len(tpl)
        for key in ("scale", "R", "exp", "t", "c_eyes", "c_lip", "kp"):
            if getattr(tpl, key) is None:
                assert getattr(back, key) is None
            else:
                np.testing.assert_array_equal(getattr(back, key), getattr(tpl, key))
        with np.load(path, allow_pickle=False) as z:
            assert str(z["format"]) == "puppetry-liveportrait-motion" and int(z["version"]) == 1


def test_failed_save_keeps_the_old_file(tmp_path, templates, monkeypatch):
    tpl = load_pickle_template(templates / "laugh.pkl")
    path = tmp_path / "laugh.npz"
    save_template(tpl, path)
    before = path.read_bytes()

    def broken_savez(file, **arrays):
        with open(file, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lpt.np, "savez", broken_savez)
    with pytest.raises(OSError):
        save_template(tpl, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["laugh.npz"]


def test_is_keypoint_template_tells_formats_apart(tmp_path, templates):
    from puppetry.motion.sequence import MotionSequence

    save_template(load_pickle_template(templates / "shy.pkl"), tmp_path / "ours.npz")
    rng = np.random.default_rng(1)
    MotionSequence(expression=rng.normal(size=(5, 478, 3)).astype(np.float32),
                   rotation=np.tile(np.eye(3, dtype=np.float32), (5, 1, 1)),
                   scale=np.full(5, 200, np.float32), center=rng.normal(size=(5, 3)).astype(np.float32),
                   valid=np.ones(5, bool), fps=25.0, frame_size=(512, 512)).save(tmp_path / "landmarks.npz")
    np.savez(tmp_path / "random.npz", a=rng.normal(size=(3, 3)), format=np.array(7))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert is_keypoint_template(tmp_path / "ours.npz") and is_keypoint_template(templates / "wink.pkl")
    for name in ("landmarks.npz", "random.npz", "junk.npz", "missing.npz", "clip.mp4"):
        assert not is_keypoint_template(tmp_path / name), name
    with pytest.raises(MotionError, match="landmark motion template"):
        load_template(tmp_path / "landmarks.npz")
    for name in ("random.npz", "junk.npz"):
        with pytest.raises(MotionError, match=name):
            load_template(tmp_path / name)
    with pytest.raises(MotionError, match="not a motion template"):
        load_any_template(tmp_path / "clip.mp4")


def _our_npz(path, **override):
    arrays = dict(format=np.array("puppetry-liveportrait-motion"), version=np.array(1), fps=np.array(25.0),
                  scale=np.ones(2, np.float32), R=np.tile(np.eye(3, dtype=np.float32), (2, 1, 1)),
                  exp=np.zeros((2, 21, 3), np.float32), t=np.zeros((2, 3), np.float32))
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("override", [
    {"exp": np.zeros((2, 21, 3), object)}, {"t": np.full((2, 3), np.inf, np.float32)}, {"R": None},
    {"version": np.array(2)}, {"fps": np.array(-1.0)}, {"scale": np.ones(0, np.float32)},
    {"c_eyes": np.zeros((3, 2), np.float32)},
], ids=["object", "inf", "missing R", "newer", "fps", "no frames", "eye count"])
def test_damaged_npz_is_refused(tmp_path, override):
    assert len(load_template(_our_npz(tmp_path / "ok.npz"))) == 2
    with pytest.raises(MotionError, match="bad.npz"):
        load_template(_our_npz(tmp_path / "bad.npz", **override))


def test_npz_header_claiming_a_huge_array_is_refused(tmp_path):
    path = _our_npz(tmp_path / "bomb.npz")
    header = {"descr": "<f4", "fortran_order": False, "shape": (2**20, 2**20, 21, 3)}
    with zipfile.ZipFile(path, "a") as zf, zf.open("kp.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    with pytest.raises(MotionError, match="over 256 MB"):
        load_template(path)


def test_dataclass_validates_and_converts():
    tpl = KeypointTemplate(scale=np.ones(2), R=np.tile(np.eye(3), (2, 1, 1)), exp=np.zeros((2, 21, 3)),
                           t=np.zeros((2, 3)), fps=30)
    assert tpl.exp.dtype == np.float32 and tpl.fps == 30.0 and len(tpl) == 2
    with pytest.raises(MotionError, match="exp has shape"):
        KeypointTemplate(scale=np.ones(2), R=np.tile(np.eye(3), (2, 1, 1)), exp=np.zeros((2, 20, 3)),
                         t=np.zeros((2, 3)), fps=30)
    with pytest.raises(MotionError, match="fps"):
        KeypointTemplate(scale=np.ones(2), R=np.tile(np.eye(3), (2, 1, 1)), exp=np.zeros((2, 21, 3)),
                         t=np.zeros((2, 3)), fps=float("nan"))
    for bad in (np.zeros((2, 21, 3), object), np.full((2, 21, 3), "0")):
        with pytest.raises(MotionError, match="not numbers"):
            KeypointTemplate(scale=np.ones(2), R=np.tile(np.eye(3), (2, 1, 1)), exp=bad, t=np.zeros((2, 3)), fps=30)
