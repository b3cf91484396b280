"""Inference on image files, folders, glob patterns and CSV tables, to a table or a CSV file.

Decoding (size, fit policy, colour) comes from the model's own preprocess spec, so predictions
can never be prepared differently from training. Unreadable files never stop a run: they are
listed in ``Predictions.skipped`` with their reason, like every input that gave no image.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from imgclf.data.decode import ImageDecodeError, decode_file, display_path
from imgclf.data.inputs import Inputs, expand_inputs
from imgclf.data.parallel import parallel_map
from imgclf.errors import ConfigError, DataError, did_you_mean
from imgclf.fileio import atomic_write_text
from imgclf.models.inference import inference_batch_size
from imgclf.models.network import ImageModel

if TYPE_CHECKING:
    import pandas as pd

TTA_MODES = ("none", "flip")
CSV_FORMATS = ("csv", "kaggle")
_CATEGORIES = (  # reason prefix -> the word summary() counts it under; anything else: unreadable
    ("does not exist", "missing"),
    ("no file matches", "missing"),
    ("not an image extension", "wrong extension"),
    ("no images in folder", "empty folder"),
    ("empty path", "empty row"),
)


@dataclass
class Predictions:
    """Class probabilities for the images that were read, and what was left out and why."""

    paths: list[str]
    probs: np.ndarray  # (N, K) softmax probabilities, rows in the order of ``paths``
    classes: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    top_k: int = 3

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labels(self) -> list[str]:
        """The most probable class name of each image."""
        return [self.classes[i] for i in self.probs.argmax(axis=1)]

    @property
    def confidence(self) -> np.ndarray:
        """The probability of each image's predicted class."""
        return self.probs.max(axis=1)

    def to_frame(self, top_k: int | None = None) -> pd.DataFrame:
        """One row per image: path, label, probability, then the ``top_k`` classes best first."""
        import pandas as pd

        k = min(_positive("top_k", self.top_k if top_k is None else top_k), len(self.classes))
        order = np.argsort(-self.probs, axis=1, kind="stable")[:, :k]
        names = np.asarray(self.classes, dtype=object)
        columns = {"path": self.paths, "label": self.labels, "probability": self.confidence}
        for i in range(k):
            columns[f"top{i + 1}_label"] = names[order[:, i]]
            columns[f"top{i + 1}_probability"] = np.take_along_axis(
                self.probs, order[:, i : i + 1], 1
            )[:, 0]
        return pd.DataFrame(columns)

    def to_csv(
        self,
        path: str | os.PathLike,
        format: str = "csv",
        id_column: str = "id",
        label_column: str = "label",
    ) -> Path:
        """Write ``to_frame()`` (format 'csv') or a Kaggle submission (format 'kaggle'), atomically.

        The Kaggle layout is two columns: the file name without extension and the class name.
        """
        import pandas as pd

        if format not in CSV_FORMATS:
            raise ConfigError(
                f"Unknown CSV format '{format}'.{did_you_mean(format, CSV_FORMATS)} "
                f"Allowed: {', '.join(CSV_FORMATS)}."
            )
        if format == "csv":
            frame = self.to_frame()
        else:
            frame = pd.DataFrame({id_column: _kaggle_ids(self.paths), label_column: self.labels})
            if id_column == label_column:
                raise ConfigError(f"id_column and label_column are both '{id_column}'.")
        target = Path(path)
        if target.is_dir():
            raise DataError(
                f"{target} is a folder. Pass a file name, e.g. {target / 'predictions.csv'}."
            )
        atomic_write_text(target, frame.to_csv(index=False, lineterminator="\n"))
        return target

    def summary(self) -> str:
        """One line for people: 'predicted 120 images, skipped 2 (unreadable)'."""
        noun = "image" if len(self.paths) == 1 else "images"
        text = f"predicted {len(self.paths)} {noun}"
        if not self.skipped:
            return text
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            counts[_category(reason)] = counts.get(_category(reason), 0) + 1
        detail = (
            ", ".join(f"{n} {name}" for name, n in counts.items())
            if len(counts) > 1
            else next(iter(counts))
        )
        return f"{text}, skipped {len(self.skipped)} ({detail})"


def predict(
    model: ImageModel,
    inputs: Inputs,
    batch_size: int = 64,
    tta: str | None = None,
    top_k: int = 3,
    workers: int | None = None,
    progress: bool = True,
    path_column: str = "path",
) -> Predictions:
    """Predict every image the inputs name; unreadable files are skipped with their reason.

    Args:
        tta: None or 'flip' (average with the horizontal mirror image).
        top_k: How many classes ``Predictions.to_frame`` lists per image.
        workers: Decoding processes (None: all cores).
    """
    tta = _check_options(batch_size, tta, top_k)
    paths, skipped = expand_inputs(inputs, path_column)
    spec = model.preprocess_spec
    batch_size = inference_batch_size(batch_size, *spec.image_size)
    job = partial(_decode_worker, tuple(spec.image_size), spec.fit, _color_mode(spec.channels))
    decoded = parallel_map(job, paths, workers, "predicting", progress)
    kept: list[str] = []
    chunks: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    with _eval_mode(model):
        for path, (image, reason) in zip(paths, decoded, strict=True):
            if image is None:
                skipped.append((display_path(path), reason))
                continue
            kept.append(display_path(path))
            batch.append(image)
            if len(batch) == batch_size:
                chunks.append(_forward(model, np.stack(batch), tta))
                batch = []
        if batch:
            chunks.append(_forward(model, np.stack(batch), tta))
    return Predictions(kept, _concat(chunks, len(model.classes)), model.classes, skipped, top_k)


def predict_arrays(
    model: ImageModel,
    images: np.ndarray,
    batch_size: int = 64,
    tta: str | None = None,
    top_k: int = 3,
) -> Predictions:
    """Predict uint8 images (N, H, W, C) or (N, H, W) already at the model's size.

    Rows are named 'array[i]'. Arrays are not resized: a wrong shape is an error, because a
    silent resize would hide a channels-first or wrongly sized array.
    """
    tta = _check_options(batch_size, tta, top_k)
    images = _check_arrays(images, model)
    batch_size = inference_batch_size(batch_size, *images.shape[1:3])
    with _eval_mode(model):
        chunks = [
            _forward(model, images[start : start + batch_size], tta)
            for start in range(0, len(images), batch_size)
        ]
    names = [f"array[{i}]" for i in range(len(images))]
    return Predictions(names, _concat(chunks, len(model.classes)), model.classes, [], top_k)


def predict_image(
    model: ImageModel, image: str | os.PathLike | np.ndarray, tta: str | None = None
) -> tuple[str, float]:
    """(class name, probability) for one image file or one (H, W[, C]) uint8 array."""
    if not isinstance(image, np.ndarray):
        image = _decode_one(model, Path(image))
    result = predict_arrays(model, image[None], tta=tta)
    return result.labels[0], float(result.confidence[0])


def _decode_worker(
    size: tuple[int, int], fit: str, color_mode: str, path: Path
) -> tuple[np.ndarray | None, str | None]:
    """Worker: one file's pixels, or None and the reason; module level so processes can run it."""
    try:
        return decode_file(path, size, fit, color_mode), None
    except ImageDecodeError as exc:
        return None, str(exc)


def _decode_one(model: ImageModel, path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"Image {display_path(path)} does not exist. Pass an image file.")
    spec = model.preprocess_spec
    try:
        return decode_file(path, tuple(spec.image_size), spec.fit, _color_mode(spec.channels))
    except ImageDecodeError as exc:
        raise DataError(f"{display_path(path)} cannot be predicted: {exc}.") from None


@torch.inference_mode()
def _forward(model: ImageModel, images: np.ndarray, tta: str) -> np.ndarray:
    """Softmax probabilities of a (B, H, W, C) uint8 batch, averaged over the TTA views."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2)
    x = x.contiguous(memory_format=torch.channels_last)
    probs = torch.softmax(model(x).float(), dim=1)
    if tta == "flip":
        mirrored = x.flip(3).contiguous(memory_format=torch.channels_last)
        probs = (probs + torch.softmax(model(mirrored).float(), dim=1)) / 2
    return probs.cpu().numpy()


@contextlib.contextmanager
def _eval_mode(model: ImageModel) -> Iterator[None]:
    """Eval mode for the duration, then the caller's mode again (a notebook may be training)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check_options(batch_size: int, tta: str | None, top_k: int) -> str:
    _positive("batch_size", batch_size)
    _positive("top_k", top_k)
    mode = "none" if tta is None else str(tta).lower()
    if mode not in TTA_MODES:
        raise ConfigError(
            f"Unknown tta '{tta}'.{did_you_mean(mode, TTA_MODES)} Allowed: None, "
            "'flip' (average with the horizontal mirror image)."
        )
    return mode


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, received {value!r}.")
    return value


def _check_arrays(images: np.ndarray, model: ImageModel) -> np.ndarray:
    spec = model.preprocess_spec
    expected = (*spec.image_size, spec.channels)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        kind = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise DataError(
            f"images must be a uint8 numpy array (0..255), received {kind}. For floats in 0..1 "
            "use (x * 255).round().astype(np.uint8)."
        )
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != expected:
        raise DataError(
            f"images must be (N, H, W, C) = (N, {', '.join(map(str, expected))}) for this model, "
            f"received {images.shape}. Channels-first arrays: x.transpose(0, 2, 3, 1); other "
            "sizes: pass the files to predict(), which fits them to the model."
        )
    return np.require(images, requirements=["C", "W"])  # torch warns on read-only arrays


def _concat(chunks: list[np.ndarray], num_classes: int) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros((0, num_classes), dtype=np.float32)


def _color_mode(channels: int) -> str:
    return "grayscale" if channels == 1 else "rgb"


def _kaggle_ids(paths: list[str]) -> list[str]:
    ids = [Path(p).stem for p in paths]
    twice = sorted(name for name, n in Counter(ids).items() if n > 1)
    if twice:
        raise DataError(
            f"Kaggle ids must be unique, but several files share the name {', '.join(twice[:5])}. "
            "Rename the files or use format='csv', which keeps the full paths."
        )
    return ids


def _category(reason: str) -> str:
    return next((name for prefix, name in _CATEGORIES if reason.startswith(prefix)), "unreadable")
