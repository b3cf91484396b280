"""Which rows are copies of one another, so that the splits imgclf carves keep each group of
copies on one side, and no copy of a training image is scored as unseen.

Exact copies share the scan's byte digest. Altered copies (re-encoded, resized, recoloured or
mirrored: what the cheap leak check after the split looks for, ``audit/quick.py``) have whole
pictures, or one's mirror image, within NEAR_DISTANCE bits of pHash on the decoded images. A
hash tells copies apart only where different pictures hash far apart (``chance_distance``):
where 1 random pair in 50 is within three times NEAR_DISTANCE (small digits: MNIST, the 8x8
set), only exact copies are grouped, and the data report says why. Groups are the connected
components of all those pairs (scipy), so a chain of copies stays together.

The pairs cost one hash per image and a matrix product over all pairs of the rows (14 s for
CIFAR-10's 60,000 images on 2 cores), so they are kept under ``copies/`` in the cache folder,
keyed by the images (the image cache's id), the rows and the distance.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.data.pipeline.cache import resolve_cache_dir
from imgclf.data.pipeline.decode import FileRecord
from imgclf.data.pipeline.hashing import (
    CHANCE,
    Hashes,
    chance_distance,
    close_pairs,
    perceptual_hashes,
)
from imgclf.fileio import atomic_path

NEAR_DISTANCE = 6  # bits of 64: whole pictures only, no embedding to confirm a pair
_FORMAT = 1


@dataclass
class CopyGroups:
    """A group id per row (equal for copies), how many rows share a group with an altered copy,
    and why altered copies were not looked for (None: they were); ``hashes`` of the rows
    ``hashed`` when this call computed them (not read from the cache folder), for the run's
    leak check to reuse."""

    groups: np.ndarray
    altered: int = 0
    note: str | None = None
    hashes: Hashes | None = None
    hashed: np.ndarray | None = None

    def hashes_for(self, rows: np.ndarray) -> Hashes | None:
        """The whole-picture hashes this call computed, if they cover ``rows``."""
        if self.hashes is None or not np.isin(rows, self.hashed).all():
            return None
        return self.hashes

    def to_dict(self) -> dict:
        """data_report.json's record of the copies the splits kept together."""
        grouped = np.bincount(self.groups, minlength=len(self.groups))[self.groups] > 1
        return {"distance_bits": NEAR_DISTANCE, "rows_in_groups": int(grouped.sum()),
                "rows_with_altered_copies": self.altered, "note": self.note}  # fmt: skip

    def sentence(self) -> str | None:
        """What training says when altered copies were kept together, else None."""
        if not self.altered:
            return None
        return (f"splits: {self.altered} images with altered copies (pHash within "
                f"{NEAR_DISTANCE} bits) kept on one side with their copies")  # fmt: skip


def exact_groups(records: list[FileRecord]) -> np.ndarray:
    """A group id per row, shared by rows with the same bytes (the scan's digest); a row that
    could not be read is its own group."""
    ids: dict[str, int] = {}
    return np.array(
        [ids.setdefault(r.digest, i) if r.ok and r.digest else i for i, r in enumerate(records)],
        dtype=np.int64,
    )


def copy_groups(
    records: list[FileRecord],
    images: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    images_id: str | None = None,
    cache_dir: Path | None = None,
) -> CopyGroups:
    """Exact copies, and with the decoded ``images`` altered copies among ``rows`` (the rows
    that decoded), grouped together. ``images_id`` names the images in the kept pairs' key
    (None: nothing is kept)."""
    exact = exact_groups(records)
    if images is None or rows is None or len(rows) < 2:
        return CopyGroups(exact)
    rows = np.asarray(rows, dtype=np.int64)
    pairs, hashes = _kept(images, rows, images_id, cache_dir)
    found = {"hashes": hashes, "hashed": None if hashes is None else rows}
    chance = int(pairs["chance"])
    if chance < 3 * NEAR_DISTANCE:
        note = (f"altered copies not grouped: different pictures here hash alike (1 random "
                f"pair in {1 / CHANCE:.0f} within {chance} bits of 64); exact copies kept "
                "together")  # fmt: skip
        return CopyGroups(exact, note=note, **found)
    groups = _components(exact, pairs["a"], pairs["b"])
    sizes = np.bincount(groups, minlength=len(groups))
    exact_sizes = np.bincount(exact, minlength=len(exact))
    altered = int(np.sum((sizes[groups] > 1) & (sizes[groups] > exact_sizes[exact])))
    return CopyGroups(groups, altered, **found)


def _components(exact: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The connected components of the exact groups joined by the pairs (a[k], b[k]), each
    named by its first row, as the exact groups are."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(exact)
    left, right = np.concatenate([np.arange(n), a]), np.concatenate([exact, b])
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return first[labels]


def _kept(
    images: np.ndarray, rows: np.ndarray, images_id: str | None, cache_dir
) -> tuple[dict, Hashes | None]:
    """The pairs of altered copies among ``rows`` and the chance distance, read from the cache
    folder when a run on the same images and rows kept them; and the hashes when computed."""
    path = None
    if images_id is not None:
        digest = hashlib.blake2b(rows.tobytes(), digest_size=8).hexdigest()
        name = f"{images_id}-{digest}-d{NEAR_DISTANCE}-v{_FORMAT}.npz"
        path = resolve_cache_dir(cache_dir) / "copies" / name
        try:
            with np.load(path) as stored:
                return {key: stored[key] for key in ("a", "b", "chance")}, None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass
    pairs, hashes = _pairs(images, rows)
    if path is not None:
        with atomic_path(path) as tmp, open(tmp, "wb") as file:
            np.savez(file, **pairs)
    return pairs, hashes


def _pairs(images: np.ndarray, rows: np.ndarray) -> tuple[dict, Hashes]:
    hashes = perceptual_hashes(images, rows, crops=False)
    chance = chance_distance(hashes, rows)
    a = b = np.empty(0, dtype=np.int64)
    if chance >= 3 * NEAR_DISTANCE:
        a, b, _ = close_pairs(hashes, rows, None, NEAR_DISTANCE)
    return {"a": a, "b": b, "chance": np.array(chance)}, hashes
