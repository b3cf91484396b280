"""The instance signal: perceptual hashes (imagehash's pHash) of each decoded image, its mirror
image and a few crops of it, so that the distance between two images is small when one is a
flipped or cropped copy of the other.

Why a hash beside the embeddings: a global embedding says "a panda", not "this panda photo";
different photos of one class can be as close in it as an altered copy is to its original.
pHash keeps the coarse layout of one picture (the signs of its lowest 8x8 DCT frequencies),
which survives re-encoding, resizing and colour shifts, and differs between two photos of the
same subject. A crop moves the layout, though: on animals, copies cropped by up to 10 % were
up to 24 bits from their originals, as far as other photos. So each image is also hashed in
five windows (the centre and the four corners, WINDOW of each side), and two images are as
far apart as the closest of one's whole picture (or its mirror) to one of the other's windows,
either way round. A copy cropped by up to 10 % sits close to one window of its original.
Everything is computed on the decoded-image cache, so nothing is decoded again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgclf.progressbar import progress_bar

HASH_BITS = 64  # pHash with imagehash's default hash_size 8
WINDOW = 0.92  # a crop window's share of each side: offsets of up to 8 %, the copies' crops
_HASH_SIDE = 32  # imagehash's pHash reads a 32x32 grey image (hash_size * highfreq_factor 4)
_GREY_SIDE = 128  # each image is made grey at this size once; its windows are cut from that


@dataclass
class Hashes:
    """64-bit pHashes per row: ``whole`` (N, 2) of the picture and of its mirror image,
    ``windows`` (N, 6) of the picture and of its five crop windows."""

    whole: np.ndarray
    windows: np.ndarray


def perceptual_hashes(images: np.ndarray, rows: np.ndarray, progress: bool = False) -> Hashes:
    """The hashes of ``rows`` of the decoded images (N, H, W, C); other rows stay 0."""
    import imagehash
    from PIL import Image, ImageOps

    whole = np.zeros((len(images), 2), dtype=np.uint64)
    windows = np.zeros((len(images), 6), dtype=np.uint64)
    boxes = _window_boxes(_GREY_SIDE)
    with progress_bar(progress, "hashing images", len(rows)) as advance:
        for row in rows:
            pixels = images[row]
            picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
            grey = picture.convert("L").resize((_GREY_SIDE, _GREY_SIDE), Image.Resampling.BOX)

            def phash(part: Image.Image) -> np.uint64:
                small = part.resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.LANCZOS)
                return _packed(imagehash.phash(small).hash)

            whole[row] = phash(grey), phash(ImageOps.mirror(grey))
            windows[row, 0] = whole[row, 0]
            windows[row, 1:] = [phash(grey.crop(box)) for box in boxes]
            advance()
    return Hashes(whole, windows)


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


def _packed(bits: np.ndarray) -> np.uint64:
    return np.packbits(bits.ravel()).view(">u8")[0].astype(np.uint64)


def _window_boxes(side: int) -> list[tuple[int, int, int, int]]:
    """The centre and the four corner windows of a ``side`` square, WINDOW of each side."""
    size = round(side * WINDOW)
    far, middle = side - size, (side - size) // 2
    corners = [(middle, middle), (0, 0), (far, 0), (0, far), (far, far)]
    return [(x, y, x + size, y + size) for x, y in corners]
