"""The grid R3 draws of its predictions on single images: each picture titled with the answer
and its probability, and, where a true label is known and differs, R5's 'R: true P: predicted'."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imgclf.data.pipeline.decode import ImageDecodeError, decode_file
from imgclf.data.views.preview import image_grid_figure
from imgclf.errors import ConfigError
from imgclf.fileio import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from imgclf.predict.predictions import Predictions

GRID = 25  # pictures drawn, and the first arrays a prediction keeps to draw them
_SIDE = 96  # pixels of a file's thumbnail
_NAME = 12  # characters of a class name that fit twice in a title


def predictions_figure(result: Predictions, n: int = GRID, columns: int = 5) -> Figure:
    """The first ``n`` predictions as a grid: arrays from the thumbnails the prediction kept,
    files read again (shrunk to 96 px); an image that no longer reads is left out."""
    shown = min(n, len(result))
    answers, confidence = result.answers[:shown], result.confidence[:shown]
    true_labels = (result.true_labels or [None] * shown)[:shown]
    pictures, titles = [], []
    for i in range(shown):
        picture = _picture(result, i)
        if picture is not None:
            pictures.append(picture)
            titles.append(_title(answers[i], confidence[i], true_labels[i]))
    return image_grid_figure(pictures, titles, columns)


def _picture(result: Predictions, i: int) -> np.ndarray | None:
    if result.thumbnails is not None and i < len(result.thumbnails):
        return result.thumbnails[i]
    return file_thumbnail(result.paths[i], _SIDE)


def file_thumbnail(path: str | Path, side: int) -> np.ndarray | None:
    """An image file read as prediction reads it (oriented, RGB), fitted inside ``side``
    pixels, or None for what is not one (an array row, a file gone since)."""
    try:
        return decode_file(path, (side, side), "letterbox", "rgb")
    except ImageDecodeError:
        return None


def _title(answer: str, probability: float, true: str | None) -> str:
    if true is None or true == answer:
        return f"{_short(answer, 2 * _NAME)} ({probability:.2f})"
    return f"R: {_short(true, _NAME)} P: {_short(answer, _NAME)}\n({probability:.2f})"


def _short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def grid_path(path: str | Path, overwrite: bool = False) -> Path:
    """Where ``save_grid`` will write, refused before any work as the predictions' CSV is: an
    existing file without ``overwrite``, a folder, or a name that is not a .png."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ConfigError(f"--grid {target}: the grid is a PNG; name a .png file.")
    if target.is_dir():
        raise ConfigError(f"--grid {target} is a folder; name a .png file.")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists. Pass --overwrite to replace it, or name another file.")
    return target


def save_grid(result: Predictions, path: str | Path) -> Path:
    """Write ``predictions_figure`` as a PNG, atomically."""
    with atomic_path(path) as tmp:
        predictions_figure(result).savefig(tmp, format="png", dpi=80)
    return Path(path)
