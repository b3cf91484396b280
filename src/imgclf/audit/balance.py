"""Class balance: usable images per class and split, and the imbalance ratio (the largest
class's count over the smallest's; 1.0 is balanced), overall and per split.

A ratio needs two classes: with one, the counts are still given and the ratio is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from imgclf.audit.inputs import SPLIT_ORDER


@dataclass
class Balance:
    """Counts per split ('all' first) and class, and the imbalance ratios."""

    counts: dict[str, dict[str, int]]
    ratio: float | None  # over all splits; inf when a class has no usable image
    split_ratios: dict[str, float | None]

    @property
    def largest(self) -> tuple[str, int]:
        name = max(self.counts["all"], key=self.counts["all"].get)
        return name, self.counts["all"][name]

    @property
    def smallest(self) -> tuple[str, int]:
        name = min(self.counts["all"], key=self.counts["all"].get)
        return name, self.counts["all"][name]

    def summary(self) -> str:
        """'class balance: imbalance ratio 1.40 (largest cats 400, smallest panda 286)'."""
        if self.ratio is None:
            [(name, count)] = self.counts["all"].items()
            return f"class balance: one class ({name}, {count:,} images), no ratio to give"
        (big, n_big), (small, n_small) = self.largest, self.smallest
        if n_big == n_small:
            return f"class balance: balanced, {n_big:,} images per class"
        return (
            f"class balance: imbalance ratio {_ratio_text(self.ratio)} "
            f"(largest {big} {n_big:,}, smallest {small} {n_small:,})"
        )

    def to_dict(self) -> dict[str, Any]:
        def number(ratio: float | None) -> float | str | None:
            return ratio if ratio is None or np.isfinite(ratio) else "inf"  # JSON has no inf

        return {
            "counts": self.counts,
            "imbalance_ratio": number(self.ratio),
            "split_ratios": {s: number(r) for s, r in self.split_ratios.items()},
        }


def class_balance(
    labels: np.ndarray, classes: list[str], split: np.ndarray, usable: np.ndarray
) -> Balance:
    """Counts of the usable rows per class, over all splits and in each split present."""
    counts = {"all": _per_class(labels[usable], classes)}
    for name in SPLIT_ORDER:
        chosen = usable & (split == name)
        if chosen.any():
            counts[name] = _per_class(labels[chosen], classes)
    ratios = {name: imbalance_ratio(per_class) for name, per_class in counts.items()}
    return Balance(counts, ratios.pop("all"), ratios)


def imbalance_ratio(per_class: dict[str, int]) -> float | None:
    """Largest count over smallest (inf when a class has none); None for fewer than 2 classes."""
    if len(per_class) < 2:
        return None
    smallest = min(per_class.values())
    return float(max(per_class.values()) / smallest) if smallest else float("inf")


def _per_class(labels: np.ndarray, classes: list[str]) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(classes))
    return {name: int(n) for name, n in zip(classes, counts, strict=True)}


def _ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}" if np.isfinite(ratio) else "infinite (a class has no usable image)"
