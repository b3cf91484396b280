"""A one-line hint when the training classes are long-tailed and nothing corrects for it.

Rebalancing is not the default: it trades the common classes' recall for the rare ones',
right when every class matters (macro F1, a balanced test set) and wrong when the images to
classify come in the training frequencies; only the user knows which (README, "Imbalanced
classes"; BENCHMARKS.md, "Imbalance").
"""

from __future__ import annotations

import numpy as np

from imgclf.config import TrainConfig

HINT_RATIO = 10.0  # largest over smallest training class; measured on CIFAR-10 at 10 and 100


def imbalance_hint(
    labels: np.ndarray, train: np.ndarray, classes: list[str], cfg: TrainConfig
) -> str | None:
    """The hint for a training split whose largest class is ``HINT_RATIO`` times its smallest
    or more, when neither ``sampler`` nor ``class_weight`` corrects it; else None."""
    if cfg.sampler != "shuffle" or cfg.class_weight is not None or len(train) == 0:
        return None
    counts = np.bincount(labels[train], minlength=len(classes))
    present = np.flatnonzero(counts)
    if len(present) < 2:
        return None
    large, small = present[counts[present].argmax()], present[counts[present].argmin()]
    ratio = counts[large] / counts[small]
    if ratio < HINT_RATIO:
        return None
    return (
        f"imbalanced training classes: ratio {ratio:.0f} (largest {classes[large]} "
        f"{counts[large]:,}, smallest {classes[small]} {counts[small]:,}); --sampler balanced "
        "draws every class equally often (README, Imbalanced classes)"
    )
