"""What the audit computes from the cached images and embeddings, kept beside them, so an audit
run again reads it instead of computing it: the perceptual hashes, the pixel statistics and
the label check's out-of-sample probabilities.

Each result is an .npz in ``<cache_dir>/audit/``, named by a digest of everything it was
computed from (the image cache's file, the rows, the labels, the embeddings' bytes, the
settings that change it), so a change to any of them computes afresh and nothing stale is
read. Files are written atomically: an audit stopped with Ctrl-C leaves either the old file,
the new one or none, never half of one; a file that cannot be read is computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.fileio import atomic_path

VERSION = 1  # bumped when a stored result's meaning changes


def fingerprint(array: np.ndarray) -> str:
    """A digest of an array's shape, type and bytes (a key part)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()[:24]


class Memo:
    """``memo(name, key, compute)``: the arrays ``compute()`` returns, read from the folder
    when they were stored under the same name and key (``folder`` None: always computed)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.hits: list[str] = []  # the names read from the folder (the timings say so)

    def __call__(
        self, name: str, key: dict[str, Any], compute: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        if self.folder is None:
            return compute()
        text = json.dumps({**key, "version": VERSION}, sort_keys=True, default=str)
        path = self.folder / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:20]}.npz"
        stored = _read(path)
        if stored is not None:
            self.hits.append(name)
            return stored
        arrays = compute()
        with atomic_path(path) as tmp, open(tmp, "xb") as handle:
            np.savez(handle, **arrays)
        return arrays


def store_beside(images_id: str | None, cache_dir: str | os.PathLike | None) -> Memo:
    """The audit's store beside the images ``images_id`` names (``ImageCache.id``), in
    ``cache_dir`` (else the default cache); none for images that have no name."""
    from imgclf.data.pipeline.cache import resolve_cache_dir

    if images_id is None:
        return Memo(None)
    return Memo(resolve_cache_dir(cache_dir) / "audit")


def _read(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # unreadable: computed again and written over
