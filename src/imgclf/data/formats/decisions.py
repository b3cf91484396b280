"""Decisions on flagged images (keep, drop, relabel), read from the CSV audit.html saves and
applied to a DataSource when the data is read.

The user's files are never touched: a drop leaves the image's row out of the source and a
relabel changes its label, before the scan and the splits, so every run (and an evaluation of
the run's own data) that names the file reads the same images. The whole file is checked
first: any wrong row is one DataError line and nothing is applied.

Paths are matched as issues.csv prints them (``display_path`` of the source's item name), or
relative to the data folder (a class-folder root, a CSV's folder), or to the working folder.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.data.formats.files import display_path
from imgclf.data.formats.table import read_table_file
from imgclf.data.source import DataSource
from imgclf.errors import DataError, did_you_mean

DECISIONS = ("keep", "drop", "relabel")
COLUMNS = ("path", "decision", "label")  # label: the new class of a relabel, else empty
_HINT = (
    "Paths are matched as issues.csv prints them, or relative to the data folder; "
    "audit the same data as you train on."
)


@dataclass(frozen=True)
class Decisions:
    """A decisions file checked against one source: the rows it drops and the new labels."""

    file: str  # as given, for messages
    sha256: str  # of the file's bytes: what a run records
    drop: frozenset[int] = frozenset()
    relabel: dict[int, int] = field(default_factory=dict)  # row -> new label (changed ones)
    keep: int = 0  # rows decided keep (nothing to do, counted for the record)

    def summary(self) -> str:
        """The one line a run prints: 'decisions: 3 dropped, 2 relabelled (decisions.csv)'."""
        return f"decisions: {len(self.drop)} dropped, {len(self.relabel)} relabelled ({self.file})"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "dropped": len(self.drop),
                "relabelled": len(self.relabel), "kept": self.keep,
                "summary": self.summary()}  # fmt: skip


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def decide(
    source: DataSource, path: str | os.PathLike | None
) -> tuple[DataSource, Decisions | None]:
    """``source`` with the decisions file at ``path`` applied (None: as it is)."""
    if path is None:
        return source, None
    decisions = read_decisions(path, source)
    return apply_decisions(source, decisions), decisions


def read_decisions(path: str | os.PathLike, source: DataSource) -> Decisions:
    """Read and check a decisions CSV against ``source``; the first problem is one DataError."""
    path = Path(path)
    name = display_path(path)
    if not path.is_file():
        raise DataError(
            f"Decisions file {name} does not exist. Pass the decisions.csv saved from audit.html "
            "(columns path, decision, label)."
        )
    digest = file_sha256(path)
    frame = read_table_file(path)
    for column in COLUMNS[:2]:
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns)) or "none"
            hint = did_you_mean(column, frame.columns)
            raise DataError(
                f"Decisions file {name} has no column '{column}'.{hint} Columns: {found}. A "
                "decisions file has the columns path, decision and label (the new class, for "
                "relabel)."
            )
    chosen = _chosen(frame, source, name)
    drop = frozenset(row for row, (word, _) in chosen.items() if word == "drop")
    relabel = {
        row: label
        for row, (word, label) in chosen.items()
        if word == "relabel" and label != int(source.labels[row])
    }
    keep = sum(word == "keep" for word, _ in chosen.values())
    return Decisions(name, digest, drop, relabel, keep)


def apply_decisions(source: DataSource, decisions: Decisions) -> DataSource:
    """The source without the dropped rows and with the new labels (its skipped list kept)."""
    labels = source.labels.copy()
    for row, label in decisions.relabel.items():
        labels[row] = label
    kept = np.setdiff1d(np.arange(len(source)), np.fromiter(decisions.drop, dtype=np.int64))
    applied = replace(source, labels=labels).subset(kept)
    applied.skipped = list(source.skipped)
    return applied


def _chosen(frame, source: DataSource, name: str) -> dict[int, tuple[str, int | None]]:
    """Each decided row of ``source``: (decision, new label index for relabel). Rows that name
    the same image must agree."""
    index = _path_index(source)
    classes = {label: k for k, label in enumerate(source.classes)}
    chosen: dict[int, tuple[str, int | None]] = {}
    where: dict[int, tuple[int, str]] = {}  # row -> (line, what it said), for a conflict
    problems: list[str] = []
    for line in frame.index:
        cells = {c: str(frame.at[line, c]).strip() if c in frame.columns else "" for c in COLUMNS}
        problem, decided = _check_line(cells, index, classes, source)
        if problem:
            problems.append(f"line {line}: {problem}")
            continue
        word, label, rows = decided
        said = word if label is None else f"{word} {source.classes[label]}"
        for row in rows:
            if row in chosen and chosen[row] != (word, label):
                first, before = where[row]
                problems.append(
                    f"lines {first} and {line} decide {cells['path']!r} differently ({before}, "
                    f"{said}): keep one of them"
                )
            chosen.setdefault(row, (word, label))
            where.setdefault(row, (line, said))
    if problems:
        more = len(problems) - 1
        rest = f" {more} more line{'s have' if more > 1 else ' has'} problems." if more else ""
        first = problems[0].rstrip(".")
        raise DataError(f"Decisions file {name} {first}.{rest} Nothing was applied.")
    return chosen


def _check_line(cells: dict[str, str], index, classes: dict[str, int], source: DataSource):
    """(the problem, or None; (decision, label index or None, the source's rows))."""
    word, text, label = cells["decision"].lower(), cells["path"], cells["label"]
    if not text:
        return "no path", None
    if word not in DECISIONS:
        hint = did_you_mean(word, DECISIONS)
        return f"decision {cells['decision']!r} is not one of keep, drop, relabel.{hint}", None
    rows = _lookup(text, index)
    if not rows:
        return f"{text!r} is not an image of {display_path(source.name)}. {_HINT}", None
    if word != "relabel":
        return None, (word, None, rows)
    if not label:
        return f"relabel of {text!r} names no label: put the new class in the label column", None
    if label not in classes:
        shown = ", ".join(source.classes[:20]) + (", ..." if len(source.classes) > 20 else "")
        hint = did_you_mean(label, classes)
        return f"label {label!r} is not a class of the data.{hint} Classes: {shown}", None
    return None, (word, classes[label], rows)


def _path_index(source: DataSource) -> dict[str, list[int]]:
    """Every way a row's path may be written (as printed, relative to the data folder,
    absolute), normalised, to the rows it names."""
    index: dict[str, list[int]] = {}
    root = _data_root(source)
    for row in range(len(source)):
        shown = display_path(source.item_name(row))
        keys = {_norm(shown), _norm(os.path.abspath(shown))}
        if root is not None:
            try:
                keys.add(_norm(os.path.relpath(shown, root)))
            except ValueError:  # another drive (Windows)
                pass
        for key in keys:
            index.setdefault(key, []).append(row)
    return index


def _lookup(text: str, index: dict[str, list[int]]) -> list[int]:
    """The rows a decision's path names: as written, else read from the working folder."""
    return index.get(_norm(text)) or index.get(_norm(os.path.abspath(text))) or []


def _data_root(source: DataSource) -> str | None:
    """The folder relative paths may start from: a class-folder root, or a CSV's folder."""
    if source.paths is None:
        return None
    named = Path(source.name)
    if named.is_dir():
        return str(named)
    return str(named.parent) if named.is_file() else None


def _norm(text: str) -> str:
    return os.path.normpath(text)
