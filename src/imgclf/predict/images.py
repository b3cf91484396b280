"""Inference on image files, folders, glob patterns, CSV tables and arrays, to a table or a CSV.

Decoding (size, fit policy, colour) comes from the model's own preprocess spec, and arrays are
fitted by the code that fits training arrays, so predictions can never be prepared differently
from training. Unreadable files never stop a run: they are listed in ``Predictions.skipped``
with their reason, like every input that gave no image; only when nothing at all can be
predicted is it an error. A CSV with a label column is also scored (``Predictions.accuracy``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imgclf.data.formats.arrays import to_uint8_images
from imgclf.data.formats.files import display_path
from imgclf.data.formats.inputs import (
    DEFAULT_LABEL_COLUMN,
    ExpandedInputs,
    Inputs,
    no_images_message,
    read_inputs,
)
from imgclf.data.pipeline.cache import fit_array, is_fitted
from imgclf.data.pipeline.decode import ImageDecodeError, decode_file
from imgclf.data.pipeline.parallel import threaded_map
from imgclf.data.source import Skipped
from imgclf.errors import ConfigError, DataError, did_you_mean
from imgclf.models.inference import eval_mode, inference_batch_size
from imgclf.models.network import ImageModel
from imgclf.predict.backend import backend_name
from imgclf.predict.grid import GRID
from imgclf.predict.predictions import Predictions, check_positive
from imgclf.predict.scoring import (
    Answer,
    abstention,
    forward_for,
    prediction_sets,
    set_coverage,
)
from imgclf.progressbar import progress_bar
from imgclf.runtime import Runtime

if TYPE_CHECKING:
    from imgclf.models.preprocess import PreprocessSpec

TTA_MODES = ("none", "flip")


def predict(
    model: ImageModel,
    inputs: Inputs,
    batch_size: int = 64,
    tta: str | None = None,
    top_k: int = 3,
    workers: int | None = None,
    progress: bool = True,
    path_column: str = "path",
    label_column: str | None = DEFAULT_LABEL_COLUMN,
    runtime: Runtime | None = None,
    onnx: Callable[[np.ndarray], np.ndarray] | None = None,
    shard: tuple[int, int] | None = None,
    abstain: str | float | None = None,
    sets: float | None = None,
) -> Predictions:
    """Predict every image the inputs name; unreadable files are skipped with their reason.

    Args:
        tta: None or 'flip' (average with the horizontal mirror image).
        top_k: How many classes ``Predictions.to_frame`` lists per image.
        workers: Decoding threads, which run while the model computes (None: the cores).
        path_column: The column of image paths in CSV inputs.
        label_column: The column of true labels in CSV inputs, when present: predictions are
            then scored (``Predictions.accuracy``). None ignores labels.
        runtime: the device and precision to predict at (the model is moved there); None:
            the CPU at 32 bits.
        onnx: an exported graph's runner (uint8 NHWC batch -> probabilities) to compute with
            instead of the model (which still gives the classes and preprocessing).
        shard: (rank, world size): predict only inputs rank, rank + world size, ... (their
            places in ``Predictions.positions``; ``merge_shards`` joins the ranks' results).
        abstain: 'auto' or a share in (0, 1): answer "unknown" for an image stranger than all
            but that share of the validation images ('auto': the model's own threshold,
            0.05); needs the model's unknown score (see ``abstention``).
        sets: a coverage in (0, 1), e.g. 0.9: each image's prediction set, the smallest set
            of classes that holds the true class with that probability (``Predictions.sets``);
            needs the model's conformal scores (``set_coverage``).

    Raises:
        DataError: no input gave a usable image (the message counts the reasons and names the
            first inputs with theirs), or a CSV lacks the named column.
    """
    tta = _check_options(batch_size, tta, top_k)
    threshold = abstention(model, abstain, onnx)
    coverage = set_coverage(model, sets)
    runtime = _placed(model, runtime)
    forward = forward_for(model, tta, runtime, onnx, threshold)
    expanded = read_inputs(inputs, path_column, label_column)
    places, paths, labels, skipped = _sharded(expanded, shard)
    spec = model.preprocess_spec
    batch_size = inference_batch_size(batch_size, *spec.image_size)
    job = partial(_decode_worker, tuple(spec.image_size), spec.fit, _color_mode(spec.channels))
    rows = list(zip(places, paths, labels, strict=True))
    with eval_mode(model):
        if onnx is None:
            decoded = threaded_map(job, paths, workers, "predicting", progress)
            batches = _scored_here(rows, decoded, forward, batch_size)
        else:
            batches = _scored_in_workers(rows, job, forward, batch_size, workers, progress)
        kept, positions, true_labels, chunks, shares = _score_rows(batches, model.classes, skipped)
    if not kept and shard is None:  # here: the CLI writes no CSV, the Python API gets it too
        raise DataError(no_images_message(expanded.inputs, skipped))
    found = true_labels if any(label is not None for label in true_labels) else None
    probs = _concat(chunks, len(model.classes))
    backend = backend_name(onnx)
    return Predictions(
        kept, probs, model.classes, skipped, top_k, found, backend, positions, model.temperature,
        np.concatenate(shares) if threshold is not None and shares else None, threshold,
        prediction_sets(model, probs, coverage), coverage,
    )  # fmt: skip


def _sharded(
    expanded: ExpandedInputs, shard: tuple[int, int] | None
) -> tuple[list[int], list[Path], list[str | None], list[Skipped]]:
    """(places, paths, labels, skipped) of the inputs this rank predicts: every one without
    ``shard``; rank 0 alone reports the inputs that named no image."""
    paths, labels, skipped = expanded.paths, expanded.labels, expanded.skipped
    places = list(range(len(paths)))
    if shard is not None:
        rank, world = shard
        places = places[rank::world]
        paths, labels = [paths[i] for i in places], [labels[i] for i in places]
        skipped = skipped if rank == 0 else []  # (inputs that named no image: said once)
    return places, paths, labels, skipped


Row = tuple[int, Path, str | None]  # an input's place, its path, its label
Decoded = tuple[np.ndarray | None, str | None]  # its pixels, or None and the reason
Scored = tuple[list[tuple[Row, Decoded]], Answer | None]


def _score_usable(items: list[Decoded], forward) -> Answer | None:
    """``forward`` on the images of ``items`` that were read, in order (None: none was)."""
    images = [image for image, _ in items if image is not None]
    return forward(np.stack(images)) if images else None


def _scored_here(
    rows: list[Row], decoded: Iterable[Decoded], forward, batch_size: int
) -> Iterator[Scored]:
    """Batches of ``batch_size`` usable images scored in this thread as the decoding threads
    deliver them (torch: its own threads use the cores while it computes)."""
    batch: list[tuple[Row, Decoded]] = []
    usable = 0
    for row, item in zip(rows, decoded, strict=True):
        batch.append((row, item))
        usable += item[0] is not None
        if usable == batch_size:
            yield batch, _score_usable([item for _, item in batch], forward)
            batch, usable = [], 0
    if batch:
        yield batch, _score_usable([item for _, item in batch], forward)


def _scored_in_workers(
    rows: list[Row], decode, forward, batch_size: int, workers: int | None, progress: bool
) -> Iterator[Scored]:
    """Batches of ``batch_size`` inputs, each decoded and scored by one of ``workers`` threads
    (None: the cores), yielded in order: for an ONNX Runtime session of one thread, whose runs
    release the GIL and overlap. Each core decodes and computes its own batches and waits for
    nothing: int8 Lite0 on 2 cores, 310-322 -> 376-395 img/s against two decoding threads
    feeding a two-thread session (BENCHMARKS.md, "int8 inference")."""

    def job(batch: list[Row]) -> Scored:
        items = [decode(path) for _, path, _ in batch]
        return list(zip(batch, items, strict=True)), _score_usable(items, forward)

    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    with progress_bar(progress, "predicting", len(rows)) as advance:
        for scored in threaded_map(job, batches, workers, progress=False, ahead=4):
            yield scored
            advance(len(scored[0]))


def _score_rows(
    batches: Iterable[Scored], classes: list[str], skipped: list[Skipped]
) -> tuple[list[str], list[int], list[str | None], list[np.ndarray], list[np.ndarray]]:
    """(kept names, their input places, their labels, probability chunks, in-distribution
    chunks: none without abstention) of the scored ``batches``; an unreadable input goes
    into ``skipped`` with its reason."""
    kept: list[str] = []
    positions: list[int] = []
    true_labels: list[str | None] = []
    chunks: list[np.ndarray] = []
    shares: list[np.ndarray] = []
    for batch, answer in batches:
        for (place, path, label), (image, reason) in batch:
            if image is None:
                skipped.append((display_path(path), reason))
                continue
            kept.append(display_path(path))
            positions.append(place)
            true_labels.append(_class_name(label, classes))
        if answer is not None:
            chunks.append(answer[0])
            if answer[1] is not None:
                shares.append(answer[1])
    return kept, positions, true_labels, chunks, shares


def predict_arrays(
    model: ImageModel,
    images: np.ndarray,
    batch_size: int = 64,
    tta: str | None = None,
    top_k: int = 3,
    runtime: Runtime | None = None,
    onnx: Callable[[np.ndarray], np.ndarray] | None = None,
    abstain: str | float | None = None,
) -> Predictions:
    """Predict an array of images of any size, fitted to the model exactly as training fits.

    Arrays are read as training reads them (``imgclf.data.formats.arrays.to_uint8_images``):
    (N, H, W), (N, H, W, 1), (N, H, W, 3) or (N, H, W, 4) (alpha dropped), uint8 or float in
    0..1 or 0..255 (judged over the whole array). Then, unless they already have the model's
    size and channels, each image is fitted with the model's fit policy (resize, center_crop,
    letterbox) and converted to its grayscale or RGB (``imgclf.data.pipeline.cache.fit_array``,
    which builds the training cache). So the probabilities equal those of the same pixels saved
    as image files and predicted with ``predict``. Rows are named 'array[i]'.

    Raises:
        DataError: what training would refuse too: not an array, a shape other than the above
            (e.g. channels first), non-numeric or non-finite pixels, or no images at all.
    """
    tta = _check_options(batch_size, tta, top_k)
    threshold = abstention(model, abstain, onnx)
    runtime = _placed(model, runtime)
    forward = forward_for(model, tta, runtime, onnx, threshold)
    images = _read_arrays(images, "images")
    spec = model.preprocess_spec
    batch_size = inference_batch_size(batch_size, *spec.image_size)
    with eval_mode(model):
        answered = [
            forward(_fit_batch(images[start : start + batch_size], spec))
            for start in range(0, len(images), batch_size)
        ]
    names = [f"array[{i}]" for i in range(len(images))]
    probs, backend = _concat([p for p, _ in answered], len(model.classes)), backend_name(onnx)
    shares = np.concatenate([s for _, s in answered]) if threshold is not None else None
    return Predictions(
        names, probs, model.classes, [], top_k, backend=backend, temperature=model.temperature,
        in_distribution=shares, abstain=threshold,
        thumbnails=_fit_batch(images[:GRID], spec),
    )  # fmt: skip


def predict_image(
    model: ImageModel,
    image: str | os.PathLike | np.ndarray,
    tta: str | None = None,
    runtime: Runtime | None = None,
) -> tuple[str, float]:
    """(class name, probability) for one image file or one (H, W[, C]) array of any size.

    An array is read and fitted as ``predict_arrays`` does (uint8 or float pixels).
    """
    if not isinstance(image, np.ndarray):
        image = _decode_one(model, Path(image))
    elif image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 3, 4)):
        raise DataError(
            f"image has shape {image.shape}; expected one image (H, W), (H, W, 1) or (H, W, 3). "
            "A channels-first image needs np.moveaxis(image, 0, -1); a batch goes to "
            "predict_arrays."
        )
    result = predict_arrays(model, image[None], tta=tta, runtime=runtime)
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


def _placed(model: ImageModel, runtime: Runtime | None) -> Runtime:
    """The runtime to predict at, with ``model`` moved onto its device."""
    runtime = runtime or Runtime()
    model.to(runtime.device)
    return runtime


def _check_options(batch_size: int, tta: str | None, top_k: int) -> str:
    check_positive("batch_size", batch_size)
    check_positive("top_k", top_k)
    mode = "none" if tta is None else str(tta).lower()
    if mode not in TTA_MODES:
        raise ConfigError(
            f"Unknown tta '{tta}'.{did_you_mean(mode, TTA_MODES)} Allowed: flip (average with "
            "the horizontal mirror image), or none."
        )
    return mode


def _read_arrays(images: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W, C) uint8 as training reads arrays (any size yet; ``_fit_batch`` fits them)."""
    if not isinstance(images, np.ndarray):
        raise DataError(
            f"{where} must be a numpy array (N, H, W[, C]), received {type(images).__name__}. "
            "Stack a list of images with np.stack(images)."
        )
    images = to_uint8_images(images, where)  # what training does to arrays, same messages
    if not len(images):
        raise DataError(f"{where} holds no images (shape {images.shape}). Pass at least one.")
    return images


def _fit_batch(images: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Fit images to the model as ``build_image_cache`` fits training arrays."""
    size, color_mode = tuple(spec.image_size), _color_mode(spec.channels)
    if not is_fitted(images, size, spec.channels):
        images = np.stack([fit_array(image, size, spec.fit, color_mode) for image in images])
    return np.require(images, requirements=["C", "W"])  # torch warns on read-only arrays


def _concat(chunks: list[np.ndarray], num_classes: int) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros((0, num_classes), dtype=np.float32)


def _color_mode(channels: int) -> str:
    return "grayscale" if channels == 1 else "rgb"


def _class_name(label: str | None, classes: list[str]) -> str | None:
    """A CSV label as the model names classes: integer text as training encodes it ('07' -> '7')."""
    if label is None or label in classes:
        return label
    text = label.removeprefix("-")
    if text.isdecimal() and text.isascii() and str(int(label)) in classes:
        return str(int(label))
    return label
