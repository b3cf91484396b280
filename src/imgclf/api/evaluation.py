"""Evaluation and prediction with a trained model: a run folder, a bundle or an ImageModel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgclf.api.describe import data_label
from imgclf.api.settings import make_config

if TYPE_CHECKING:  # the CLI imports this module at start: numpy and torch only when computing
    import numpy as np

    from imgclf.config import Config
    from imgclf.data.formats.resolve import DataLike
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
    Class names must be among the model's. A run's test-time augmentation (``train.tta``)
    applies, so its own split gives the numbers of its metrics.json.
    """
    from imgclf.evaluate.metrics import evaluate_predictions, leak_free_score
    from imgclf.models.inference import predict_rows
    from imgclf.runtime import Runtime

    name, images, rows, labels, cfg, leaked = scored_split(
        model, data, split, progress, config, **overrides
    )
    runtime = runtime or Runtime.from_config(cfg.train)
    model.to(runtime.device)
    batch_size = cfg.train.eval_batch_size
    probs = predict_rows(model, images, rows, batch_size, progress, runtime, tta=cfg.train.tta)
    evaluation = evaluate_predictions(labels, probs, model.classes, name)
    evaluation.mistake_images = images[rows[evaluation.mistakes(evaluation.KEPT)]]
    if leaked is not None:
        evaluation.without_leaks = leak_free_score(labels, probs, rows, leaked, model.classes, name)
    return evaluation


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
    return scored_split(model, data, split, progress, config, **overrides)[:5]


def scored_split(
    model,
    data: DataLike,
    split: str | None = None,
    progress: bool = True,
    config: str | Path | dict | Config | None = None,
    **overrides: Any,
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, Config, np.ndarray | None]:
    """``split_images``'s five, and the split's rows that leak from an earlier split of the
    run's own data (the quick audit training makes; None for other data or no leak)."""
    from imgclf.data.pipeline.prepare import prepare_data
    from imgclf.evaluate.splits import check_split, class_indices, scored_rows, scoring_config

    check_split(split)
    run_cfg = make_config(config) if config is not None else None
    cfg, own = scoring_config(model.preprocess_spec, data, run_cfg, **overrides)
    prepared = prepare_data(data, cfg, progress=progress)
    remap = class_indices(prepared, model.classes)
    name, rows = scored_rows(prepared, split, own, data_label(data))
    leaked = _own_leaks(prepared, cfg.data.cache_dir).get(name) if own else None
    images, labels = prepared.cache.images, remap[prepared.source.labels[rows]]
    return name, images, rows, labels, cfg, leaked


def _own_leaks(prepared, cache_dir: Path | None) -> dict[str, np.ndarray]:
    from imgclf.audit.inputs import audit_data
    from imgclf.audit.memo import store_beside
    from imgclf.audit.quick import leaked_rows, quick_audit

    data = audit_data(prepared)
    return leaked_rows(quick_audit(data, store_beside(data.images_id, cache_dir)))


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
    abstain: str | float | None = None,
    sets: float | None = None,
    explain: str | Path | None = None,
):
    """Predict every image ``inputs`` name (files, folders, globs or a CSV) with ``model``.

    Args:
        model: a run folder, a model bundle folder or an already loaded ImageModel.
        tta: None or 'flip'.
        top_k: how many classes the predictions list per image.
        path_column: the column of image paths in CSV inputs.
        label_column: the column of true labels in CSV inputs (scored when present); None
            ignores labels.
        workers: decoding threads, which run while the model computes; on ONNX Runtime each
            also computes the batches it decoded (None: the cores).
        device: where to compute (auto: CUDA, then MPS, then the CPU).
        precision: 32, 16-mixed or bf16-mixed (see imgclf.runtime).
        backend: torch, onnx (the exported model.onnx, see ``export``), onnx-int8 (its int8
            model-int8.onnx), or auto: ONNX Runtime when the run has an exported graph that
            passed its gate (int8 first), the onnx extra is installed and the prediction is
            on the CPU at 32 bits; else torch (always torch with ``abstain``).
        abstain: 'auto' or a share in (0, 1): answer "unknown" (``Predictions.answers``, the
            CSV's label, ``unknown`` and ``in_distribution`` columns) for images stranger than
            all but that share of the validation images; 'auto' is the model's threshold
            (keeping 95 % of the validation images).
        sets: a coverage in (0, 1), e.g. 0.9: each image's prediction set (split conformal on
            the validation split: ``Predictions.sets``, the CSV's ``set`` column).
        explain: a folder: write each image with the Grad-CAM map of its predicted class over
            it, as a PNG there (computed on torch; needs the explain extra).

    Returns:
        Predictions (``to_csv``, ``summary``, ``skipped``, ``accuracy``). Under torchrun each
        process predicts a share of the inputs; rank 0 gets them all, in the inputs' order
        (the same as one process), and the other ranks get None.
    """
    from imgclf.cores import available_cores
    from imgclf.predict import predict as predict_images
    from imgclf.runtime import Runtime
    from imgclf.train import distributed

    if explain is not None:  # before any work: nothing is written without it
        from imgclf.models.extras import EXPLAIN

        EXPLAIN.require("--explain")
    runtime = Runtime.create(device, precision)
    network = _network(model)  # a failed or unfinished run says so, first
    if explain is not None:  # a network with nothing to explain (an MLP) says so before work
        from imgclf.predict.explain import check_explainable

        check_explainable(network)
    # ONNX Runtime: a one-thread session that the decoding threads each run on their batches
    threads = 1 if (workers or available_cores()) > 1 else None
    onnx = onnx_runner(model, backend, runtime, abstain=abstain is not None, threads=threads)
    joined = distributed.join(runtime)  # under torchrun: each rank predicts its share
    result = predict_images(
        network,
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
        abstain=abstain,
        sets=sets,
    )
    result = _gathered(result, inputs) if joined else result
    if explain is not None and result is not None:
        from imgclf.predict.explain import write_explanations

        write_explanations(network, result, explain)
    return result


def _network(model):
    """The network of a run or bundle folder, or ``model`` itself when already loaded."""
    if isinstance(model, str | Path):
        from imgclf.runs.opening import open_model

        return open_model(model).network
    return model


def _gathered(result, inputs):
    """Under torchrun: every rank's share joined on rank 0; None on the other ranks."""
    from imgclf.predict.shards import joined_predictions
    from imgclf.train import distributed

    parts = distributed.gather_to_main(result)
    distributed.leave()
    return None if parts is None else joined_predictions(parts, inputs)


def onnx_runner(
    model, backend: str, runtime: Runtime, abstain: bool = False, threads: int | None = None
):
    """The ONNX Runtime runner ``backend`` asks for (see ``predict``), or None for torch (and
    for auto when abstaining on a graph without the in_distribution output), its session on
    ``threads`` (None: the cores). predict/backend chooses; export's gate and runner are
    passed in from here, since predict does not import export."""
    from imgclf.export.onnx import OnnxClassifier
    from imgclf.export.onnx_int8 import passed_gate
    from imgclf.predict.backend import onnx_graph_file

    graph = onnx_graph_file(model, backend, runtime, gated=passed_gate)
    if graph is None:
        return None
    runner = OnnxClassifier(graph.parent, threads, graph=graph.name)
    return None if abstain and backend == "auto" and not runner.abstains else runner
