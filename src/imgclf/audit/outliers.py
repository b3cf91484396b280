"""Outliers: images far from every class in embedding space, such as an off-topic photo or a
blank frame that slipped into a class folder.

An image's distance to a class is the distance (unit embeddings) to its k-th nearest image of
that class, itself left out: the k-th-neighbour distance of Sun et al. (2022), per class. Its
distance to the nearest class is the smallest of these. The yardstick comes from the data
itself: how far images are from the nearest class they do *not* belong to; an image is flagged
when it is farther from every class than the median image is from a wrong one. The score is
that ratio (above 1: flagged).

Measured on the animals photos with 36 planted off-topic photos and frames (BENCHMARKS.md,
"Data audit"), this ranked them with an AUROC of 0.999, where cleanlab's mean distance to the
10 nearest images of any class reached 0.96 and its Tukey fence flagged 1 to 2 of the 36:
web photos of one class are diverse, so the distances of normal images spread as wide as the
gap to the strangers.

Outliers are rare. Where the classes overlap in the embedding (CIFAR-10's 32-pixel pictures
upscaled for an ImageNet backbone: the median image is nearly as close to a wrong class as to
its own), the yardstick sinks and 29 % of 10,000 images passed it. Past ``MAX_SHARE`` the check
flags only the farthest ``1 - FALLBACK_QUANTILE`` of the images and says why in a note.
"""

from __future__ import annotations

import numpy as np

from imgclf.audit.inputs import AuditData
from imgclf.audit.issues import Issue
from imgclf.audit.neighbours import distance, most_similar

MIN_IMAGES = 10  # fewer images give no stable neighbourhood or yardstick
MAX_SHARE = 0.05  # more than this share past the yardstick: the classes overlap
FALLBACK_QUANTILE = 0.99  # then only the images past this quantile of the scores are flagged


def class_distances(points: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(N, classes present) distances from each unit-length point to its k-th nearest point
    of each class, the point itself left out (k shrinks for a small class; a class with one
    image is infinitely far from everything)."""
    present = np.unique(labels)
    distances = np.full((len(points), len(present)), np.inf)
    for column, label in enumerate(present):
        members = np.flatnonzero(labels == label)
        used = min(k, len(members) - 1)
        if used < 1:
            continue
        cosines, neighbours = most_similar(points, used + 1, among=members)
        found = distance(cosines)
        is_self = (members[neighbours] == np.arange(len(points))[:, None]).any(axis=1)
        distances[:, column] = np.where(is_self, found[:, used], found[:, used - 1])
    return distances


def outlier_scores(points: np.ndarray, labels: np.ndarray, k: int, quantile: float) -> np.ndarray:
    """Each point's distance to its nearest class over the ``quantile`` of the points'
    distances to the nearest class they do not belong to (above 1: an outlier)."""
    distances = class_distances(points, labels, k)
    own = np.searchsorted(np.unique(labels), labels)
    wrong = distances.copy()
    wrong[np.arange(len(points)), own] = np.inf
    yardstick = np.quantile(wrong.min(axis=1)[np.isfinite(wrong.min(axis=1))], quantile)
    return distances.min(axis=1) / max(float(yardstick), 1e-12)


def find_outliers(
    data: AuditData, embeddings: np.ndarray, neighbors: int, quantile: float
) -> tuple[list[Issue], np.ndarray | None, str]:
    """(one issue per outlier among the usable rows, every usable row's score, '') or ([],
    None, a note why the check could not run: too few images, or one class, which leaves no
    wrong class to measure against)."""
    rows = data.rows
    if len(rows) < MIN_IMAGES:
        n = len(rows)
        return [], None, f"outliers: need {MIN_IMAGES} usable images to compare, the data has {n}"
    labels = data.labels[rows]
    if len(np.unique(labels)) < 2:
        return [], None, "outliers: need two classes to measure against, the data has one"
    points = embeddings[rows].astype(np.float32)
    points /= np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    scores = outlier_scores(points, labels, neighbors, quantile)
    cut, note = overlap_cut(scores)
    issues = [
        Issue(int(row), "outlier", score=float(score))
        for row, score in zip(rows, scores, strict=True)
        if score > cut
    ]
    return issues, scores, note


def overlap_cut(scores: np.ndarray) -> tuple[float, str]:
    """The score an outlier must pass: 1, or, when more than MAX_SHARE of the images pass it,
    the FALLBACK_QUANTILE of the scores and a note that says so."""
    past = int((scores > 1.0).sum())
    if past <= MAX_SHARE * len(scores):
        return 1.0, ""
    kept = 1.0 - FALLBACK_QUANTILE
    note = (
        f"outliers: {past:,} images ({past / len(scores):.0%}) are farther from every class "
        "than most images are from a wrong one, so the classes overlap in this embedding; only "
        f"the farthest {kept:.0%} are flagged"
    )
    return max(1.0, float(np.quantile(scores, FALLBACK_QUANTILE))), note
