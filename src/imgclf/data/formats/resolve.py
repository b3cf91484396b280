"""One entry point for every kind of data: ``read_source(data, config) -> DataSource``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.config import DataConfig
from imgclf.data.formats.arrays import read_npz, to_uint8_images
from imgclf.data.formats.builtin import CHANNELS, list_datasets, load_builtin
from imgclf.data.formats.folder import read_folder
from imgclf.data.formats.table import read_csv, read_frame
from imgclf.data.source import DataSource, encode_labels
from imgclf.errors import DataError, did_you_mean

DataLike = DataSource | str | os.PathLike | tuple | Any  # Any: a pandas DataFrame


def read_source(data: DataLike, config: DataConfig | None = None) -> DataSource:
    """Read a folder tree, CSV, .npz, built-in name, DataFrame or (images, labels) pair.

    A string that is not an existing path is looked up among the built-in sets.
    """
    config = config or DataConfig()
    if isinstance(data, DataSource):
        return data
    if isinstance(data, tuple):
        return _from_arrays(data)
    if _is_frame(data):
        return read_frame(data, None, config.path_column, config.label_column, config.split_column)
    if not isinstance(data, str | os.PathLike):
        raise DataError(
            "data must be a folder, CSV or .npz path, a built-in set name, a pandas DataFrame "
            f"or an (images, labels) tuple; received {type(data).__name__}."
        )
    path = Path(data).expanduser()
    if path.is_dir():
        return read_folder(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv", ".txt"):
            return read_csv(path, config.path_column, config.label_column, config.split_column)
        if suffix == ".npz":
            return read_npz(path)
        raise DataError(
            f"{path} is a {suffix or 'extension-less'} file; expected a folder, a .csv or an .npz."
        )
    key = str(data).strip().lower().replace("_", "-")  # as load_builtin: 'Fashion_MNIST' works
    if key in list_datasets():
        return load_builtin(key, config.data_dir, config.download)
    hint = did_you_mean(key, list_datasets())
    raise DataError(
        f"{data} does not exist and is not a built-in set.{hint}"
        f" Pass an existing folder, .csv or .npz, or one of: {', '.join(list_datasets())}."
    )


def peek_channels(data: DataLike) -> int | None:
    """The data's channels where they are known without reading it (built-in sets, arrays,
    a DataSource of arrays); None for files, which only the scan tells."""
    if isinstance(data, DataSource):
        return None if data.images is None else int(data.images.shape[-1])
    if isinstance(data, tuple) and len(data) == 2:
        shape = np.shape(data[0])
        return 1 if len(shape) == 3 else int(shape[-1]) if len(shape) == 4 else None
    if isinstance(data, str) and not Path(data).expanduser().exists():
        return CHANNELS.get(data.strip().lower().replace("_", "-"))
    return None


def _from_arrays(pair: tuple) -> DataSource:
    if len(pair) != 2:
        raise DataError(
            f"An array source is an (images, labels) pair; received a tuple of {len(pair)} "
            "items. Pass (images, labels)."
        )
    images, labels = pair
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if len(images) != len(labels):
        raise DataError(f"{len(images)} images but {len(labels)} labels; they must match.")
    classes, encoded = encode_labels(labels.tolist())
    return DataSource("arrays", classes, encoded, images=to_uint8_images(images, "images"))


def _is_frame(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns")


def same_source(data: DataLike, source: str | None) -> bool:
    """Whether ``data`` names the recorded ``source`` (the same path, or built-in name)."""
    if source is None or not isinstance(data, str | Path):
        return False
    if str(data) == str(source):
        return True
    mine, theirs = Path(str(data)).expanduser(), Path(str(source)).expanduser()
    return mine.exists() and theirs.exists() and mine.resolve() == theirs.resolve()
