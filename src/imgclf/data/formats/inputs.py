"""What to predict: image files named by files, folders, glob patterns and CSV path columns.

A CSV may also carry each image's true label (``label_column``), so predictions can be scored.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imgclf.data.formats.files import IMAGE_EXTENSIONS, display_path, walk_folder
from imgclf.data.formats.table import path_cells, read_table_file, require_column
from imgclf.data.source import Skipped
from imgclf.errors import ConfigError, DataError

Inputs = str | os.PathLike | Sequence[str | os.PathLike]
TABLE_SUFFIXES = (".csv", ".tsv")
DEFAULT_LABEL_COLUMN = "label"
_GLOB_CHARS = "*?["
_EXTENSIONS_TEXT = " ".join(IMAGE_EXTENSIONS)
_NOT_IMAGE = f"not an image extension (allowed: {_EXTENSIONS_TEXT})"
_CATEGORIES = (  # reason prefix -> the word messages count it under; anything else: unreadable
    ("does not exist", "missing"),
    ("no file matches", "missing"),
    ("not an image extension", "wrong extension"),
    ("no images in folder", "empty folder"),
    ("empty path", "empty row"),
)
_SHOWN = 5  # entries a message lists before 'and N more'


@dataclass
class ExpandedInputs:
    """The image files to predict, the true label of each where a CSV gave one, and the skips."""

    inputs: list[str]  # what the caller passed, for messages
    paths: list[Path]
    labels: list[str | None]  # one per path: the CSV's label cell, None where unknown
    skipped: list[Skipped]  # (path or 'table line N', reason)


def expand_inputs(inputs: Inputs, path_column: str = "path") -> tuple[list[Path], list[Skipped]]:
    """Image files named by files, folders (recursive), glob patterns and CSV path columns.

    Returns:
        The image paths, de-duplicated in input order (each folder and pattern sorted), and the
        (path, reason) of every input or entry that gave no image. Hidden entries in folders
        and patterns are ignored, as ``ls`` and the shell do.

    Raises:
        DataError: no input gave an image, or a CSV has no ``path_column`` (a wrong column name
            is a mistake in the command, not a property of the data, so it is not skipped).
    """
    expanded = read_inputs(inputs, path_column, label_column=None)
    return expanded.paths, expanded.skipped


def read_inputs(
    inputs: Inputs, path_column: str = "path", label_column: str | None = DEFAULT_LABEL_COLUMN
) -> ExpandedInputs:
    """``expand_inputs``, plus each image's label from the ``label_column`` of CSV inputs.

    A CSV without a column named ``label`` simply gives no labels; a CSV without a column the
    caller named on purpose (any other ``label_column``) is an error, like a wrong path column.
    When a file is named more than once, its first label wins. None reads no labels.
    """
    if label_column is not None and label_column == path_column:
        raise ConfigError(
            f"path_column and label_column are both '{path_column}'. Set label_column to the "
            "column of true labels, or to None."
        )
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)  # one path
    items = [os.fspath(item) for item in items]
    found: list[Path] = []
    labels: dict[str, str] = {}
    skipped: list[Skipped] = []
    for item in items:
        found += _expand_one(item, path_column, label_column, labels, skipped)
    paths = _unique(found)
    if not paths:
        raise DataError(no_images_message(items, skipped))
    return ExpandedInputs(items, paths, [labels.get(_key(p)) for p in paths], skipped)


def skip_category(reason: str) -> str:
    """The word a skip reason is counted under: missing, wrong extension, ..., unreadable."""
    return next((name for prefix, name in _CATEGORIES if reason.startswith(prefix)), "unreadable")


def skip_counts(skipped: list[tuple[str, str]]) -> dict[str, int]:
    """How many skips fall in each category, in order of first appearance."""
    counts: dict[str, int] = {}
    for _, reason in skipped:
        counts[skip_category(reason)] = counts.get(skip_category(reason), 0) + 1
    return counts


def no_images_message(items: list[str], skipped: list[tuple[str, str]]) -> str:
    """One line for 'nothing could be predicted': how many inputs gave no image and why."""
    if not items:
        return "No inputs to predict. Pass image files, folders, glob patterns or CSV files."
    named = ", ".join(display_path(i) for i in items[:3])
    named += f" (and {len(items) - 3} more)" if len(items) > 3 else ""
    counts = ", ".join(f"{n} {name}" for name, n in skip_counts(skipped).items())
    shown = "; ".join(f"{path}: {reason}" for path, reason in skipped[:_SHOWN])
    more = f"; and {len(skipped) - _SHOWN} more" if len(skipped) > _SHOWN else ""
    noun = "input gave" if len(skipped) == 1 else "inputs gave"
    why = f"{len(skipped)} {noun} no image ({counts}): {shown}{more}" if skipped else "none listed"
    text = (
        f"No images to predict in {named}: {why}. Pass readable image files "
        f"({_EXTENSIONS_TEXT}), folders of them, glob patterns such as 'photos/**/*.jpg', or "
        "a CSV with a column of image paths."
    )
    return " ".join(text.splitlines())  # one line, whatever a decoder's reason holds


def _expand_one(
    raw: str,
    path_column: str,
    label_column: str | None,
    labels: dict[str, str],
    skipped: list[Skipped],
) -> list[Path]:
    path = Path(os.path.expanduser(raw))
    if path.is_dir():
        return _walk_folder(path, skipped)
    if path.is_file():
        if path.suffix.lower() in TABLE_SUFFIXES:
            return _read_table(path, path_column, label_column, labels, skipped)
        return _checked_file(path, skipped)
    if any(char in raw for char in _GLOB_CHARS):
        return _expand_glob(os.path.expanduser(raw), skipped)
    skipped.append(Skipped(display_path(path), "does not exist"))
    return []


def _checked_file(path: Path, skipped: list[Skipped]) -> list[Path]:
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return [path]
    skipped.append(Skipped(display_path(path), _NOT_IMAGE))
    return []


def _walk_folder(folder: Path, skipped: list[Skipped]) -> list[Path]:
    """Image files under ``folder``, following symlinks without looping, hidden entries ignored."""
    found: list[Path] = []
    for listing in walk_folder(folder):
        if listing.error is not None:
            reason = f"unreadable: {listing.error.strerror}"
            skipped.append(Skipped(display_path(listing.error.filename), reason))
        for entry in listing.entries:
            if entry.kind == "broken" or (entry.kind != "folder" and not entry.regular):
                skipped.append(Skipped(display_path(entry.path), "broken link or unreadable"))
            elif entry.kind in ("image", "other"):
                found += _checked_file(entry.path, skipped)
    if not found:
        skipped.append(
            Skipped(display_path(folder), f"no images in folder (looked for {_EXTENSIONS_TEXT})")
        )
    return sorted(found)


def _expand_glob(pattern: str, skipped: list[Skipped]) -> list[Path]:
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        skipped.append(Skipped(pattern, "no file matches the pattern"))
    found: list[Path] = []
    for match in map(Path, matches):
        if match.is_dir():
            found += _walk_folder(match, skipped)
        elif match.is_file():
            found += _checked_file(match, skipped)
        else:
            skipped.append(Skipped(display_path(match), "broken link or unreadable"))
    return found


def _read_table(
    table: Path,
    path_column: str,
    label_column: str | None,
    labels: dict[str, str],
    skipped: list[Skipped],
) -> list[Path]:
    """The image paths in a CSV's ``path_column``; relative paths are relative to its folder.

    Rows are named by their line in the file (line 1 is the header), as the training reader does.
    """
    frame = read_table_file(table)
    name = f"CSV file {display_path(table)}"
    require_column(name, frame.columns, path_column, "path_column")
    if label_column is not None and label_column != DEFAULT_LABEL_COLUMN:
        require_column(name, frame.columns, label_column, "label_column")
    with_labels = label_column is not None and label_column in frame.columns
    found: list[Path] = []
    for line, path in path_cells(frame, path_column, table.parent, expand_user=True):
        if path is None:
            skipped.append(Skipped(f"{display_path(table)} line {line}", "empty path"))
        elif path.is_file():
            found += _checked_file(path, skipped)
            label = str(frame.at[line, label_column]).strip() if with_labels else ""
            if label:
                labels.setdefault(_key(path), label)
        else:
            where = f"{display_path(path)} ({display_path(table)} line {line})"
            skipped.append(Skipped(where, "does not exist"))
    return found


def _unique(paths: list[Path]) -> list[Path]:
    """First occurrence of each file, however it was spelled (relative, absolute, ./x)."""
    unique: dict[str, Path] = {}
    for path in paths:
        unique.setdefault(_key(path), path)
    return list(unique.values())


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))
