"""The instance signal: perceptual hashes (pHash, as imagehash computes it) of each decoded
image, its mirror image and a few crops of it, so that the distance between two images is small
when one is a flipped or cropped copy of the other.

Why a hash beside the embeddings: a global embedding says "a panda", not "this panda photo";
different photos of one class can be as close in it as an altered copy is to its original.
pHash keeps the coarse layout of one picture (the signs of its lowest 8x8 DCT frequencies),
which survives re-encoding, resizing and colour shifts, and differs between two photos of the
same subject. A crop moves the layout, though: on animals, copies cropped by up to 10 % were
up to 24 bits from their originals, as far as other photos. So each image is also hashed in
five windows (the centre and the four corners, WINDOW of each side), and two images are as
far apart as the closest of one's whole picture (or its mirror) to one of the other's windows,
either way round. A copy cropped by up to 10 % sits close to one window of its original.
Everything is computed on the decoded-image cache, so nothing is decoded again, and in
batches: imagehash's pHash one picture at a time took 1.4 ms an image (seven hashes each),
so the same DCT and median are applied here to whole batches, checked bit for bit against
``imagehash.phash`` in the tests.

The carved splits (``copies.py``) and the audit share it: the hashes, ``chance_distance``
(whether the hash tells this set's pictures apart at all) and ``close_pairs`` (every close pair
at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgclf.data.pipeline.parallel import threaded_map
from imgclf.progressbar import progress_bar

HASH_BITS = 64  # pHash with imagehash's default hash_size 8
WINDOW = 0.92  # a crop window's share of each side: offsets of up to 8 %, the copies' crops
_HASH_SIDE = 32  # imagehash's pHash reads a 32x32 grey image (hash_size * highfreq_factor 4)
_GREY_SIDE = 128  # each image is made grey at this size once; its windows are cut from that
_CHUNK = 512  # query pictures compared at once
_HASH_CHUNK = 128  # images a thread hashes at once: a Ctrl-C waits for two such chunks
RGB_TO_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, Pillow's L
CHANCE = 0.02  # the share of random pairs of pictures that chance_distance lets through
SAMPLE = 2048  # pictures on each side of the random pairs


@dataclass
class Hashes:
    """64-bit pHashes per row: ``whole`` (N, 2) of the picture and of its mirror image,
    ``windows`` (N, 6) of the picture and of its five crop windows."""

    whole: np.ndarray
    windows: np.ndarray


def perceptual_hashes(
    images: np.ndarray, rows: np.ndarray, progress: bool = False, crops: bool = True
) -> Hashes:
    """The hashes of ``rows`` of the decoded images (N, H, W, C); other rows stay 0. Without
    ``crops`` every window is the whole picture (a cheaper check, blind to crops).

    Batched: the rows are made grey and resized chunk by chunk, a chunk a core (NumPy and
    torch release the GIL), and ``phash`` hashes all of a chunk's pictures, mirrors and
    windows at once."""
    whole = np.zeros((len(images), 2), dtype=np.uint64)
    windows = np.zeros((len(images), 6), dtype=np.uint64)
    rows = np.asarray(rows, dtype=np.int64)

    def hash_chunk(start: int) -> int:
        chunk = rows[start : start + _HASH_CHUNK]
        grey = _grey(images[chunk], _GREY_SIDE if crops else _HASH_SIDE)
        boxes = _BOXES if crops else []
        parts = [grey, grey.flip(-1)] + [grey[:, y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
        small = [_resized(part, _HASH_SIDE) for part in parts]
        hashed = phash(np.stack([s.numpy() for s in small], axis=1))  # (n, 7)
        whole[chunk] = hashed[:, :2]
        windows[chunk, 0] = hashed[:, 0]
        windows[chunk, 1:] = hashed[:, 2:] if crops else hashed[:, :1]
        return len(chunk)

    starts = range(0, len(rows), _HASH_CHUNK)
    with progress_bar(progress, "hashing images", len(rows)) as advance:
        for done in threaded_map(hash_chunk, starts, progress=False):  # a chunk a core
            advance(done)
    return Hashes(whole, windows)


def phash(grey: np.ndarray) -> np.ndarray:
    """imagehash's pHash of 32x32 grey pictures (..., 32, 32), packed into uint64: the 2-D DCT
    (scipy's, as imagehash computes it), its lowest 8x8 frequencies, each above their median.
    Bit for bit ``imagehash.phash`` of the same 32x32 grey picture (tests/audit)."""
    import scipy.fft

    dct = scipy.fft.dct(scipy.fft.dct(grey.astype(np.float64), axis=-2), axis=-1)
    low = dct[..., :8, :8].reshape(*grey.shape[:-2], 64)
    bits = low > np.median(low, axis=-1, keepdims=True)
    return np.packbits(bits, axis=-1).view(">u8")[..., 0].astype(np.uint64)


def hash_distance(hashes: Hashes, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The distance (bits of 64) of each pair of rows ``a[k], b[k]``: the closest of either
    one's picture or mirror image to any window of the other (see the module's docstring)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return np.empty(0, dtype=np.int64)
    one = hashes.whole[a][:, :, None] ^ hashes.windows[b][:, None, :]
    other = hashes.whole[b][:, :, None] ^ hashes.windows[a][:, None, :]
    bits = np.minimum(
        np.bitwise_count(one).min(axis=(1, 2)), np.bitwise_count(other).min(axis=(1, 2))
    )
    return bits.astype(np.int64)


def close_pairs(
    hashes: Hashes, queries: np.ndarray, targets: np.ndarray | None, max_distance: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target rows, query rows, distances) of the pairs whose pictures (or the query's
    mirror image) are within ``max_distance`` bits; all pairs at once, a chunked matrix
    product of +-1 bit vectors (agreeing bits = 64 - 2 x distance). ``targets`` None: the
    pairs among ``queries``, each once, with either one's mirror image (a mirror's hash is
    not the hash's mirror: the median moves), in three quarters of the products."""
    none = np.empty(0, dtype=np.int64)
    a, b, distance = [none], [none], [none]
    within = targets is None
    targets = queries if within else targets
    if len(queries) == 0 or len(targets) == 0:
        return none, none, none
    signs = _signs(hashes.whole)  # (N, 2, 64): +-1 per bit
    known = signs[targets, 0]  # (T, 64)
    for start in range(0, len(queries), _CHUNK):
        chunk = queries[start : start + _CHUNK]
        first = start if within else 0  # among themselves: only the later ones
        both = signs[chunk].reshape(-1, HASH_BITS)  # picture and mirror, interleaved
        agree = (both @ known[first:].T).reshape(len(chunk), 2, -1).max(axis=1)
        if within:  # the other way round too: the query's picture and the target's mirror
            agree = np.maximum(agree, signs[chunk, 0] @ signs[targets[first:], 1].T)
        q, t = np.nonzero(agree >= HASH_BITS - 2 * max_distance)
        if within:
            q, t = q[t + first > q + start], t[t + first > q + start]
        a.append(targets[first:][t])
        b.append(chunk[q])
        distance.append(((HASH_BITS - agree[q, t]) / 2).astype(np.int64))
    return np.concatenate(a), np.concatenate(b), np.concatenate(distance)


def chance_distance(hashes: Hashes, rows: np.ndarray, seed: int = 0) -> int:
    """The pHash distance (picture or mirror) that a share CHANCE of random pairs of different
    pictures among ``rows`` is within: 64 when there are too few pictures to pair. A hash
    tells copies apart only where this is well above the distance it calls a copy."""
    if len(rows) < 2:
        return HASH_BITS
    rng = np.random.default_rng(seed)
    n = min(SAMPLE, len(rows))
    left, right = rng.choice(rows, n, replace=False), rng.choice(rows, n, replace=False)
    signs = _signs(hashes.whole)
    agree = (signs[left].reshape(-1, HASH_BITS) @ signs[right, 0].T).reshape(n, 2, n).max(axis=1)
    distance = (HASH_BITS - agree[left[:, None] != right[None, :]]) / 2
    return int(np.quantile(distance, CHANCE, method="lower"))


def _signs(packed: np.ndarray) -> np.ndarray:
    """(N, K) uint64 hashes as (N, K, 64) float32 +-1 bits."""
    bits = np.unpackbits(packed.astype(">u8").view(np.uint8).reshape(*packed.shape, 8), axis=-1)
    return bits.astype(np.float32) * 2 - 1


def _grey(pixels: np.ndarray, side: int):
    """(n, side, side) float32 luminance (ITU-R 601, PIL's "L") of uint8 images, resized by
    area averaging. NumPy weighs the channels straight from uint8: a third of the time torch
    took to make floats of them first and weigh those (224-pixel pictures), the same hashes."""
    import torch

    pixels = np.asarray(pixels)
    if pixels.shape[-1] == 3:
        luma = pixels @ RGB_TO_LUMA
    else:
        luma = pixels[..., 0].astype(np.float32)
    return _resized(torch.from_numpy(luma), side, area=True)


def _resized(batch, side: int, area: bool = False):
    """(n, side, side): antialiased bilinear, or area averaging (``area``)."""
    import torch.nn.functional as F

    if batch.shape[-2:] == (side, side):
        return batch.contiguous()
    mode = {"mode": "area"} if area else {"mode": "bilinear", "antialias": True}
    return F.interpolate(batch[:, None], size=(side, side), **mode)[:, 0]


def _window_boxes(side: int) -> list[tuple[int, int, int, int]]:
    """The centre and the four corner windows of a ``side`` square, WINDOW of each side."""
    size = round(side * WINDOW)
    far, middle = side - size, (side - size) // 2
    corners = [(middle, middle), (0, 0), (far, 0), (0, far), (far, far)]
    return [(x, y, x + size, y + size) for x, y in corners]


_BOXES = _window_boxes(_GREY_SIDE)
