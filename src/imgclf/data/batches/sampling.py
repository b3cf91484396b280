"""Class-balanced epoch orders for long-tailed data: the rare classes are drawn as often as the
common ones, instead of being weighted in the loss.

An order is a function of the training rows, their labels and a generator the loader seeds
with (seed, epoch) alone, so it is the same on every rank and each rank keeps its share of each
global batch: a balanced epoch in several processes is the one process's epoch.
"""

from __future__ import annotations

import numpy as np


def balanced_order(rows: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``len(rows)`` rows drawn with replacement, each class equally likely (a class uniformly
    among those present, then one of its rows uniformly): what torch's WeightedRandomSampler
    draws with weights 1 / class count, and as long as an epoch over ``rows``.

    Args:
        rows: the training rows (a split's indices into the image array).
        labels: the class of each of ``rows``.
        rng: the epoch's generator.
    """
    rows, labels = np.asarray(rows), np.asarray(labels)
    by_class = np.argsort(labels, kind="stable")  # rows grouped by class, each in rows' order
    present, starts, counts = np.unique(labels[by_class], return_index=True, return_counts=True)
    classes = rng.integers(0, len(present), len(rows))
    members = rng.integers(0, counts[classes])
    return rows[by_class[starts[classes] + members]]
