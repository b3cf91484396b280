"""Outliers: images far from every class in embedding space, such as an off-topic photo or a
blank frame that slipped into a class folder.

cleanlab's ``OutOfDistribution`` scores each usable image by the mean cosine distance to its
``neighbors`` nearest images of any class (a photo of a church among cats, dogs and pandas has
no close neighbour in any of them): ``exp(-distance / median distance)``, in (0, 1], lower is
stranger. An image is flagged when its distance is above the third quartile of all distances
plus ``outlier_iqr`` interquartile ranges: Tukey's fence, the rule of cleanlab's Datalab
(whose default threshold is this fence at 1.7). The score does not depend on the labels, so a
wrong label is the label check's finding, not this one's.
"""

from __future__ import annotations

import numpy as np

from imgclf.audit.inputs import AuditData
from imgclf.audit.issues import Issue

MIN_IMAGES = 10  # fewer images give no stable neighbourhood or quartiles


def outlier_scores(embeddings: np.ndarray, neighbors: int) -> np.ndarray:
    """cleanlab's kNN outlier score of every row of ``embeddings``: (0, 1], lower is stranger."""
    from cleanlab.outlier import OutOfDistribution

    k = min(neighbors, len(embeddings) - 1)
    features = np.ascontiguousarray(embeddings, dtype=np.float32)
    scores = OutOfDistribution(params={"k": k}).fit_score(features=features, verbose=False)
    return np.asarray(scores, dtype=np.float64)


def fence(scores: np.ndarray, iqr: float) -> float:
    """The score below which an image is an outlier: Tukey's upper fence on the distances
    (``-log score`` is the distance over its median, so the fence is scale-free)."""
    distance = -np.log(np.clip(scores, 1e-12, 1.0))
    q1, q3 = np.percentile(distance, [25, 75])
    return float(np.exp(-(q3 + iqr * (q3 - q1))))


def find_outliers(
    data: AuditData, embeddings: np.ndarray, neighbors: int, iqr: float
) -> tuple[list[Issue], float | None]:
    """(one issue per outlier among the usable rows, the score fence), or ([], None) when the
    data has fewer than MIN_IMAGES usable images."""
    rows = data.rows
    if len(rows) < MIN_IMAGES:
        return [], None
    scores = outlier_scores(embeddings[rows], neighbors)
    below = fence(scores, iqr)
    issues = [
        Issue(int(row), "outlier", score=float(score))
        for row, score in zip(rows, scores, strict=True)
        if score < below
    ]
    return issues, below
