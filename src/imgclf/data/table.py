"""A CSV file or a pandas DataFrame with a path column, a label column and maybe a split column.

Relative paths are relative to the CSV's folder (or ``root`` for a DataFrame). Rows with a
missing file or an empty label are left out and reported; classes are sorted by name (integer
labels by value).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

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
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist. Pass an existing .csv file.")
    try:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"CSV file {path} cannot be parsed: {exc}. Check it is a CSV.") from None
    frame.index += 2  # row labels in messages are the file's line numbers (line 1: the header)
    return read_frame(frame, path.parent, path_column, label_column, split_column, name=str(path))


def read_frame(
    frame: pd.DataFrame,
    root: str | os.PathLike | None = None,
    path_column: str = "path",
    label_column: str = "label",
    split_column: str = "split",
    name: str = "DataFrame",
) -> DataSource:
    """Read a DataFrame of image paths and labels into a DataSource."""
    for column in (path_column, label_column):
        if column not in frame.columns:
            raise DataError(
                f"{name} has no column '{column}'.{did_you_mean(column, frame.columns)} "
                f"Columns: {', '.join(map(str, frame.columns))}. Set path_column / label_column."
            )
    if not frame.index.is_unique:  # e.g. pd.concat without ignore_index: .at gives a Series
        frame = frame.reset_index(drop=True)
    root = Path(root) if root is not None else Path.cwd()
    skipped: list[Skipped] = []
    rows = _usable_rows(frame, root, path_column, label_column, skipped)
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
        splits = np.asarray([_split_name(frame.at[i, split_column], name, i) for i, _ in rows])
    return DataSource(
        name=name,
        classes=classes,
        labels=labels,
        paths=[p for _, p in rows],
        splits=splits,
        skipped=skipped,
    )


def _usable_rows(frame, root: Path, path_column: str, label_column: str, skipped: list[Skipped]):
    rows = []
    for i in frame.index:
        raw_path, raw_label = frame.at[i, path_column], frame.at[i, label_column]
        where = f"row {i}"
        if _blank(raw_path):
            skipped.append(Skipped(where, "empty path"))
            continue
        path = Path(str(raw_path).strip())
        path = path if path.is_absolute() else root / path
        if _blank(raw_label):
            skipped.append(Skipped(f"{path} ({where})", "empty label"))
        elif not path.is_file():
            skipped.append(Skipped(f"{path} ({where})", "file not found"))
        else:
            rows.append((i, path))
    return rows


def _split_name(value, name: str, row) -> str:
    key = str(value).strip().lower()
    if key not in SPLIT_ALIASES:
        raise DataError(
            f"{name} row {row}: split value '{value}' is not one of train, val, test "
            "(also accepted: training, valid, validation, dev, testing)."
        )
    return SPLIT_ALIASES[key]


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip()
