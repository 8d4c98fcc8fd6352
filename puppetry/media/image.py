"""Reading and writing still images as ``H x W x 3 uint8 RGB`` arrays.

Reading goes through Pillow and turns every mode a user is likely to hand us (grayscale, palette, alpha,
16-bit, CMYK, EXIF-rotated) into plain 8-bit RGB. The header size is checked before any pixel is decoded,
so a file that claims to be enormous fails fast instead of exhausting memory.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from puppetry.errors import MediaError, first_line

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = 8192 * 8192
_BAND_PIXELS = 1 << 22  # pixels converted at once (see _by_bands)

# Pillow format name and save options per extension we write.
_WRITE_FORMATS: dict[str, tuple[str, dict]] = {
    ".png": ("PNG", {"compress_level": 6}),
    ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".bmp": ("BMP", {}),
    ".webp": ("WEBP", {"quality": 95}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
}

_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


def _too_large_message(path: Path, size: str) -> str:
    return (
        f"cannot read image '{path}': image is too large ({size}); the limit is {MAX_IMAGE_SIDE} pixels "
        f"per side and {MAX_IMAGE_PIXELS} pixels in all"
    )


def _check_size(path: Path, width: int, height: int) -> None:
    """Raise :class:`MediaError` if a header size is over :data:`MAX_IMAGE_SIDE` / :data:`MAX_IMAGE_PIXELS`."""
    if width <= 0 or height <= 0:
        raise MediaError(f"cannot read image '{path}': header gives an empty size {width}x{height}")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise MediaError(_too_large_message(path, f"{width}x{height}"))


def _by_bands(values: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``convert`` applied to bands of rows of ``values`` into one ``H x W x 3 uint8`` array.

    Converting a whole 8192 x 8192 image at once would hold several full-size wider-typed temporaries (about
    3.4 GB for an RGBA one); bands of :data:`_BAND_PIXELS` keep them to a few tens of MB.
    """
    out = np.empty((*values.shape[:2], 3), np.uint8)
    rows = max(1, _BAND_PIXELS // max(values.shape[1], 1))
    for top in range(0, values.shape[0], rows):
        out[top:top + rows] = convert(values[top:top + rows])
    return out


def _composite_band(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.uint16)
    mixed = rgba[..., :3] * alpha  # at most 255 * 255, and with the white part below at most 65152: fits uint16
    mixed += (255 - alpha) * 255 + 127
    return mixed // 255


def composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """Blend ``H x W x 4 uint8 RGBA`` over a white background; returns ``H x W x 3 uint8 RGB``."""
    return _by_bands(rgba, _composite_band)


def _sixteen_bit_band(values: np.ndarray) -> np.ndarray:
    wide = np.clip(values, 0, 65535).astype(np.uint32)
    gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _sixteen_bit_to_rgb(image: Image.Image) -> np.ndarray:
    """Scale a 16-bit (or 32-bit integer) grayscale image to ``H x W x 3 uint8 RGB`` (65535 -> 255)."""
    return _by_bands(np.asarray(image), _sixteen_bit_band)


def _float_to_rgb(image: Image.Image) -> np.ndarray:
    """A 32-bit float grayscale image (values in 0..1 or 0..255; NaN is 0) as ``H x W x 3 uint8 RGB``."""
    values = np.asarray(image, dtype=np.float32)
    rows = max(1, _BAND_PIXELS // max(values.shape[1], 1))
    peak = max((float(np.nan_to_num(values[top:top + rows]).max()) for top in range(0, len(values), rows)),
               default=0.0)
    factor = np.float32(255.0 if peak <= 1.0 else 1.0)

    def band(part: np.ndarray) -> np.ndarray:
        gray = np.clip(np.rint(np.nan_to_num(part) * factor), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)

    return _by_bands(values, band)


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any common mode to ``H x W x 3 uint8 RGB``."""
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy()
    if mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_rgb(image)
    if mode == "F":
        return _float_to_rgb(image)
    has_alpha = "A" in mode or "a" in mode or "transparency" in image.info
    if has_alpha:
        rgba = image if mode == "RGBA" else image.convert("RGBA")
        return composite_over_white(np.asarray(rgba, dtype=np.uint8))
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an ``H x W x 3 uint8 RGB`` array.

    Grayscale and palette images are expanded to RGB, transparent pixels are composited over white, 16-bit
    images are scaled to 8 bit, CMYK is converted and the EXIF orientation is applied. The size in the header
    is checked against :data:`MAX_IMAGE_SIDE` and :data:`MAX_IMAGE_PIXELS` before any pixel is decoded.

    Raises:
        MediaError: the path is missing, is a folder, is not a readable image or is too large.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"cannot read image '{path}': file not found")
    if path.is_dir():
        raise MediaError(f"cannot read image '{path}': it is a folder, not an image file")

    try:
        with warnings.catch_warnings():
            # Our own limit is lower than Pillow's warning threshold; the check below reports it properly.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{match.group(1)} pixels" if match else f"more than {MAX_IMAGE_PIXELS} pixels"
        raise MediaError(_too_large_message(path, size)) from None
    except UnidentifiedImageError:
        raise MediaError(f"cannot read image '{path}': not an image file or the file is corrupt") from None
    except OSError as exc:
        raise MediaError(f"cannot read image '{path}': {exc.strerror or exc}") from None
    except Exception as exc:  # Pillow plugins raise assorted types on malformed headers.
        reason = first_line(exc)
        raise MediaError(f"cannot read image '{path}': file is corrupt ({reason})") from None

    with image:
        _check_size(path, *image.size)
        try:
            image.load()
            try:
                if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                    image = ImageOps.exif_transpose(image)
            except Exception as exc:  # A broken EXIF block must not make the pixels unreadable.
                logger.warning("ignoring unreadable EXIF orientation in '%s': %s", path, exc)
            rgb = _to_rgb_array(image)
        except MemoryError:
            raise MediaError(f"cannot read image '{path}': not enough memory to decode it") from None
        except Exception as exc:
            reason = first_line(exc)
            raise MediaError(f"cannot read image '{path}': file is corrupt or truncated ({reason})") from None
    logger.debug("read image '%s' (%dx%d)", path, rgb.shape[1], rgb.shape[0])
    return rgb


def _temp_sibling(path: Path) -> Path:
    """A fresh hidden name next to ``path`` that keeps its extension: ``.name.tmp-1a2b3c4d.png``."""
    return path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"expected an H x W x 3 uint8 RGB array, got {got}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"cannot write an empty image of shape {rgb.shape}")


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an ``H x W x 3 uint8 RGB`` array to ``path``; the format follows the extension (PNG, JPEG, ...).

    The file is written to a temporary name in the same folder and renamed into place, so ``path`` never
    holds a half-written image. Missing parent folders are created.

    Raises:
        MediaError: unsupported extension, or the file cannot be written.
        ValueError: ``rgb`` is not an ``H x W x 3 uint8`` array.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITE_FORMATS:
        supported = ", ".join(sorted(_WRITE_FORMATS))
        raise MediaError(f"cannot write image '{path}': unsupported format '{suffix}' (supported: {supported})")
    _check_rgb(rgb)
    fmt, options = _WRITE_FORMATS[suffix]

    tmp_path = _temp_sibling(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp_path, "xb") as handle:
            Image.fromarray(np.ascontiguousarray(rgb)).save(handle, format=fmt, **options)
        os.replace(tmp_path, path)
    except OSError as exc:
        raise MediaError(f"cannot write image '{path}': {exc.strerror or exc}") from None
    finally:
        try:
            tmp_path.unlink(missing_ok=True)
        except OSError:  # the folder never existed (e.g. below a file)
            pass
    logger.debug("wrote image '%s' (%dx%d)", path, rgb.shape[1], rgb.shape[0])
