"""A data fingerprint for the ledger: which images, with which labels, split how.

Two runs with the same fingerprint trained and were scored on the same images: the same file
names and sizes (or the same array bytes), the same labels and the same split rows (so the
same split seed and fractions). Modification times are left out, so a copied dataset keeps
its fingerprint.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from imgclf.data.source import DataSource
from imgclf.data.splits import Splits


def data_fingerprint(source: DataSource, splits: Splits) -> str:
    """A 16-byte hex digest of the files (names and sizes) or array, labels and splits."""
    digest = hashlib.blake2b(b"imgclf-data-v1", digest_size=16)
    if source.paths is None:
        images = np.ascontiguousarray(source.images)
        digest.update(str(images.shape).encode())
        digest.update(images.data)
    else:
        for path in source.paths:
            try:
                size = str(os.stat(path).st_size)
            except OSError as exc:
                size = f"error:{exc.errno}"
            digest.update(os.fsencode(path.name) + b"\0" + size.encode() + b"\0")
    digest.update(np.ascontiguousarray(source.labels, dtype=np.int64).data)
    digest.update("\0".join(source.classes).encode())
    for name, rows in splits.as_dict().items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(rows, dtype=np.int64).data)
    return digest.hexdigest()
