"""LivePortrait motion templates: per-frame outputs of the motion extractor M, read safely and saved as ``.npz``.

Official format
    LivePortrait pickles a dict ``{'n_frames': int, 'output_fps': number, 'motion': [frame, ...]}`` whose
    frames are dicts of float32 arrays: ``scale`` 1x1, ``R`` 1x3x3 (``R_d`` in older files), ``exp`` 1x21x3,
    ``t`` 1x3 and, in newer files, ``kp`` / ``x_s`` 1x21x3 (``x_s`` is not kept). Optional per-frame lists
    hold the eye-open condition (``c_eyes_lst``, older ``c_d_eyes_lst``: 1x2 each) and the lip-open one
    (``c_lip_lst`` / ``c_d_lip_lst``: 1x1 each). ``R`` is row-vector: keypoints are rotated as ``kp @ R``.

Security model
    ``pickle.load`` calls whatever importable callable a file names (``os.system``, ``builtins.eval``...), so
    loading a downloaded template with it runs its author's code. :func:`load_pickle_template` uses an
    Unpickler whose ``find_class`` hands out only guarded stand-ins for the numpy globals that rebuild arrays
    and refuses every other global before importing it. Memory bombs: files over 256 MB are refused unread;
    the opcodes are first walked with :mod:`pickletools` (which runs nothing) so memo indices and lengths the
    file cannot back never reach CPython's allocator, and the memory of the objects they would build is
    estimated (a one-byte opcode can make a 216-byte set) and held to :data:`MAX_PICKLE_MEMORY`; an array's
    claimed shape and dtype are checked before numpy allocates; only plain numeric dtypes pass.

Our format
    :func:`save_template` writes an uncompressed ``np.savez`` with ``format`` "puppetry-liveportrait-motion",
    ``version`` 1, ``fps``, ``scale`` N, ``R`` Nx3x3, ``exp`` Nx21x3, ``t`` Nx3 and optionally ``c_eyes`` Nx2,
    ``c_lip`` N, ``kp`` Nx21x3; :func:`load_template` reads it with ``allow_pickle=False``, checking each
    member's header before loading it, after :func:`~puppetry.motion.npz_archive.open_npz` has refused a
    bare ``.npy``, a file that is no zip and a zip listing too many entries.
"""

from __future__ import annotations

import io
import logging
import math
import os
import pickle
import pickletools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from puppetry.errors import MotionError, first_line
from puppetry.motion.npz_archive import npz_member_header, open_npz

log = logging.getLogger(__name__)

TEMPLATE_FORMAT = "puppetry-liveportrait-motion"
TEMPLATE_VERSION = 1
MAX_FILE_BYTES = 256 * 2**20  # also the most one array may claim
MAX_PICKLE_OPS = 20_000_000  # ~130k frames; bounds the Python objects a pickle can make
MAX_PICKLE_MEMORY = 512 * 2**20  # estimated bytes of the objects a pickle builds (see _op_bytes)
_SHAPES = {"scale": (), "R": (3, 3), "exp": (21, 3), "t": (3,), "c_eyes": (2,), "c_lip": (), "kp": (21, 3)}
_REQUIRED = ("scale", "R", "exp", "t")


class _Damaged(MotionError):
    """What is wrong with a template's content; the loaders reword it to name the file."""


@dataclass
class KeypointTemplate:
    """LivePortrait motion of ``N`` frames, float32: ``scale`` N, ``R`` Nx3x3 (``kp @ R``), ``exp`` Nx21x3,
    ``t`` Nx3; optional ``c_eyes`` Nx2 (eye-open), ``c_lip`` N (lip-open), ``kp`` Nx21x3 (canonical)."""

    scale: np.ndarray
    R: np.ndarray
    exp: np.ndarray
    t: np.ndarray
    fps: float
    c_eyes: np.ndarray | None = None
    c_lip: np.ndarray | None = None
    kp: np.ndarray | None = None

    def __post_init__(self) -> None:
        try:
            self.__dict__.update(_validated(vars(self)))
        except _Damaged as exc:
            raise MotionError(f"invalid keypoint template: {exc}") from None

    def __len__(self) -> int:
        return len(self.scale)

    def frame(self, index: int) -> dict[str, np.ndarray]:
        """Frame ``index``: ``scale`` (), ``R`` 3x3, ``exp`` 21x3, ``t`` 3 and whichever optional arrays exist."""
        return {k: getattr(self, k)[index] for k in _SHAPES if getattr(self, k) is not None}


def _f32(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        raise _Damaged(f"{name} is not an array") from None
    if a.dtype.kind not in "biuf":
        raise _Damaged(f"{name} holds {a.dtype} values, not numbers")
    if a.shape != shape:
        raise _Damaged(f"{name} has shape {a.shape}, expected {shape}")
    a = np.array(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise _Damaged(f"{name} holds NaN or infinite values")
    return a


def _validated(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` as float32 arrays of one frame count ``N >= 1`` and a float fps; raises :class:`_Damaged`."""
    if any(fields.get(k) is None for k in _REQUIRED):
        raise _Damaged(f"{', '.join(_REQUIRED)} are all required")
    try:
        n = len(fields["scale"]) if np.ndim(fields["scale"]) == 1 else 0
    except (ValueError, TypeError):
        n = 0
    if n == 0:
        raise _Damaged("scale is not an array of shape (N,) with N >= 1 frames")
    out = {k: None if fields.get(k) is None else _f32(k, fields[k], (n, *s)) for k, s in _SHAPES.items()}
    fps = fields.get("fps")
    if (isinstance(fps, (bool, np.bool_)) or not isinstance(fps, (int, float, np.integer, np.floating))
            or not (math.isfinite(fps) and 0 < fps <= 1000)):
        raise _Damaged(f"fps {fps!r} is not a frame rate in (0, 1000]")
    return {**out, "fps": float(fps)}


# ---- the official pickle: guarded numpy stand-ins --------------------------------------------------------

def _numeric(dtype: Any) -> np.dtype:
    """A fresh canonical plain numeric dtype equal to ``dtype`` (any flags or fields a pickle set are dropped)."""
    if (not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.kind not in "biuf" or dtype.names is not None
            or dtype.subdtype is not None or np.dtype(dtype.str).itemsize != dtype.itemsize):
        raise pickle.UnpicklingError(f"an array of dtype {dtype} is not numeric")
    return np.dtype(dtype.str)


def _checked_shape(shape: Any, itemsize: int) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise pickle.UnpicklingError(f"array shape {shape!r} is malformed")
    if math.prod(shape) * max(itemsize, 1) > MAX_FILE_BYTES:
        raise pickle.UnpicklingError(f"an array claims shape {shape}, over {MAX_FILE_BYTES >> 20} MB")
    return shape


class _GuardedArray(np.ndarray):
    """What the ``_reconstruct`` stand-in returns: checks dtype and size before numpy's ``__setstate__``."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5) or not isinstance(state[-1], bytes):
            raise pickle.UnpicklingError("array state is malformed or not raw bytes")
        dtype = _numeric(state[-3])
        _checked_shape(state[-4], dtype.itemsize)
        super().__setstate__((*state[:-3], dtype, *state[-2:]))  # numpy checks the bytes fill the shape


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    if subtype is not np.ndarray or typecode != b"b":
        raise pickle.UnpicklingError("only plain numpy arrays may be rebuilt")
    return np.ndarray.__new__(_GuardedArray, _checked_shape(shape, 1), np.uint8)


def _dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 8:
        raise pickle.UnpicklingError(f"dtype {spec!r} is not a plain numeric type")
    _numeric(np.dtype(spec))
    return np.dtype(spec, bool(align), True)  # always a copy, so BUILD never edits numpy's shared dtypes


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:  # pickle protocol 5
    if not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
        raise pickle.UnpicklingError("array buffer is malformed")
    dtype = _numeric(dtype)
    return np.frombuffer(buf, dtype).reshape(_checked_shape(shape, dtype.itemsize), order=order)


def _scalar(dtype: Any, data: Any) -> Any:  # a numpy number such as an np.float64 fps
    dtype = _numeric(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("numpy scalar data is malformed")
    return np.frombuffer(data, dtype)[0]


class _StandIn:
    """A global as the unpickler sees it: callable, but a pickle's BUILD cannot edit it (e.g. its defaults)."""

    __slots__ = ("_call",)

    def __init__(self, call: Any) -> None:
        self._call = call

    def __call__(self, *args: Any) -> Any:
        return self._call(*args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("a numpy global cannot be modified")


_ALLOWED: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _StandIn(_dtype)}
for _mod in ("numpy.core", "numpy._core"):  # numpy 1 and numpy 2 spellings
    _ALLOWED[f"{_mod}.multiarray", "_reconstruct"] = _StandIn(_reconstruct)
    _ALLOWED[f"{_mod}.multiarray", "scalar"] = _StandIn(_scalar)
    _ALLOWED[f"{_mod}.numeric", "_frombuffer"] = _StandIn(_frombuffer)


class _TemplateUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, label: str) -> None:
        super().__init__(file)
        self.label = label

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        raise MotionError(f"template '{self.label}' refused: it asks for '{module}.{name}'; a motion template "
                          "may hold only arrays, numbers, strings and lists/dicts")


_SMALL_OBJECT = 96  # an int, float, tuple or call result with its slot in a container or dict entry
_OBJECT_OPS = {name: _SMALL_OBJECT for name in (
    "INT", "BININT", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES",
    "BINBYTES8", "BYTEARRAY8", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "LIST", "REDUCE", "NEWOBJ",
    "NEWOBJ_EX", "OBJ", "INST")}
_OBJECT_OPS.update({"EMPTY_DICT": 128, "DICT": 128, "EMPTY_SET": 256, "FROZENSET": 256})  # empty set: 216 bytes


def _op_bytes(name: str, arg: Any) -> int:
    """Upper estimate of the bytes one opcode makes the unpickler hold: the object it builds (a string may take
    4 bytes a character; bytes may also fill an array of the same size) or a stack or memo slot."""
    cost = _OBJECT_OPS.get(name, 16)
    if arg is None:
        return cost
    kind = type(arg)
    if kind is str:
        return cost + 4 * len(arg)
    if kind is bytes or kind is bytearray:
        return cost + 2 * len(arg)
    return cost + arg.bit_length() // 8 if kind is int else cost


class _ArgumentReader(io.BytesIO):
    """The bytes :func:`pickletools.genops` walks: it refuses to read one opcode argument that alone could take
    a quarter of :data:`MAX_PICKLE_MEMORY` (a string decodes to up to 4 bytes a character), before reading it.
    A length past the end is left to pickletools, which reports the truncation."""

    _LIMIT = MAX_PICKLE_MEMORY // 4

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._size = len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and self._LIMIT < size <= self._size - self.tell():
            raise pickle.UnpicklingError(f"an opcode argument of {size} bytes at byte {self.tell()}, over "
                                         f"{self._LIMIT >> 20} MB")
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(self._LIMIT + 1 if size is None or size < 0 else min(size, self._LIMIT + 1))
        if len(line) > self._LIMIT:
            raise pickle.UnpicklingError(f"a text opcode argument over {self._LIMIT >> 20} MB")
        return line


def _scan(data: bytes) -> None:
    """Walk the opcodes without running them; refuse what would make the unpickler over-allocate."""
    held = 0
    for count, (op, arg, pos) in enumerate(pickletools.genops(_ArgumentReader(data)), 1):  # lengths must fit
        if count > MAX_PICKLE_OPS:
            raise pickle.UnpicklingError(f"more than {MAX_PICKLE_OPS} pickle opcodes")
        held += _op_bytes(op.name, arg)
        if held > MAX_PICKLE_MEMORY:
            raise pickle.UnpicklingError(f"its objects would take over {MAX_PICKLE_MEMORY >> 20} MB of memory "
                                         f"(at opcode {count}, byte {pos})")
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > count:
            raise pickle.UnpicklingError(f"memo index {arg} at byte {pos} is out of range")
        if op.name == "FRAME" and arg > len(data) - pos:
            raise pickle.UnpicklingError(f"frame of {arg} bytes at byte {pos} runs past the end")


def _frames(label: str, items: Any, key: str, n: int) -> np.ndarray:
    """``n`` per-frame arrays (officially with a leading 1, as ``1 x 21 x 3``) stacked as ``n x shape``."""
    shape = _SHAPES[key]
    if not isinstance(items, list) or len(items) != n:
        raise _Damaged(f"'{label}' is not a list of {n} per-frame arrays")
    for i, a in enumerate(items):
        if not isinstance(a, np.ndarray):
            raise _Damaged(f"'{label}' of frame {i} is {'missing' if a is None else type(a).__name__}")
        core = a.shape
        while len(core) > len(shape) and core[0] == 1:
            core = core[1:]
        if core != shape:
            raise _Damaged(f"'{label}' of frame {i} has shape {a.shape}, expected {(1, *shape)}")
    return np.stack([a.reshape(shape) for a in items])


def _official_fields(obj: Any) -> dict[str, Any]:
    motion = obj.get("motion") if isinstance(obj, dict) else None
    if not isinstance(motion, list) or not all(isinstance(m, dict) for m in motion):
        raise _Damaged("it is not a dict with a 'motion' list of per-frame dicts")
    n, n_frames = len(motion), obj.get("n_frames", len(motion))
    if n == 0:
        raise _Damaged("it has no frames")
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames != n:
        raise _Damaged(f"n_frames {n_frames!r} does not match its {n} motion frames")
    rotation = "R_d" if "R_d" in motion[0] and "R" not in motion[0] else "R"  # older files say R_d
    sources = {"scale": "scale", "R": rotation, "exp": "exp", "t": "t"}
    if "kp" in motion[0]:
        sources["kp"] = "kp"
    fields = {k: _frames(f"motion.{s}", [m.get(s) for m in motion], k, n) for k, s in sources.items()}
    for key, names in (("c_eyes", ("c_eyes_lst", "c_d_eyes_lst")), ("c_lip", ("c_lip_lst", "c_d_lip_lst"))):
        name = next((k for k in names if k in obj), None)
        if name is not None and not (isinstance(obj[name], list) and not obj[name]):  # may be stored empty
            fields[key] = _frames(name, obj[name], key, n)
    return {**fields, "fps": obj.get("output_fps")}


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MotionError(f"cannot read motion template '{path}': {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise MotionError(f"motion template '{path}' is {size >> 20} MB; at most {MAX_FILE_BYTES >> 20} MB is read")


def _unreadable(path: Path, exc: BaseException, what: str) -> MotionError:
    detail = first_line(exc)
    return MotionError(f"cannot read motion template '{path}' as {what}: {detail}")


def _build(path: Path, fields: dict[str, Any]) -> KeypointTemplate:
    try:
        tpl = KeypointTemplate(**_validated(fields))
    except _Damaged as exc:
        raise MotionError(f"motion template '{path}' is damaged: {exc}") from None
    log.debug("read %d LivePortrait motion frames at %g fps from %s", len(tpl), tpl.fps, path)
    return tpl


def load_pickle_template(path: str | os.PathLike) -> KeypointTemplate:
    """Read an official LivePortrait ``.pkl`` template without executing anything it names."""
    path = Path(path)
    _check_size(path)
    try:
        data = path.read_bytes()
        _scan(data)
        fields = _official_fields(_TemplateUnpickler(io.BytesIO(data), str(path)).load())
    except _Damaged as exc:
        raise MotionError(f"motion template '{path}' is damaged: {exc}") from None
    except MotionError:
        raise
    except Exception as exc:  # truncated, not a pickle, refused array, out of memory: one line for the user
        raise _unreadable(path, exc, "a LivePortrait pickle") from None
    return _build(path, fields)


# ---- our .npz --------------------------------------------------------------------------------------------

def save_template(template: KeypointTemplate, path: str | os.PathLike) -> None:
    """Write ``template`` as a ``.npz`` atomically (no partial file on failure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    arrays = {k: getattr(template, k).astype(np.float32) for k in _SHAPES if getattr(template, k) is not None}
    try:
        np.savez(tmp, format=np.array(TEMPLATE_FORMAT), version=np.array(TEMPLATE_VERSION),
                 fps=np.array(float(template.fps)), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _member(z: Any, key: str) -> np.ndarray:
    """Member ``key`` of an open npz, its ``.npy`` header checked before numpy allocates the array."""
    npz_member_header(z, key, MAX_FILE_BYTES)
    return z[key]


def _open_npz(path: Path) -> tuple[Any, str | None]:
    """The open npz and its ``format`` string (None when absent or not a string)."""
    z = open_npz(path)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise MotionError(f"'{path}' is not an .npz motion template")
    fmt = _member(z, "format") if "format" in z.files else None
    return z, str(fmt) if fmt is not None and fmt.dtype.kind == "U" and fmt.shape == () else None


def is_keypoint_template(path: str | os.PathLike) -> bool:
    """True for any ``.pkl`` (taken as official) and for our ``.npz``; reads only the npz ``format`` member."""
    suffix = Path(path).suffix.lower()
    if suffix != ".npz":
        return suffix == ".pkl"
    try:
        z, fmt = _open_npz(Path(path))
        z.close()
        return fmt == TEMPLATE_FORMAT
    except Exception:
        return False


def load_template(path: str | os.PathLike) -> KeypointTemplate:
    """Read a ``.npz`` written by :func:`save_template`. Never unpickles anything."""
    path = Path(path)
    _check_size(path)
    try:
        z, fmt = _open_npz(path)
        with z:
            if fmt != TEMPLATE_FORMAT:
                from puppetry.motion.sequence import TEMPLATE_FORMAT as LANDMARK_FORMAT
                kind = "it is a landmark motion template" if fmt == LANDMARK_FORMAT else f"format {fmt!r}"
                raise MotionError(f"'{path}' is not a LivePortrait keypoint template ({kind})")
            missing = [k for k in ("version", "fps", *_REQUIRED) if k not in z.files]
            if missing:
                raise MotionError(f"motion template '{path}' is damaged: {', '.join(missing)} missing")
            version = _member(z, "version")
            if version.shape != () or version.dtype.kind not in "iu" or int(version) > TEMPLATE_VERSION:
                raise MotionError(f"'{path}' was written by a newer puppetry (template version {version})")
            fields: dict[str, Any] = {k: _member(z, k) for k in _SHAPES if k in z.files}
            fps = _member(z, "fps")
            fields["fps"] = fps.item() if fps.shape == () and fps.dtype.kind in "iuf" else None
    except MotionError:
        raise
    except Exception as exc:  # not a zip, bad member, object array, oversized header: one line for the user
        raise _unreadable(path, exc, "a puppetry .npz") from None
    return _build(path, fields)


def load_any_template(path: str | os.PathLike) -> KeypointTemplate:
    """Read an official LivePortrait ``.pkl`` or one of our ``.npz`` templates, chosen by suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pkl":
        return load_pickle_template(path)
    if suffix == ".npz":
        return load_template(path)
    raise MotionError(f"'{path}' is not a motion template: expected a LivePortrait .pkl or a puppetry .npz")
