"""The one in-memory description every data source reads into.

Images are either file paths (decoded later, once, into the cache) or a uint8 array
(N, H, W, C) with C in {1, 3}. Labels are integers indexing ``classes``.

Class order is stable and documented: class-folder, CSV and string labels are sorted by name
(the order Keras and torchvision use); integer labels keep their numeric order; built-in sets
use their official label order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


class Skipped(NamedTuple):
    """A file seen in the source but left out, with the reason (reported, never silent).

    A named pair, so training's skips and prediction's read alike: ``s.path`` or ``path, reason``.
    """

    path: str
    reason: str


@dataclass
class DataSource:
    """A labelled image collection: file paths or a uint8 array, integer labels, class names."""

    name: str
    classes: list[str]
    labels: np.ndarray
    paths: list[Path] | None = None
    images: np.ndarray | None = None
    splits: np.ndarray | None = None
    skipped: list[Skipped] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if (self.paths is None) == (self.images is None):
            raise ValueError("a DataSource holds either paths or images, exactly one of them")
        if len(self.labels) != len(self):
            raise ValueError(f"{len(self)} images but {len(self.labels)} labels")
        if self.splits is not None:
            self.splits = np.asarray(self.splits, dtype=object)

    def __len__(self) -> int:
        return len(self.paths) if self.paths is not None else len(self.images)

    @property
    def is_array(self) -> bool:
        """True when the pixels are already in memory (npz, built-in sets)."""
        return self.images is not None

    def subset(self, index: np.ndarray) -> DataSource:
        """The items at ``index`` (same classes, no skipped list)."""
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self,
            labels=self.labels[index],
            paths=[self.paths[i] for i in index] if self.paths is not None else None,
            images=self.images[index] if self.images is not None else None,
            splits=self.splits[index] if self.splits is not None else None,
            skipped=[],
        )

    def class_counts(self) -> dict[str, int]:
        """Images per class name, in class order."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts, strict=True)}

    def item_name(self, i: int) -> str:
        """A printable name for item ``i``: its path, or ``name[i]`` for array sources."""
        return str(self.paths[i]) if self.paths is not None else f"{self.name}[{i}]"


def encode_labels(values) -> tuple[list[str], np.ndarray]:
    """Class names and integer labels from raw labels: integers by value, text by name.

    Whole-number floats (1.0, 2.0 from an array saved as float) count as integers.
    """
    text = [_integer_text(v) for v in values]
    if all(t.removeprefix("-").isdecimal() and t.isascii() for t in text):
        classes = [str(v) for v in sorted({int(t) for t in text})]
        text = [str(int(t)) for t in text]
    else:
        classes = sorted(set(text))
    index = {c: k for k, c in enumerate(classes)}
    return classes, np.asarray([index[t] for t in text], dtype=np.int64)


def _integer_text(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()
