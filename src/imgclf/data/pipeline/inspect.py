"""``imgclf inspect``: what is in the data and what is wrong with it, before any training.

Class counts per split and imbalance, image sizes, modes and formats, and the problems: files
left out with their reason, exact duplicates inside a split and across splits (leakage) with
their labels, classes too small to split, and file extensions that lie about the content.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.data.formats.files import display_path
from imgclf.data.pipeline.decode import FileRecord
from imgclf.data.pipeline.splits import Splits
from imgclf.data.source import DataSource

EMPTY_CLASS = "empty class folder"  # the start of the reason folder.py gives an empty class

_EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
    ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
}  # fmt: skip


@dataclass
class DataReport:
    """Everything ``inspect`` found, as plain data (``to_dict`` is the JSON report)."""

    source: str
    classes: list[str]
    counts: dict[str, dict[str, int]]
    sizes: dict[str, Any]
    modes: dict[str, int]
    formats: dict[str, int]
    problems: list[dict[str, str]]
    duplicates: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        splits = ", ".join(f"{s} {sum(c.values()):,}" for s, c in self.counts.items())
        return (f"DataReport({self.source}: {self.n_images:,} images, {len(self.classes)} "
                f"classes; {splits}; {len(self.problems)} problems)")  # fmt: skip

    def _repr_html_(self) -> str:
        """Images per class and split, the warnings and problems, and the sample grid when
        one was drawn (``inspect(..., out=...)``), for a notebook."""
        from pathlib import Path

        from imgclf import notebook

        splits = list(self.counts)
        rows = [[name, *(f"{self.counts[s].get(name, 0):,}" for s in splits)]
                for name in self.classes]  # fmt: skip
        grid = self.files.get("sample grid")
        picture = ""
        if grid and Path(grid).is_file():
            url = notebook.png_url(Path(grid).read_bytes())
            picture = f'<img src="{url}" width="480" alt="samples">'
        notes = [*self.warnings, *(f"{p.get('path', '')}: {p.get('reason', p)}"
                                   for p in self.problems[:10])]  # fmt: skip
        return notebook.card(
            f"Data: {self.source}: {self.n_images:,} images, {len(self.classes)} classes",
            notebook.table(["class", *splits], rows),
            "".join(notebook.line(text, "#9a6700") for text in notes), picture,
        )  # fmt: skip

    @property
    def n_images(self) -> int:
        """Usable images in all splits."""
        return sum(sum(per_class.values()) for per_class in self.counts.values())

    @property
    def imbalance_ratio(self) -> float:
        """Largest class over smallest class, over all splits (1.0 is balanced)."""
        totals = [sum(self.counts[s].get(c, 0) for s in self.counts) for c in self.classes]
        smallest = min(totals) if totals else 0
        return float(max(totals) / smallest) if smallest else float("inf")

    def left_out(self) -> tuple[str | None, list[str]]:
        """What training says of the files it leaves out: one summary line ('left out 2 of 182
        files (1 file not found, 1 empty label)', None when every file is used) and a warning
        per empty class folder (a folder, not a file, so not in the count)."""
        files = [p for p in self.problems if not p["reason"].startswith(EMPTY_CLASS)]
        warnings = [
            f"warning: {p['path']} is an empty class folder, left out (no images)"
            for p in self.problems
            if p["reason"].startswith(EMPTY_CLASS)
        ]
        if not files:
            return None, warnings
        counts: dict[str, int] = {}
        for problem in files:
            kind = problem["reason"].split(":")[0].split("(")[0].strip() or "unreadable"
            counts[kind] = counts.get(kind, 0) + 1
        detail = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        total = self.n_images + len(files)
        return f"left out {len(files)} of {total} files ({detail})", warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "n_images": self.n_images,
            "classes": self.classes,
            "counts": self.counts,
            "imbalance_ratio": round(self.imbalance_ratio, 3),
            "sizes": self.sizes,
            "modes": self.modes,
            "formats": self.formats,
            "problems": self.problems,
            "duplicates": self.duplicates,
            "warnings": self.warnings,
            "files": self.files,
        }


def build_report(source: DataSource, records: list[FileRecord], splits: Splits) -> DataReport:
    """Summarise a scanned source and its splits into a DataReport."""
    assignment = splits.assignment(len(source))
    usable = [i for i, r in enumerate(records) if r.ok]
    counts = {
        name: {c: int(n) for c, n in zip(source.classes, _bincount(source, index), strict=True)}
        for name, index in splits.as_dict().items()
        if len(index)
    }
    problems = [{"path": s.path, "reason": s.reason} for s in source.skipped]
    problems += [
        {"path": display_path(source.item_name(i)), "reason": r.reason}
        for i, r in enumerate(records)
        if not r.ok
    ]
    warnings = list(splits.warnings) + _extension_warnings(source, records)
    return DataReport(
        source=display_path(source.name),
        classes=list(source.classes),
        counts=counts,
        sizes=_size_summary([records[i] for i in usable]),
        modes=dict(Counter(records[i].mode for i in usable).most_common()),
        formats=dict(Counter(records[i].format for i in usable).most_common()),
        problems=problems,
        duplicates=_duplicates(source, records, assignment, usable),
        warnings=warnings,
    )


def _bincount(source: DataSource, index: np.ndarray) -> np.ndarray:
    return np.bincount(source.labels[index], minlength=len(source.classes))


def _size_summary(records: list[FileRecord]) -> dict[str, Any]:
    if not records:
        return {}
    widths = np.array([r.width for r in records])
    heights = np.array([r.height for r in records])
    common = Counter(f"{r.width}x{r.height}" for r in records).most_common(5)
    return {
        "width": {
            "min": int(widths.min()),
            "median": float(np.median(widths)),
            "max": int(widths.max()),
        },
        "height": {
            "min": int(heights.min()),
            "median": float(np.median(heights)),
            "max": int(heights.max()),
        },
        "most_common": dict(common),
        "smallest_side_under_32": int(np.sum(np.minimum(widths, heights) < 32)),
    }


def _duplicates(
    source: DataSource, records: list[FileRecord], assignment: np.ndarray, usable: list[int]
) -> list[dict[str, Any]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i in usable:
        groups[records[i].digest].append(i)
    found = []
    for members in groups.values():
        if len(members) < 2:
            continue
        labels = {source.classes[source.labels[i]] for i in members}
        splits = {assignment[i] for i in members if assignment[i]}
        found.append(
            {
                "items": [
                    {
                        "path": display_path(source.item_name(i)),
                        "label": source.classes[source.labels[i]],
                        "split": assignment[i],
                    }
                    for i in members
                ],
                "conflicting_labels": len(labels) > 1,
                "across_splits": len(splits) > 1,
            }
        )
    found.sort(key=lambda d: (not d["across_splits"], not d["conflicting_labels"]))
    return found


def _extension_warnings(source: DataSource, records: list[FileRecord]) -> list[str]:
    if source.is_array:
        return []
    mismatched = []
    for path, record in zip(source.paths, records, strict=True):
        expected = _EXTENSION_FORMATS.get(os.path.splitext(path)[1].lower())  # no Path: 60k
        if record.ok and expected and record.format and record.format != expected:
            mismatched.append(f"{display_path(path)} ({record.format})")
    if not mismatched:
        return []
    shown = ", ".join(mismatched[:5]) + (" ..." if len(mismatched) > 5 else "")
    return [f"{len(mismatched)} file(s) whose extension does not match the content: {shown}"]
