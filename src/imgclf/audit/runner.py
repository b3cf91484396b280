"""The audit, check by check, over one AuditData: the files that could not be read, then the
checks the settings name, each a function of the decoded images, embeddings, labels and splits
that returns its findings. A check that cannot run on this data says why in one note.

The embeddings are computed (or read from their cache) once, for the label, duplicate and
outlier checks alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from imgclf.audit.balance import class_balance
from imgclf.audit.duplicates import find_duplicates
from imgclf.audit.embedding import audit_embeddings
from imgclf.audit.inputs import AuditData
from imgclf.audit.issues import Issue
from imgclf.audit.labels import find_label_issues
from imgclf.audit.memo import Memo, fingerprint, store_beside
from imgclf.audit.outliers import find_outliers
from imgclf.audit.properties import PixelStats, image_properties, own_sizes, pixel_statistics
from imgclf.audit.result import Audit
from imgclf.audit.settings import AuditSettings
from imgclf.config import Config
from imgclf.data.pipeline.hashing import Hashes, perceptual_hashes
from imgclf.runtime import Runtime


def run_audit(
    data: AuditData,
    settings: AuditSettings,
    config: Config,
    runtime: Runtime | None = None,
    progress: bool = False,
) -> Audit:
    """Every check ``settings.checks`` names, over ``data``.

    Args:
        config: the model that embeds the images (``model``), the cache folder, the embedding
            backend and batch size (``train.embed_backend``, ``train.eval_batch_size``).
        runtime: the device the embeddings are computed on (default: the CPU).
    """
    audit = Audit(data, settings, issues=unreadable_issues(data))
    memo = store_beside(data.images_id, config.data.cache_dir)
    embeddings = None
    if {"labels", "duplicates", "outliers"} & set(settings.checks) and len(data.rows):
        with _timed(audit, "embeddings"):
            embeddings = audit_embeddings(
                data,
                config.model,
                fit=config.data.fit,
                cache_dir=config.data.cache_dir,
                batch_size=config.train.eval_batch_size,
                backend=config.train.embed_backend,
                runtime=runtime,
                progress=progress,
            )
    if "labels" in settings.checks:
        _labels(audit, embeddings, config.seed, memo)
    if "duplicates" in settings.checks:
        _duplicates(audit, embeddings, progress, memo)
    if "outliers" in settings.checks:
        _outliers(audit, embeddings)
    if "balance" in settings.checks:
        with _timed(audit, "balance"):
            audit.balance = class_balance(data.labels, data.classes, data.split, data.usable)
    if "properties" in settings.checks:
        with _timed(audit, "properties"):
            stats = _pixel_statistics(data, memo)
            audit.issues += image_properties(data.images, data.rows, data.records, settings, stats)
    audit.cached = memo.hits
    return audit


def _pixel_statistics(data: AuditData, memo: Memo) -> PixelStats:
    rows = data.rows
    sizes = own_sizes(data.records, rows)
    key = {"images": data.images_id, "rows": fingerprint(rows), "sizes": fingerprint(sizes),
           "at_own_size": True}  # fmt: skip
    stored = memo(
        "pixel-statistics",
        key,
        lambda: vars(pixel_statistics(data.images, rows, sizes)),
    )
    return PixelStats(**stored)


def _hashes(data: AuditData, memo: Memo, progress: bool) -> Hashes:
    key = {"images": data.images_id, "rows": fingerprint(data.rows), "crops": True}
    stored = memo("hashes", key, lambda: vars(perceptual_hashes(data.images, data.rows, progress)))
    return Hashes(**stored)


def unreadable_issues(data: AuditData) -> list[Issue]:
    """One issue per row the scan or the decoder refused, with its reason."""
    return [Issue(row, "unreadable", detail=why) for row, why in sorted(data.problems.items())]


def _labels(audit: Audit, embeddings: np.ndarray | None, seed: int, memo: Memo) -> None:
    if embeddings is None:
        audit.notes.append("labels: no usable image to check")
        return
    settings = audit.settings
    with _timed(audit, "labels"):
        found = find_label_issues(
            audit.data, embeddings, settings.folds, settings.label_threshold, seed, memo
        )
    audit.issues += found.issues
    audit.label_folds, audit.label_agreement = found.folds, found.agreement
    audit.notes += found.notes


def _duplicates(audit: Audit, embeddings: np.ndarray | None, progress: bool, memo: Memo) -> None:
    data = audit.data
    if embeddings is None or len(data.rows) < 2:
        audit.notes.append(
            f"duplicates: need two usable images to compare, the data has {len(data.rows)}"
        )
        return
    with _timed(audit, "hashes"):
        hashes = _hashes(data, memo, progress)
    with _timed(audit, "duplicates"):
        found = find_duplicates(data, embeddings, hashes, audit.settings)
    audit.groups, audit.leaks = found.groups, found.leaks
    audit.issues += found.issues


def _outliers(audit: Audit, embeddings: np.ndarray | None) -> None:
    settings = audit.settings
    if embeddings is None:
        audit.notes.append("outliers: no usable image to check")
        return
    with _timed(audit, "outliers"):
        found, audit.outlier_scores, note = find_outliers(
            audit.data, embeddings, settings.outlier_neighbors, settings.outlier_quantile
        )
    audit.issues += found
    if note:
        audit.notes.append(note)


@contextmanager
def _timed(audit: Audit, name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    audit.timings[name] = time.perf_counter() - started
