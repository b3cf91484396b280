"""The pixels' own say on a candidate pair: how well one picture matches the other once a crop
window and a mirror are chosen to line them up.

Why: on thumbnails the embedding and the hash both fail. In 10,000 CIFAR-10 pictures an altered
copy (cropped up to 10 %, resized, mirrored, recoloured, re-encoded) fell to cosine 0.66 from
its original, and another plane of the same pose on another sky came closer to it than that on
the embedding, the hash and an unaligned 8x8 correlation alike. Lined up, the planted copies
matched their originals at 0.916-0.999 (median 0.989) and look-alikes stayed lower: the
details that differ no longer hide behind the shift a crop makes.

How: each picture of a pair is made ``SIDE`` x ``SIDE`` (after a 2x larger antialiased
resize, so the windows sample detail, not blur); the other is cut in every window of a grid of
crops (``CROPS`` of each side, up to 12 %, split between its two ends in ``SHARES``) and
their mirror images, each resampled to the same size. The score is the best Pearson
correlation over the windows, either way round (either may be the crop of the other), with
each channel's mean removed: a colour shift costs nothing. A picture's 200 windows are
computed once and compared with all its partners in one matrix product.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SIDE = 24  # pixels a side of the compared pictures: 16 and 32 separated CIFAR-10's copies alike
CROPS = (0.0, 0.04, 0.08, 0.12)  # a window's crop of each side: the copies' 10 % and a margin
SHARES = (0.0, 0.5, 1.0)  # how a crop splits between a side's two ends
_CHUNK = 256  # pictures resized at once


def window_transforms() -> torch.Tensor:
    """The affine maps (W, 2, 3) of every crop window and its mirror, in grid_sample's
    coordinates: a window spans [lo, hi] of each axis of [0, 1]."""
    spans = [(c * f, 1.0 - c * (1.0 - f)) for c in CROPS for f in (SHARES if c else (0.5,))]
    axes = [(hi - lo, lo + hi - 1.0) for lo, hi in spans]  # (scale, shift) in [-1, 1]
    maps = [
        [[sx * mirror, 0.0, tx], [0.0, sy, ty]]
        for sx, tx in axes
        for sy, ty in axes
        for mirror in (1.0, -1.0)
    ]
    return torch.tensor(maps, dtype=torch.float32)


def aligned_similarity(images: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each pair (a[k], b[k]) of rows of ``images`` (N, H, W, C uint8), the best
    correlation of one picture with a crop window (or its mirror) of the other, either way
    round: near 1 for an altered copy, lower for another picture however alike."""
    score = np.full(len(a), -1.0, dtype=np.float32)
    if not len(a):
        return score
    rows = np.unique(np.concatenate([a, b]))
    place = {int(row): i for i, row in enumerate(rows)}
    base = _resized(images, rows, 2 * SIDE)
    plain = _unit(F.interpolate(base, size=(SIDE, SIDE), mode="bilinear", antialias=True))
    partners: dict[int, list[tuple[int, int]]] = {}
    for k, (left, right) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        partners.setdefault(place[left], []).append((k, place[right]))
        partners.setdefault(place[right], []).append((k, place[left]))
    maps = window_transforms()
    grid = F.affine_grid(maps, [len(maps), base.shape[1], SIDE, SIDE], align_corners=False)
    with torch.inference_mode():
        for picture, pairs in partners.items():
            source = base[picture].expand(len(maps), -1, -1, -1)
            windows = _unit(F.grid_sample(source, grid, mode="bilinear", align_corners=False))
            others = plain[[other for _, other in pairs]]
            best = (windows @ others.T).amax(dim=0).numpy()
            for (k, _), value in zip(pairs, best, strict=True):
                score[k] = max(score[k], float(value))
    return score


def _resized(images: np.ndarray, rows: np.ndarray, side: int) -> torch.Tensor:
    """``images[rows]`` as float (n, C, side, side), chunk by chunk (antialiased)."""
    parts = []
    for start in range(0, len(rows), _CHUNK):
        chunk = np.ascontiguousarray(images[rows[start : start + _CHUNK]])
        pixels = torch.from_numpy(chunk).permute(0, 3, 1, 2).float()
        parts.append(F.interpolate(pixels, size=(side, side), mode="bilinear", antialias=True))
    return torch.cat(parts)


def _unit(pictures: torch.Tensor) -> torch.Tensor:
    """Each picture (n, C, H, W) flattened, each channel's mean removed, to unit length: dot
    products are then Pearson correlations, blind to a colour shift."""
    centred = pictures - pictures.mean(dim=(2, 3), keepdim=True)
    flat = centred.reshape(len(centred), -1)
    return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-6)
