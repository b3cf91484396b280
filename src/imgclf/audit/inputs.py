"""What every check reads, row-aligned with the data: names, labels, splits, which rows can be
used, the decoded images and the scan's facts.

It is made from the data room's PreparedData (scan -> split -> decode once), so the audit reads
the same cached pixels and the same splits that ``imgclf train`` would, and decodes nothing
twice. A row that the scan or the decoder refused is kept with its reason: the audit reports
it instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.data.formats.files import display_path
from imgclf.data.pipeline.decode import FileRecord
from imgclf.data.pipeline.prepare import PreparedData

SPLIT_ORDER = ("train", "val", "test")  # a copy in a later split leaks from an earlier one


def split_rank(name: str) -> int:
    """A split's place in SPLIT_ORDER; a row in no split ('') comes last."""
    return SPLIT_ORDER.index(name) if name in SPLIT_ORDER else len(SPLIT_ORDER)


@dataclass
class AuditData:
    """The rows of one data source as the checks see them."""

    source: str  # how the data is named in messages
    names: list[str]  # a printable path (or ``name[i]``) per row
    labels: np.ndarray  # int label per row
    classes: list[str]
    split: np.ndarray  # 'train', 'val', 'test' or '' (a row in no split) per row
    usable: np.ndarray  # bool: scanned and decoded
    problems: dict[int, str]  # row -> why it cannot be used
    records: list[FileRecord]  # the scan's facts: original size, mode, content digest
    images: np.ndarray  # the decoded-image cache (N, H, W, C) uint8; unusable rows are zeros
    images_id: str | None  # names the images (ImageCache.id): keys the embeddings and the store
    paths: list[Path] | None = None  # the image files (None: an array source)
    fixed_splits: bool = False  # the source named its splits (folders, a split column)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def rows(self) -> np.ndarray:
        """The usable rows, in order."""
        return np.flatnonzero(self.usable)

    def label_name(self, row: int) -> str:
        return self.classes[int(self.labels[row])]


def audit_data(prepared: PreparedData) -> AuditData:
    """The AuditData of prepared (decoded) data."""
    source, cache = prepared.source, prepared.cache
    if cache is None:
        raise ValueError("the audit reads decoded images: prepare the data with decode=True")
    problems = {i: r.reason for i, r in enumerate(prepared.records) if not r.ok}
    problems.update({i: why for i, why in cache.reasons.items() if i not in problems})
    usable = np.ones(len(source), dtype=bool)
    usable[list(problems)] = False
    return AuditData(
        source=display_path(source.name),
        names=[display_path(source.item_name(i)) for i in range(len(source))],
        labels=source.labels,
        classes=list(source.classes),
        split=prepared.splits.assignment(len(source)),
        usable=usable,
        problems=problems,
        records=prepared.records,
        images=cache.images,
        images_id=cache.id,
        paths=source.paths,
        fixed_splits=source.splits is not None,
    )
