"""Image properties: too dark, too bright, almost uniform, blurry (cheap statistics of the
decoded pixels), tiny and odd aspect ratio (the original sizes the scan recorded).

The pixel statistics read the decoded-image cache in chunks, with NumPy only: the luminance's
histogram gives its percentiles exactly (it is 8-bit) and its standard deviation; blur is the
spread of the Laplacian (fine detail) relative to the spread of the luminance (contrast), so a
dim but sharp photo is not called blurry. The cache holds images at the audit's size, so
sizes come from the scan, which read each file's header; and every statistic is measured at
the image's own resolution where that is smaller (resized down with a box filter): an
upscaled thumbnail is smooth at the cache's size but not blurry (CIFAR-10's 32-pixel pictures
at 224 pixels: 9,939 of 10,000 were flagged before), and its own pixels are 49 times fewer
(10,000 of them: 0.9 s instead of 2.8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgclf.audit.issues import Issue
from imgclf.audit.settings import AuditSettings
from imgclf.data.pipeline.decode import FileRecord
from imgclf.data.pipeline.hashing import RGB_TO_LUMA
from imgclf.data.pipeline.parallel import threaded_map

_CHUNK = 64  # images per NumPy batch: a few MB of floats at 224 px


@dataclass
class PixelStats:
    """Per image, luminance on 0-1: 1st and 99th percentiles, standard deviation, and the
    Laplacian's standard deviation over it (sharpness)."""

    low: np.ndarray
    high: np.ndarray
    std: np.ndarray
    sharpness: np.ndarray


def image_properties(
    images: np.ndarray,
    rows: np.ndarray,
    records: list[FileRecord],
    settings: AuditSettings,
    stats: PixelStats | None = None,
) -> list[Issue]:
    """The property issues of ``rows``: each kind where its statistic passes its threshold
    (``stats``: the rows' pixel statistics, when already known)."""
    sizes = own_sizes(records, rows)
    height, width = sizes.T
    if stats is None:
        stats = pixel_statistics(images, rows, sizes)
    side = np.minimum(width, height)
    aspect = np.maximum(width, height) / np.maximum(side, 1.0)
    flat = stats.std < settings.uniform
    flags = {
        "dark": (stats.high < settings.dark, stats.high),
        "bright": (stats.low > settings.bright, stats.low),
        "uniform": (flat, stats.std),
        "blurry": (~flat & (stats.sharpness < settings.blurry), stats.sharpness),
        "tiny": (side < settings.min_side, side),
        "odd_aspect": (aspect > settings.max_aspect, aspect),
    }
    return [
        Issue(int(rows[k]), kind, float(score[k]))
        for kind, (flagged, score) in flags.items()
        for k in np.flatnonzero(flagged)
    ]


def own_sizes(records: list[FileRecord], rows: np.ndarray) -> np.ndarray:
    """(len(rows), 2) float: each row's original (height, width), as the scan read them."""
    sizes = [(records[r].height, records[r].width) for r in rows]
    return np.array(sizes, dtype=np.float64).reshape(len(sizes), 2)


def pixel_statistics(
    images: np.ndarray, rows: np.ndarray, sizes: np.ndarray | None = None
) -> PixelStats:
    """PixelStats of ``rows`` of a (N, H, W, C) uint8 array, read ``_CHUNK`` rows at a time;
    ``sizes`` (len(rows), 2): each image's own (height, width), where sharpness is measured
    when it is smaller than the array's."""

    def chunk(i: int) -> tuple[np.ndarray, ...]:
        part = None if sizes is None else sizes[i : i + _CHUNK]
        return _chunk_stats(np.asarray(images[rows[i : i + _CHUNK]]), part)

    starts = range(0, len(rows), _CHUNK)
    parts = list(threaded_map(chunk, starts, progress=False))  # NumPy releases the GIL
    if not parts:
        empty = np.empty(0, dtype=np.float32)
        return PixelStats(empty, empty, empty, empty)
    return PixelStats(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _chunk_stats(batch: np.ndarray, sizes: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """The statistics of a (B, H, W, C) uint8 batch: each image at the array's size, or at its
    own where that is smaller (resized down first, so a thumbnail costs its own pixels)."""
    small = np.zeros(len(batch), bool) if sizes is None else (sizes < batch.shape[1:3]).any(1)
    columns = [np.zeros(len(batch), dtype=np.float64) for _ in range(4)]
    groups: dict[tuple[int, ...], list[int]] = {}
    for k in np.flatnonzero(small):
        groups.setdefault(_own_shape(batch.shape[1:3], sizes[k]), []).append(int(k))
    whole = np.flatnonzero(~small)
    if len(whole):
        groups[batch.shape[1:3]] = whole.tolist()
    for shape, members in groups.items():
        if shape == batch.shape[1:3]:
            images = batch if len(members) == len(batch) else batch[members]
        else:
            images = np.stack([_resized(batch[k], shape) for k in members])
        for column, values in zip(columns, _stats(_luminance(images)), strict=True):
            column[members] = values
    return tuple(columns)


def _stats(luma: np.ndarray) -> tuple[np.ndarray, ...]:
    """(low, high, std, sharpness) of a (B, H, W) luminance batch on 0-1."""
    levels = np.rint(luma * 255).astype(np.int64).reshape(len(luma), -1)
    offsets = (np.arange(len(luma)) * 256)[:, None]
    histogram = np.bincount((levels + offsets).ravel(), minlength=256 * len(luma))
    cumulative = np.cumsum(histogram.reshape(len(luma), 256), axis=1) / levels.shape[1]
    low = np.argmax(cumulative >= 0.01, axis=1) / 255.0
    high = np.argmax(cumulative >= 0.99, axis=1) / 255.0
    std = luma.std(axis=(1, 2))
    return low, high, std, _sharpness(luma, std)


def _own_shape(shape: tuple[int, ...], size: np.ndarray) -> tuple[int, int]:
    """An image's own (height, width), each side at most ``shape``'s and at least 3 pixels."""
    return int(min(max(size[0], 3), shape[0])), int(min(max(size[1], 3), shape[1]))


def _resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` (H, W, C) uint8 resized down to ``shape`` with a box filter (no new detail,
    none smoothed away)."""
    from PIL import Image

    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    resized = np.asarray(picture.resize(shape[::-1], Image.Resampling.BOX))
    return resized.reshape(*shape, image.shape[-1])


def _sharpness(luma: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The Laplacian's spread over the luminance's (inf for images too small to have one)."""
    if min(luma.shape[1:]) < 3:
        return np.full(len(luma), np.inf)
    laplacian = (
        4 * luma[:, 1:-1, 1:-1]
        - luma[:, :-2, 1:-1]
        - luma[:, 2:, 1:-1]
        - luma[:, 1:-1, :-2]
        - luma[:, 1:-1, 2:]
    )
    return laplacian.std(axis=(1, 2)) / np.maximum(std, 1e-6)


def _luminance(batch: np.ndarray) -> np.ndarray:
    pixels = batch.astype(np.float32) / 255.0
    if pixels.shape[-1] == 1:
        return pixels[..., 0]
    return pixels @ RGB_TO_LUMA
