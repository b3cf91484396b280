"""Evaluation and prediction with a trained model: a run folder, a bundle or an ImageModel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imgclf.api.describe import data_label
from imgclf.api.settings import make_config
from imgclf.config import Config
from imgclf.data.prepare import PreparedData, prepare_data
from imgclf.data.source import SPLITS
from imgclf.data.sources import DataLike, same_source
from imgclf.errors import ConfigError, did_you_mean
from imgclf.runtime import Runtime


def evaluate(
    model: str | Path,
    data: DataLike | None = None,
    split: str | None = None,
    progress: bool = True,
    data_dir: str | Path | None = None,
    **overrides: Any,
):
    """Evaluate a run folder or a model bundle folder on ``data`` (see evaluate_model).

    Args:
        model: a run folder (its config.yaml gives the data and split rules) or a bundle.
        data: the data to score; None: the run's own data, split as in the run (a bundle
            records no data, so it needs ``data``).
        split: test, val or train (None: see evaluate_model).
        progress: show progress bars.
        data_dir: folder of built-in sets.
        **overrides: further config keys for reading the data.

    Raises:
        ModelError: the run has no model (it failed, was interrupted or is still training).
        ConfigError: no ``data`` and the model names none.
    """
    from imgclf.runs.opening import open_model

    opened = open_model(model)
    return evaluate_model(
        opened.network,
        opened.scored_data(data),  # None: the run's own data, split as in the run
        split=split,
        progress=progress,
        config=opened.config,
        data_dir=data_dir,
        **overrides,
    )


def evaluate_model(
    model,
    data: DataLike,
    split: str | None = None,
    progress: bool = True,
    config: str | Path | dict | Config | None = None,
    runtime: Runtime | None = None,
    **overrides: Any,
):
    """Evaluate a trained ImageModel on ``data``, decoded with the model's own preprocessing,
    on ``runtime``'s device and precision (None: the config's ``train.device`` and
    ``train.precision``; the model is moved there).

    Exactly the images of the split asked for are scored:
    - the data the run trained on (``config`` is that run's config and names the same source):
      the run's own split, made again with its seed (None: test, else val);
    - other data with split folders, a split column or an official test set: that split
      (None: test when it has one, else every image, named ``data``);
    - other plain data: every usable image, named ``data``; asking it for a split is an error.
    Class names must be among the model's.
    """
    from imgclf.evaluate.metrics import evaluate_predictions
    from imgclf.models.inference import predict_rows

    name, images, rows, labels, cfg = split_images(
        model, data, split, progress, config, **overrides
    )
    runtime = runtime or Runtime.from_config(cfg.train)
    model.to(runtime.device)
    batch_size = cfg.train.eval_batch_size
    probs = predict_rows(model, images, rows, batch_size, progress, runtime)
    return evaluate_predictions(labels, probs, model.classes, name)


def split_images(
    model,
    data: DataLike,
    split: str | None = None,
    progress: bool = True,
    config: str | Path | dict | Config | None = None,
    **overrides: Any,
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, Config]:
    """The images of the split ``evaluate_model`` scores, decoded with the model's own
    preprocessing: (split name, the decoded images (N, H, W, C uint8), the split's rows, their
    labels as indices of the model's classes, the config they were read with)."""
    from imgclf.errors import DataError

    if split is not None and split not in SPLITS:
        raise ConfigError(
            f"Unknown split '{split}'.{did_you_mean(split, SPLITS)} Allowed: train, val, test; "
            "omit it for the test split, or every image of data that has no splits."
        )
    run_cfg = make_config(config) if config is not None else None
    own = run_cfg is not None and same_source(data, run_cfg.data.source)
    spec = model.preprocess_spec
    base = run_cfg.model_dump() if own else {"data": {"val_split": 0.0, "test_split": 0.0}}
    color = "grayscale" if spec.channels == 1 else "rgb"
    cfg = make_config(base, image_size=spec.image_size, fit=spec.fit, color_mode=color, **overrides)
    prepared = prepare_data(data, cfg, progress=progress)
    unknown = sorted(set(prepared.classes) - set(model.classes))
    if unknown:
        raise DataError(
            f"The data has classes the model does not know: {', '.join(unknown)}. "
            f"Model classes: {', '.join(model.classes)}."
        )
    name, rows = _evaluation_rows(prepared, split, own, data)
    remap = np.array([model.classes.index(label) for label in prepared.classes])
    return name, prepared.cache.images, rows, remap[prepared.source.labels[rows]], cfg


def _evaluation_rows(
    prepared: PreparedData, split: str | None, own: bool, data: DataLike
) -> tuple[str, np.ndarray]:
    """The name and rows of the split to score (see evaluate_model)."""
    from imgclf.errors import DataError

    splits = prepared.splits.as_dict()
    if own:
        chosen = split or ("test" if len(splits["test"]) else "val")
        if len(splits[chosen]) == 0:
            raise DataError(
                f"The run kept no images in its {chosen} split ({chosen}_split was 0 and the data "
                f"has no {chosen} folder or column). Pass --split with another split, or other "
                "data with --data."
            )
        return chosen, splits[chosen]
    usable = np.sort(np.concatenate(list(splits.values())))
    if prepared.source.splits is None:
        if split is not None:
            raise DataError(
                f"{data_label(data)} has no split folders or split column, so it has no "
                f"'{split}' split. Omit --split to evaluate all {len(usable)} images."
            )
        return "data", usable
    if split is None:
        return ("test", splits["test"]) if len(splits["test"]) else ("data", usable)
    if len(splits[split]) == 0:
        present = ", ".join(name for name, rows in splits.items() if len(rows)) or "none"
        raise DataError(
            f"{data_label(data)} has no usable images in a '{split}' split. Splits it has: "
            f"{present}."
        )
    return split, splits[split]


def predict(
    model,
    inputs,
    batch_size: int = 64,
    tta: str | None = None,
    top_k: int = 3,
    path_column: str = "path",
    label_column: str | None = "label",
    workers: int | None = None,
    progress: bool = True,
    device: str = "auto",
    precision: str = "32",
    backend: str = "auto",
):
    """Predict every image ``inputs`` name (files, folders, globs or a CSV) with ``model``.

    Args:
        model: a run folder, a model bundle folder or an already loaded ImageModel.
        tta: None or 'flip'.
        top_k: how many classes the predictions list per image.
        path_column: the column of image paths in CSV inputs.
        label_column: the column of true labels in CSV inputs (scored when present); None
            ignores labels.
        workers: decoding threads, which run while the model computes (None: the cores).
        device: where to compute (auto: CUDA, then MPS, then the CPU).
        precision: 32, 16-mixed or bf16-mixed (see imgclf.runtime).
        backend: torch, onnx (the exported model.onnx, see ``export``), or auto: ONNX Runtime
            when the run has an exported graph that passed its gate, the onnx extra is
            installed and the prediction is on the CPU at 32 bits; else torch.

    Returns:
        Predictions (``to_csv``, ``summary``, ``skipped``, ``accuracy``). Under torchrun each
        process predicts a share of the inputs; rank 0 gets them all, in the inputs' order
        (the same as one process), and the other ranks get None.
    """
    from imgclf.predict import merge_shards
    from imgclf.predict import predict as predict_images
    from imgclf.train import distributed

    runtime = Runtime.create(device, precision)
    source = model
    if isinstance(model, str | Path):
        from imgclf.runs.opening import open_model

        model = open_model(model).network  # a failed or unfinished run says so, first
    onnx = onnx_runner(source, backend, runtime)
    joined = distributed.join(runtime)  # under torchrun: each rank predicts its share
    result = predict_images(
        model,
        inputs,
        batch_size=batch_size,
        tta=tta,
        top_k=top_k,
        workers=workers,
        progress=progress and runtime.is_main,
        path_column=path_column,
        label_column=label_column,
        runtime=runtime,
        onnx=onnx,
        shard=(runtime.rank, runtime.world_size) if joined else None,
    )
    if not joined:
        return result
    parts = distributed.gather_to_main(result)
    distributed.leave()
    if parts is None:
        return None
    merged = merge_shards(parts)
    if not merged.paths:
        from imgclf.data.inputs import no_images_message
        from imgclf.errors import DataError

        named = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        raise DataError(no_images_message([str(item) for item in named], merged.skipped))
    return merged


BACKENDS = ("auto", "torch", "onnx")


def onnx_runner(model, backend: str, runtime: Runtime):
    """The ONNX Runtime runner ``backend`` asks for (see ``predict``), or None for torch."""
    if backend not in BACKENDS:
        raise ConfigError(
            f"Unknown backend '{backend}'.{did_you_mean(backend, BACKENDS)} "
            f"Backends: {', '.join(BACKENDS)}."
        )
    if backend == "torch":
        return None
    from imgclf.export.onnx import OnnxClassifier, exported
    from imgclf.models.bundle import bundle_dir
    from imgclf.models.extras import ONNX

    folder = bundle_dir(model) if isinstance(model, str | Path) else None
    ready = folder is not None and exported(folder)
    if backend == "onnx":
        if not ready:
            raise ConfigError(
                f"{model} has no exported model that passed its parity gate: run "
                f"imgclf export {model} first, or use --backend torch."
            )
        return OnnxClassifier(folder)
    plain = runtime.device.type == "cpu" and runtime.precision == "32"
    if ready and plain and ONNX.installed("onnxruntime"):
        return OnnxClassifier(folder)
    return None
