"""A data fingerprint for the ledger: which images, with which labels, split how.

Two runs with the same fingerprint trained and were scored on the same images: the same file
names and sizes (or the same array bytes), the same labels and the same split rows (so the
same split seed and fractions). Modification times are left out, so a copied dataset keeps
its fingerprint.
"""

from __future__ import annotations

import numpy as np

from imgclf.data.pipeline.splits import Splits
from imgclf.data.source import DataSource
from imgclf.identity import file_stamp, image_set_digest


def data_fingerprint(source: DataSource, splits: Splits) -> str:
    """A 16-byte hex digest of the files (names and sizes) or array, labels and splits."""
    if source.paths is None:
        digest = image_set_digest(b"imgclf-data-v1", images=source.images)
    else:
        files = ((path.name, file_stamp(path, mtime=False)) for path in source.paths)
        digest = image_set_digest(b"imgclf-data-v1", files=files)
    digest.update(np.ascontiguousarray(source.labels, dtype=np.int64).data)
    digest.update("\0".join(source.classes).encode())
    for name, rows in splits.as_dict().items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(rows, dtype=np.int64).data)
    return digest.hexdigest()
