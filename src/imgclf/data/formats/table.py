"""A CSV file or a pandas DataFrame with a path column, a label column and maybe a split column.

Relative paths are relative to the CSV's folder (or ``root`` for a DataFrame). Rows with a
missing file or an empty label are left out and reported; classes are sorted by name (integer
labels by value). Messages name a CSV's rows by their line in the file (line 1 is the header,
blank lines count, as in an editor) and a DataFrame's rows by their index label.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imgclf.data.formats.files import display_path
from imgclf.data.source import SPLIT_ALIASES, DataSource, Skipped, encode_labels
from imgclf.errors import DataError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd


def read_csv(
    path: str | os.PathLike,
    path_column: str = "path",
    label_column: str = "label",
    split_column: str = "split",
) -> DataSource:
    """Read a CSV of image paths and labels into a DataSource."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist. Pass an existing .csv file.")
    frame = read_table_file(path)
    columns = (path_column, label_column, split_column)
    return _read_frame(frame, path.parent, *columns, name=str(path), row_word="line")


COLUMN_MEANINGS = {
    "path_column": "the column of image paths",
    "label_column": "the column of labels",
}


def require_column(name: str, columns, column: str, key: str) -> None:
    """A wrong column name is a mistake in the command: one error naming the flag that sets it
    (``--path-column`` for ``path_column``) for training and prediction alike."""
    if column in columns:
        return
    flag = "--" + key.replace("_", "-")
    raise DataError(
        f"{name} has no column '{column}'.{did_you_mean(column, columns)} Columns: "
        f"{', '.join(map(str, columns))}. Pass {flag} NAME, {COLUMN_MEANINGS[key]} "
        f"({key} in Python and YAML)."
    )


def read_table_file(path: Path) -> pd.DataFrame:
    """A CSV (TSV for .tsv) as text cells, each row labelled with its line number in the file.

    Line 1 is the header, so the first data row is line 2. Blank lines are skipped but counted
    and a quoted cell may span lines, so the numbers are the ones an editor shows.
    """
    import pandas as pd

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"CSV file {display_path(path)} cannot be parsed: {exc}. Check it is a CSV."
        ) from None
    frame.index = _line_numbers(path, len(frame))
    return frame


def _line_numbers(path: Path, rows: int) -> list[int]:
    """The line on which each of ``rows`` data rows starts, as pandas skipped blank lines."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # \r\n and \r read as \n
    except (OSError, UnicodeDecodeError):
        lines = []
    starts, quoted = [], False
    for number, line in enumerate(lines, start=1):
        if not quoted and line.strip():
            starts.append(number)
        quoted ^= line.count('"') % 2 == 1  # inside a quoted cell that goes on to the next line
    if len(starts) == rows + 1:  # the header, then one start per row
        return starts[1:]
    return list(range(2, rows + 2))  # a layout this count misreads: no blank lines assumed


def read_frame(
    frame: pd.DataFrame,
    root: str | os.PathLike | None = None,
    path_column: str = "path",
    label_column: str = "label",
    split_column: str = "split",
    name: str = "DataFrame",
) -> DataSource:
    """Read a DataFrame of image paths and labels into a DataSource."""
    columns = (path_column, label_column, split_column)
    return _read_frame(frame, root, *columns, name=name, row_word="row")


def _read_frame(
    frame: pd.DataFrame,
    root: str | os.PathLike | None,
    path_column: str,
    label_column: str,
    split_column: str,
    *,
    name: str,
    row_word: str,
) -> DataSource:
    """``row_word`` names a row in messages: 'line' (a CSV's line numbers) or 'row' (index)."""
    require_column(name, frame.columns, path_column, "path_column")
    require_column(name, frame.columns, label_column, "label_column")
    if not frame.index.is_unique:  # e.g. pd.concat without ignore_index: .at gives a Series
        frame = frame.reset_index(drop=True)
    root = Path(root) if root is not None else Path.cwd()
    skipped: list[Skipped] = []
    rows = _usable_rows(frame, root, path_column, label_column, skipped, row_word)
    if not rows:
        raise DataError(
            f"{name} has no usable rows ({len(frame)} rows; {len(skipped)} left out, first: "
            f"{skipped[0].path}: {skipped[0].reason})."
            if skipped
            else f"{name} has no rows. Add one row per image."
        )
    classes, labels = encode_labels([frame.at[i, label_column] for i, _ in rows])
    splits = None
    if split_column in frame.columns:
        splits = np.asarray(
            [_split_name(frame.at[i, split_column], name, f"{row_word} {i}") for i, _ in rows]
        )
    return DataSource(
        name=name,
        classes=classes,
        labels=labels,
        paths=[p for _, p in rows],
        splits=splits,
        skipped=skipped,
    )


def path_cells(
    frame: pd.DataFrame, column: str, root: Path, *, expand_user: bool = False
) -> Iterator[tuple[Hashable, Path | None]]:
    """Each row's index label and the image path in its ``column`` (None for a blank cell).

    The one reading of a path column, for training's tables and prediction's CSVs alike. A
    relative path is relative to ``root``; an absolute one replaces it. ``expand_user`` reads
    ``~`` as the home folder (prediction's CSVs; training's tables never did).
    """
    for i in frame.index:
        raw = frame.at[i, column]
        if _blank(raw):
            yield i, None
            continue
        path = Path(str(raw).strip())
        yield i, root / (path.expanduser() if expand_user else path)


def _usable_rows(
    frame, root: Path, path_column: str, label_column: str, skipped: list[Skipped], row_word: str
):
    rows = []
    for i, path in path_cells(frame, path_column, root):
        where = f"{row_word} {i}"
        if path is None:
            skipped.append(Skipped(where, "empty path"))
        elif _blank(frame.at[i, label_column]):
            skipped.append(Skipped(f"{path} ({where})", "empty label"))
        elif not path.is_file():
            skipped.append(Skipped(f"{path} ({where})", "file not found"))
        else:
            rows.append((i, path))
    return rows


def _split_name(value, name: str, where: str) -> str:
    key = str(value).strip().lower()
    if key not in SPLIT_ALIASES:
        raise DataError(
            f"{name} {where}: split value '{value}' is not one of train, val, test "
            "(also accepted: training, valid, validation, dev, testing)."
        )
    return SPLIT_ALIASES[key]


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip()
