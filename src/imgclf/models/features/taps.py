"""The unknown score's stage features of a frozen backbone, cached beside its embeddings.

Fitting the unknown score taps the backbone's stages over up to 1,000 training, 2,000
validation and 1,000 other images (``runs/unknowing``). On Lite0 at 160 px that pass takes
about 5 s, more than a sweep trial spends training its head on cached embeddings. A frozen
backbone gives every run on the same images the same stages, whatever its head and pooling,
so they are kept beside the embeddings, keyed as those are (the images, the weights' values,
the preprocessing, the precision) and by the stages and rows; the pooled features come from
the embeddings themselves. A missing or damaged file is computed again.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from imgclf.fileio import atomic_path
from imgclf.models.features.embeddings import features_key
from imgclf.models.inference import layer_rows
from imgclf.runtime import Runtime


def cached_stage_rows(
    model,
    images: np.ndarray,
    rows: np.ndarray,
    stages: list[str],
    batch_size: int,
    runtime: Runtime,
    folder: Path,
    images_id: str | None = None,
) -> list[np.ndarray]:
    """The stages' part of ``layer_rows(model, images, rows, stages, ...)``, read from
    ``folder`` when an earlier run on the same frozen backbone and images computed it."""
    path = Path(folder) / f"{_stages_key(model, images, images_id, runtime, stages, rows)}.npz"
    stored = _stored(path, len(stages), len(rows))
    if stored is not None:
        return stored
    computed = layer_rows(model, images, rows, stages, batch_size, runtime)[: len(stages)]
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, *computed)
    return computed


def _stages_key(model, images, images_id, runtime: Runtime, stages, rows: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=12)
    backbone = features_key(model, images, images_id, runtime.precision, pooled=False)
    digest.update(backbone.encode())
    digest.update(("stages:" + "|".join(stages)).encode())
    digest.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _stored(path: Path, count: int, length: int) -> list[np.ndarray] | None:
    """The ``count`` arrays of ``length`` rows at ``path``, or None (missing or damaged)."""
    try:
        with np.load(path) as archive:
            stages = [archive[f"arr_{i}"] for i in range(count)]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return stages if all(len(stage) == length for stage in stages) else None
