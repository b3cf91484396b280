"""From any data to what training needs: scanned, split and decoded once.

``prepare_data`` reads the source (with the decisions file of ``data.decisions`` applied: rows
dropped, labels changed), runs the (cached) scan so bad files are found once and left out with
their reason, builds (or reuses) the decoded-image cache, and makes the splits, keeping copies
(exact, and altered ones found on the decoded pixels: ``copies.py``) on one side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imgclf.config import Config
from imgclf.data.formats.decisions import Decisions, decide
from imgclf.data.formats.files import display_path
from imgclf.data.formats.resolve import DataLike, read_source
from imgclf.data.pipeline.cache import ImageCache, build_image_cache
from imgclf.data.pipeline.copies import CopyGroups, copy_groups
from imgclf.data.pipeline.decode import FileRecord, is_grayscale_mode
from imgclf.data.pipeline.inspect import DataReport, build_report
from imgclf.data.pipeline.scan import scan_source
from imgclf.data.pipeline.splits import Splits, carved_splits, make_splits
from imgclf.data.source import DataSource
from imgclf.identity import stat_files

DEFAULT_IMAGE_SIZE = (224, 224)


@dataclass
class PreparedData:
    """A scanned, split and (optionally) decoded data source; rows align with ``source``."""

    source: DataSource
    records: list[FileRecord]
    splits: Splits
    report: DataReport
    image_size: tuple[int, int]
    color_mode: str
    cache: ImageCache | None = None
    decisions: Decisions | None = None  # what data.decisions applied, if it names a file
    # rows of val and test with a copy in an earlier split, found by the run's quick audit
    leaks: dict[str, np.ndarray] = field(default_factory=dict)
    copies: CopyGroups | None = None  # the copies the splits kept together
    stats: list | None = None  # the files' identity.stat_files, taken once as they were read

    @property
    def classes(self) -> list[str]:
        return self.source.classes


def prepare_data(
    data: DataLike,
    config: Config,
    decode: bool = True,
    progress: bool = True,
    default_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
) -> PreparedData:
    """Read, scan, split and (when ``decode``) cache the images of ``data``."""
    cfg = config.data
    source, decisions = decide(read_source(data, cfg), cfg.decisions)
    stats = None if source.is_array else stat_files(source.paths)
    records = scan_source(source, cfg.cache_dir, cfg.workers, progress, stats)
    usable = np.array([r.ok for r in records], dtype=bool)
    image_size = resolve_image_size(cfg.image_size, records, default_size)
    color_mode = resolve_color_mode(cfg.color_mode, records)
    cache = None
    if decode:  # before the splits: the copies they keep together are found on the pixels
        cache = build_image_cache(
            source, image_size, cfg.fit, color_mode, cfg.cache_dir, cfg.workers, progress, stats
        )
    copies = _copies(source, records, usable, cache, cfg)
    splits = make_splits(
        source.labels,
        source.classes,
        source.splits,
        cfg.val_split,
        cfg.test_split,
        config.seed,
        usable,
        copies.groups,
    )
    prepared = PreparedData(
        source=source,
        records=records,
        splits=splits,
        report=build_report(source, records, splits),
        image_size=image_size,
        color_mode=color_mode,
        cache=cache,
        decisions=decisions,
        copies=copies,
        stats=stats,
    )
    if cache is not None:
        _drop_rows_that_failed(prepared)
    return prepared


def _copies(source: DataSource, records, usable, cache: ImageCache | None, cfg) -> CopyGroups:
    """The copies the splits keep together: exact ones, and altered ones too when a split is
    carved from decoded images (a split the source gives is kept as it is)."""
    carved = carved_splits(source.splits, usable, cfg.val_split, cfg.test_split)
    if cache is None or not carved:
        return copy_groups(records)
    rows = np.flatnonzero(usable & cache.valid)  # a given split's images too: chains of copies
    return copy_groups(records, cache.images, rows, cache.id, cfg.cache_dir)


def resolve_image_size(
    requested: tuple[int, int] | None,
    records: list[FileRecord],
    default: tuple[int, int] = DEFAULT_IMAGE_SIZE,
) -> tuple[int, int]:
    """The requested size, else the images' own size when they all share one, else ``default``."""
    if requested is not None:
        return requested
    sizes = {(r.height, r.width) for r in records if r.ok}
    return sizes.pop() if len(sizes) == 1 else default


def resolve_color_mode(requested: str, records: list[FileRecord]) -> str:
    """'auto' becomes 'grayscale' when every usable image is grayscale, else 'rgb'."""
    if requested != "auto":
        return requested
    modes = {r.mode for r in records if r.ok}
    return "grayscale" if modes and all(is_grayscale_mode(m) for m in modes) else "rgb"


def _drop_rows_that_failed(prepared: PreparedData) -> None:
    """Files that changed between scan and decode and no longer decode leave every split."""
    failed = {i: r for i, r in prepared.cache.reasons.items() if prepared.records[i].ok}
    if not failed:
        return
    bad = np.fromiter(failed, dtype=np.int64)
    splits = prepared.splits
    splits.train, splits.val, splits.test = (
        np.setdiff1d(index, bad) for index in (splits.train, splits.val, splits.test)
    )
    prepared.report.problems += [
        {"path": display_path(prepared.source.item_name(i)), "reason": reason}
        for i, reason in failed.items()
    ]
