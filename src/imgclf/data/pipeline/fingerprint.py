"""A data fingerprint for the ledger: which images, with which labels, split how.

Two runs with the same fingerprint trained and were scored on the same images: the same file
names and sizes (or the same array bytes), the same labels and the same split rows (so the
same split seed and fractions). Modification times are left out, so a copied dataset keeps
its fingerprint.
"""

from __future__ import annotations

import os

import numpy as np

from imgclf.data.pipeline.splits import Splits
from imgclf.data.source import DataSource
from imgclf.identity import image_set_digest, stamp, stat_files


def data_fingerprint(
    source: DataSource, splits: Splits, stats: list[os.stat_result | OSError] | None = None
) -> str:
    """A 16-byte hex digest of the files (names and sizes) or array, labels and splits
    (``stats``: the files' ``identity.stat_files``, when taken already)."""
    if source.paths is None:
        digest = image_set_digest(b"imgclf-data-v1", images=source.images)
    else:
        stats = stats if stats is not None else stat_files(source.paths)
        pairs = zip(source.paths, stats, strict=True)
        files = ((path.name, stamp(st, mtime=False)) for path, st in pairs)
        digest = image_set_digest(b"imgclf-data-v1", files=files)
    digest.update(np.ascontiguousarray(source.labels, dtype=np.int64).data)
    digest.update("\0".join(source.classes).encode())
    for name, rows in splits.as_dict().items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(rows, dtype=np.int64).data)
    return digest.hexdigest()
