"""What to predict: image files named by files, folders, glob patterns and CSV path columns."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from imgclf.data.decode import IMAGE_EXTENSIONS, display_path
from imgclf.errors import DataError, did_you_mean

Inputs = str | os.PathLike | Sequence[str | os.PathLike]
TABLE_SUFFIXES = (".csv", ".tsv")
_GLOB_CHARS = "*?["
_EXTENSIONS_TEXT = " ".join(IMAGE_EXTENSIONS)
_NOT_IMAGE = f"not an image extension (allowed: {_EXTENSIONS_TEXT})"


def expand_inputs(
    inputs: Inputs, path_column: str = "path"
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files named by files, folders (recursive), glob patterns and CSV path columns.

    Returns:
        The image paths, de-duplicated in input order (each folder and pattern sorted), and the
        (path, reason) of every input or entry that gave no image. Hidden entries in folders
        and patterns are ignored, as ``ls`` and the shell do.

    Raises:
        DataError: no input gave an image, or a CSV has no ``path_column`` (a wrong column name
            is a mistake in the command, not a property of the data, so it is not skipped).
    """
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)  # one path
    found: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for item in items:
        found += _expand_one(os.fspath(item), path_column, skipped)
    paths = _unique(found)
    if not paths:
        raise DataError(_nothing_found(items, skipped))
    return paths, skipped


def _expand_one(raw: str, path_column: str, skipped: list[tuple[str, str]]) -> list[Path]:
    path = Path(os.path.expanduser(raw))
    if path.is_dir():
        return _walk_folder(path, skipped)
    if path.is_file():
        if path.suffix.lower() in TABLE_SUFFIXES:
            return _read_table(path, path_column, skipped)
        return _checked_file(path, skipped)
    if any(char in raw for char in _GLOB_CHARS):
        return _expand_glob(os.path.expanduser(raw), skipped)
    skipped.append((display_path(path), "does not exist"))
    return []


def _checked_file(path: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return [path]
    skipped.append((display_path(path), _NOT_IMAGE))
    return []


def _walk_folder(folder: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """Image files under ``folder``, following symlinks without looping, hidden entries ignored."""
    found: list[Path] = []
    seen: set[str] = set()

    def unreadable(exc: OSError) -> None:
        skipped.append((display_path(exc.filename), f"unreadable: {exc.strerror}"))

    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a symlink back to a folder already walked
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(n for n in files if not n.startswith(".")):
            path = Path(root, name)
            if not path.is_file():  # a dangling or self-looping link
                skipped.append((display_path(path), "broken link or unreadable"))
            else:
                found += _checked_file(path, skipped)
    if not found:
        skipped.append(
            (display_path(folder), f"no images in folder (looked for {_EXTENSIONS_TEXT})")
        )
    return sorted(found)


def _expand_glob(pattern: str, skipped: list[tuple[str, str]]) -> list[Path]:
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        skipped.append((pattern, "no file matches the pattern"))
    found: list[Path] = []
    for match in map(Path, matches):
        if match.is_dir():
            found += _walk_folder(match, skipped)
        elif match.is_file():
            found += _checked_file(match, skipped)
        else:
            skipped.append((display_path(match), "broken link or unreadable"))
    return found


def _read_table(table: Path, path_column: str, skipped: list[tuple[str, str]]) -> list[Path]:
    """The image paths in a CSV's ``path_column``; relative paths are relative to its folder."""
    import pandas as pd

    sep = "\t" if table.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(table, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"CSV file {display_path(table)} cannot be parsed: {exc}.") from None
    if path_column not in frame.columns:
        raise DataError(
            f"CSV file {display_path(table)} has no column '{path_column}'."
            f"{did_you_mean(path_column, frame.columns)} Columns: "
            f"{', '.join(map(str, frame.columns))}. Set path_column to the column of image paths."
        )
    found: list[Path] = []
    for line, value in enumerate(frame[path_column], start=2):  # line 1 is the header
        text = str(value).strip()
        if not text:
            skipped.append((f"{display_path(table)} line {line}", "empty path"))
            continue
        path = table.parent / Path(text).expanduser()  # an absolute path replaces the folder
        if path.is_file():
            found += _checked_file(path, skipped)
        else:
            skipped.append(
                (f"{display_path(path)} ({display_path(table)} line {line})", "does not exist")
            )
    return found


def _unique(paths: list[Path]) -> list[Path]:
    """First occurrence of each file, however it was spelled (relative, absolute, ./x)."""
    unique: dict[str, Path] = {}
    for path in paths:
        unique.setdefault(os.path.normcase(os.path.abspath(path)), path)
    return list(unique.values())


def _nothing_found(items: list, skipped: list[tuple[str, str]]) -> str:
    if not items:
        return "No inputs to predict. Pass image files, folders, glob patterns or CSV files."
    shown = "; ".join(f"{path}: {reason}" for path, reason in skipped[:5])
    more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
    return (
        f"No images to predict in {', '.join(display_path(i) for i in items)}: {shown}{more}. "
        f"Pass image files ({_EXTENSIONS_TEXT}), folders of them, glob patterns such as "
        "'photos/**/*.jpg', or a CSV with a column of image paths."
    )
