"""Prediction sets by split conformal prediction, and the validation scores that make them:
with the validation split's conformity scores kept (``ConformalScores``, a buffer, so the
bundle's weights carry them), ``sets(probs, scores, 0.9)`` gives each image the smallest set of
classes that holds its true class with probability 0.9 (marginally, over images like the
validation ones). An older bundle has no scores; the model then gives no sets and says so.

The score is LAC's (least ambiguous set-valued classifiers, Sadinle et al. 2019): one minus
the probability of the true class, whose sets are the smallest on average for a coverage. Its
quantile at level ceil((n + 1) coverage) / n of the n validation scores is the threshold; an
image's set holds every class whose probability is at least one minus it, and at least the
most probable class (so never empty). APS's score (the total probability down to the true
class) over-covered: 0.975 for 0.9 on a small digits model, with sets of 4 classes in 10.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class ConformalScores(nn.Module):
    """Sorted validation conformity scores (n,)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("scores", torch.zeros(n, dtype=torch.float64))


def scores_of(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LAC conformity scores: one minus each image's probability of its true class."""
    return 1.0 - probs[np.arange(len(labels)), labels].astype(np.float64)


def threshold(scores: np.ndarray, coverage: float) -> float:
    """The conformal quantile of sorted or unsorted validation ``scores`` for ``coverage``
    (1.0 when there are too few scores for it: every class is then in every set)."""
    n = len(scores)
    rank = math.ceil((n + 1) * coverage)
    if rank > n:
        return 1.0
    return float(np.sort(scores)[rank - 1])


def sets(probs: np.ndarray, scores: np.ndarray, coverage: float) -> np.ndarray:
    """(N, K) bool: each image's prediction set at ``coverage``."""
    cut = threshold(scores, coverage)
    members = 1.0 - probs.astype(np.float64) <= cut + 1e-12
    members[np.arange(len(probs)), probs.argmax(axis=1)] = True
    return members


def coverage_and_size(members: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The share of images whose set holds the true class, and the mean set size."""
    covered = members[np.arange(len(labels)), labels]
    return float(covered.mean()), float(members.sum(axis=1).mean())
