"""Decode one image file with Pillow: verify it, read its facts, and fit it to a target size.

Every mode is converted to RGB or L (CMYK, palette with transparency, RGBA, LA, 16-bit ...),
EXIF orientation is applied, and the fit policy is explicit: ``resize`` squashes,
``center_crop`` covers then crops the middle, ``letterbox`` fits inside and pads with black.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ALPHA_BACKGROUND = (255, 255, 255)  # transparent pixels become white, as on a web page


@dataclass
class FileRecord:
    """What a scan learns about one file; ``reason`` is set when it cannot be used."""

    nbytes: int
    digest: str = ""
    format: str = ""
    mode: str = ""
    width: int = 0
    height: int = 0
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict:
        return asdict(self)


def probe_file(path: str | os.PathLike) -> FileRecord:
    """Read a file fully and say whether it is a usable image, without keeping its pixels.

    JPEGs are decoded at 1/8 scale (Pillow's draft mode): every byte is still read, so
    truncation is caught, at a fraction of the cost of a full decode.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return FileRecord(nbytes=0, reason=f"unreadable: {exc.strerror or exc}")
    record = FileRecord(nbytes=len(data), digest=hashlib.blake2b(data, digest_size=16).hexdigest())
    if not data:
        record.reason = "empty file (0 bytes)"
        return record
    try:
        with _open(data) as img:
            record.format, record.mode = img.format or "", img.mode
            record.width, record.height = _upright_size(img)
            img.draft(img.mode, (1, 1))
            _load(img)
    except ImageDecodeError as exc:
        record.reason = str(exc)
    return record


def decode_file(
    path: str | os.PathLike, size: tuple[int, int], fit: str, color_mode: str
) -> np.ndarray:
    """Decode, orient, convert and fit one image file to a (H, W, C) uint8 array.

    Raises:
        ImageDecodeError: the file is not a usable image (the message says why).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"unreadable: {exc.strerror or exc}") from None
    return decode_bytes(data, size, fit, color_mode)


def decode_bytes(
    data: bytes,
    size: tuple[int, int],
    fit: str,
    color_mode: str,
    max_pixels: int | None = None,
) -> np.ndarray:
    """``decode_file`` for bytes already in memory (an upload), refusing images of more than
    ``max_pixels`` pixels from their header, before any pixel is decoded.

    Raises:
        ImageDecodeError: the bytes are not a usable image (the message says why).
    """
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    with _open(data) as img:
        width, height = img.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageDecodeError(
                f"oversized: {width}x{height} is {width * height:,} pixels, over the limit of "
                f"{max_pixels:,}"
            )
        if img.format == "JPEG":
            side = max(size)
            img.draft(img.mode, (side, side))
        img = _load_upright(img)
        return fit_image(to_color(img, color_mode), size, fit)


def fit_image(img: Image.Image, size: tuple[int, int], fit: str) -> np.ndarray:
    """Fit a converted image to (height, width) with the named policy; return HWC uint8."""
    height, width = size
    if fit == "resize":
        out = img.resize((width, height), Image.Resampling.BILINEAR)
    elif fit == "center_crop":
        out = ImageOps.fit(img, (width, height), Image.Resampling.BILINEAR)
    elif fit == "letterbox":
        out = ImageOps.pad(img, (width, height), Image.Resampling.BILINEAR, color=0)
    else:
        raise ValueError(f"unknown fit policy {fit!r}; allowed: resize, center_crop, letterbox")
    array = np.array(out, dtype=np.uint8)  # writable (torch.from_numpy warns on read-only)
    return array[:, :, None] if array.ndim == 2 else array


def to_color(img: Image.Image, color_mode: str) -> Image.Image:
    """Convert any Pillow mode to 'RGB' (color_mode 'rgb') or 'L' ('grayscale')."""
    img = _to_8bit(img)
    if img.mode in {"RGBA", "LA", "La", "RGBa", "PA"} or (
        img.mode == "P" and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_ALPHA_BACKGROUND, 255))
        img = Image.alpha_composite(background, rgba)
    target = "L" if color_mode == "grayscale" else "RGB"
    return img if img.mode == target else img.convert(target)


def is_grayscale_mode(mode: str) -> bool:
    """Whether a Pillow mode carries one channel of intensity (plus maybe alpha)."""
    return mode in _GRAY_MODES


class ImageDecodeError(Exception):
    """A file is not a usable image; the message is the reason shown to the user."""


def _open(data: bytes) -> Image.Image:
    """Open image bytes, turning Pillow's many failures into one ImageDecodeError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"oversized: {_bomb_detail(exc)}") from None
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image: content is no format Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "unreadable header"
        raise ImageDecodeError(f"{reason}: {exc}") from None


def _load_upright(img: Image.Image) -> Image.Image:
    _load(img)
    return ImageOps.exif_transpose(img)


def _load(img: Image.Image) -> None:
    """Decode all pixel data, so truncated and corrupt files fail here, not mid-epoch."""
    try:
        img.load()
    except OSError as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageDecodeError(f"{reason}: {exc}") from None
    except (SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"corrupt: {exc}") from None


def _upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block must not hide an otherwise good image
        orientation = 1
    width, height = img.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16-bit and 32-bit integer or float images to 8 bits instead of clipping them."""
    if img.mode not in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        return img
    array = np.asarray(img)
    if img.mode == "F":
        peak = 1.0 if float(array.max(initial=0)) <= 1.0 else 255.0
        scaled = np.clip(array / peak * 255.0, 0, 255)
    else:
        peak = 65535.0 if int(array.max(initial=0)) > 255 else 255.0
        scaled = np.clip(array.astype(np.float64) / peak * 255.0, 0, 255)
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def _bomb_detail(exc: Exception) -> str:
    return f"{exc} (limit {Image.MAX_IMAGE_PIXELS:,} pixels; raise PIL.Image.MAX_IMAGE_PIXELS)"
