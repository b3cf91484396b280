"""One training run: data -> model -> fit -> the best weights.

This is where the rooms meet (API tier): data is prepared once, the network is built for its
shape and classes, and trained with the callbacks that write the run folder's checkpoints and
history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclf.config import Config
from imgclf.data.prepare import PreparedData, prepare_data
from imgclf.data.sources import DataLike
from imgclf.models.backbones import backbone_preprocess
from imgclf.models.network import ImageModel, build_model
from imgclf.models.recipes import is_recipe
from imgclf.runs.rundir import RunDir
from imgclf.train.callbacks import BestCheckpoint, EarlyStopping, HistoryCSV, TimeBudget, TrainState
from imgclf.train.checkpoint import (
    BEST_WEIGHTS,
    RESUME_STATE,
    load_resume_state,
    load_weights,
    save_weights,
)
from imgclf.train.loop import Stage, TrainData, configure_torch, fit
from imgclf.train.stages import plan_stages


@dataclass
class TrainResult:
    """What a finished run produced (the learned state of ImageClassifier)."""

    model: ImageModel
    state: TrainState
    prepared: PreparedData
    run: RunDir
    timings: dict[str, float] = field(default_factory=dict)
    # Every row's cached embedding when the final backbone is the embedded one (feature
    # extraction): evaluation reads them instead of running the backbone again.
    features: np.ndarray | None = None
    epochs_planned: int = 0  # over all stages, before early stopping shortened any


def default_image_size(cfg: Config) -> tuple[int, int]:
    """When data.image_size is unset and the images differ in size: the backbone's own input
    size, or 224 for recipes."""
    if cfg.model.name == "custom" or is_recipe(cfg.model.name):
        return (224, 224)
    return tuple(backbone_preprocess(cfg.model)["input_size"])


@dataclass
class TrainingSetup:
    """Everything a run trains with, before any training: shared by training and lr-find."""

    prepared: PreparedData
    model: ImageModel
    train_data: TrainData
    stages: list[Stage]
    notes: list[str]
    timings: dict[str, float] = field(default_factory=dict)


def prepare_training(
    data: DataLike,
    cfg: Config,
    progress: bool = True,
    on_data: Callable[[PreparedData], None] | None = None,
) -> TrainingSetup:
    """Prepare the data, build the model for it (seeded) and plan the stages.

    Args:
        progress: show progress bars and the plan's notes.
        on_data: called once the data is ready, before the model is built (a run writes its
            config and data report there, so a run that fails later still describes its data).
    """
    started = time.perf_counter()
    prepared = prepare_data(data, cfg, progress=progress, default_size=default_image_size(cfg))
    timings = {"data": time.perf_counter() - started}
    if on_data is not None:
        on_data(prepared)
    configure_torch(cfg)  # before building: the seed decides the initial weights
    model = build_model(
        cfg.model,
        prepared.classes,
        prepared.cache.images.shape[-1],
        prepared.image_size,
        rescale=cfg.augment.rescale,
        fit=cfg.data.fit,
    )
    train_data = TrainData(
        images=prepared.cache.images,
        labels=prepared.source.labels,
        train=prepared.splits.train,
        val=prepared.splits.val,
        classes=prepared.classes,
    )
    started = time.perf_counter()
    images_id = prepared.cache.path.name if prepared.cache.path else None
    stages, notes = plan_stages(model, train_data, cfg, images_id, progress=progress)
    if any(stage.embeddings is not None for stage in stages):
        timings["embed"] = time.perf_counter() - started
    if progress:
        _print_notes(stages, notes)
    return TrainingSetup(prepared, model, train_data, stages, notes, timings)


def run_training(data: DataLike, cfg: Config, run: RunDir, resume: bool = False) -> TrainResult:
    """Prepare the data, build the model, train it, and load the best weights back.

    The artifacts (bundle, metrics, plots, report) are written by imgclf.artifacts.
    """

    def describe_run(prepared: PreparedData) -> None:
        run.write_config(cfg)
        run.write_json(run.data_report, prepared.report.to_dict())

    saved = load_resume_state(run.checkpoints / RESUME_STATE) if resume else None
    setup = prepare_training(data, cfg, not cfg.run.quiet, None if resume else describe_run)
    started = time.perf_counter()
    callbacks = _callbacks(cfg, setup.model, run, setup.train_data)
    state = fit(setup.model, setup.stages, cfg, callbacks, run.checkpoints, saved)
    timings = {**setup.timings, "train": time.perf_counter() - started}
    best = run.checkpoints / BEST_WEIGHTS
    if best.is_file():
        load_weights(setup.model, best)
    embedded = setup.stages[-1].embeddings
    features = embedded.clean if embedded is not None else None
    planned = sum(stage.epochs for stage in setup.stages)
    return TrainResult(setup.model, state, setup.prepared, run, timings, features, planned)


def _print_notes(stages: list, notes: list[str]) -> None:
    from imgclf.terminal import print_line

    if len(stages) > 1:
        plan = " then ".join(
            f"{stage.name} ({stage.epochs} epoch{'s' * (stage.epochs != 1)})" for stage in stages
        )
        print_line(f"stages: {plan}")
    for note in notes:
        print_line(note)


def _callbacks(cfg: Config, model: ImageModel, run: RunDir, data: TrainData) -> list:
    """Best checkpoint first (the others read its best_epoch), the progress bar last."""
    monitor = cfg.train.monitor if len(data.val) else cfg.train.monitor.removeprefix("val_")
    callbacks: list = [
        BestCheckpoint(monitor, lambda: save_weights(model, run.checkpoints / BEST_WEIGHTS))
    ]
    if cfg.train.patience:
        callbacks.append(EarlyStopping(monitor, cfg.train.patience, cfg.train.min_delta))
    if cfg.train.time_limit:
        callbacks.append(TimeBudget(cfg.train.time_limit))
    callbacks.append(HistoryCSV(run.history))
    if not cfg.run.quiet:
        from imgclf.train.progress import ProgressPrinter

        steps = -(-len(data.train) // cfg.train.batch_size)
        callbacks.append(ProgressPrinter(steps))
    return callbacks


def evaluation_rows(prepared: PreparedData) -> dict[str, np.ndarray]:
    """The splits to evaluate at the end of training (those that have images)."""
    splits = {"val": prepared.splits.val, "test": prepared.splits.test}
    return {name: rows for name, rows in splits.items() if len(rows)}


def data_name(data: DataLike) -> str:
    """A short name for the data in run names and reports."""
    return Path(str(data)).name if isinstance(data, str | Path) else type(data).__name__
