"""A train session: data -> model -> stages -> loop -> the best weights.

``prepare_training`` reads the data, builds the network for its shape and classes (seeded) and
plans the stages; ``run_session`` trains them with the standard callbacks plus the user's, and
loads the best weights back. Where files go is given as paths (None: keep them in memory), so
a process that writes nothing (a non-main rank) runs the same session.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclf.config import Config
from imgclf.data.formats.resolve import DataLike
from imgclf.data.pipeline.prepare import PreparedData, prepare_data
from imgclf.errors import TrainingInterrupted
from imgclf.models.backbones import backbone_preprocess
from imgclf.models.features.embeddings import Embeddings
from imgclf.models.network import ImageModel, build_model
from imgclf.models.recipes import is_recipe
from imgclf.models.whitening import whiten_from_data
from imgclf.runtime import Runtime
from imgclf.train import distributed
from imgclf.train.budget import BudgetPlan
from imgclf.train.callbacks import Callback, StopOnSignal, TrainState, standard_callbacks
from imgclf.train.checkpoint import BEST_WEIGHTS, BestWeights
from imgclf.train.imbalance import imbalance_hint
from imgclf.train.loop import fit
from imgclf.train.parts import Stage, TrainData
from imgclf.train.setup import configure_torch, default_runtime
from imgclf.train.stages import plan_stages


@dataclass
class TrainingSetup:
    """Everything a run trains with, before any training: shared by training and lr-find."""

    prepared: PreparedData
    model: ImageModel
    train_data: TrainData
    stages: list[Stage]
    notes: list[str]
    runtime: Runtime
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)  # when preparing began


@dataclass
class TrainResult:
    """What a finished session produced: the best model, the loop's state, the timings."""

    model: ImageModel
    state: TrainState
    prepared: PreparedData
    runtime: Runtime
    timings: dict[str, float] = field(default_factory=dict)
    # The embed-once pass when the final backbone is the embedded one (feature extraction):
    # evaluation and the unknown score read it instead of running the backbone again.
    embedded: Embeddings | None = None
    callbacks: list[Callback] = field(default_factory=list)  # on_run_end gets the metrics
    plan: BudgetPlan | None = None  # a budgeted run's plan and re-plans

    @property
    def features(self) -> np.ndarray | None:
        """Every row's cached embedding, or None (the backbone computes them)."""
        return None if self.embedded is None else self.embedded.clean


def default_image_size(cfg: Config) -> tuple[int, int]:
    """When data.image_size is unset and the images differ in size: the backbone's own input
    size, or 224 for recipes."""
    if cfg.model.name == "custom" or is_recipe(cfg.model.name):
        return (224, 224)
    return tuple(backbone_preprocess(cfg.model)["input_size"])


def prepare_training(
    data: DataLike,
    cfg: Config,
    progress: bool = True,
    runtime: Runtime | None = None,
    started: float | None = None,
) -> TrainingSetup:
    """Prepare the data, build the model for it (seeded, a whitening stem fitted to the
    training images) on the runtime's device and plan the stages (embedding the images once
    when a frozen backbone asks for it).

    Nothing is written to a run folder: a run's folder is made only once this succeeded, so
    bad data, an unknown model or a model that does not fit the data leave nothing behind.

    Args:
        progress: show progress bars and the plan's notes.
        runtime: device, precision and threads (default: the CPU at 32 bits, train.threads).
        started: when the run's clock started (``time.perf_counter()``; default: now), from
            which ``train.budget`` counts.
    """
    runtime = runtime or default_runtime(cfg)
    started_at = started if started is not None else time.perf_counter()
    started = time.perf_counter()
    prepared = prepare_data(data, cfg, progress=progress, default_size=default_image_size(cfg))
    timings = {"data": time.perf_counter() - started}
    configure_torch(cfg, runtime)  # before building: the seed decides the initial weights
    model = build_model(
        cfg.model,
        prepared.classes,
        prepared.cache.images.shape[-1],
        prepared.image_size,
        rescale=cfg.augment.rescale,
        fit=cfg.data.fit,
    ).to(runtime.device)
    train_data = TrainData(
        images=prepared.cache.images,
        labels=prepared.source.labels,
        train=prepared.splits.train,
        val=prepared.splits.val,
        classes=prepared.classes,
    )
    whiten_from_data(model, train_data.images, train_data.train, cfg.seed, model.preprocess)
    started = time.perf_counter()
    images_id = prepared.cache.id
    stages, notes = plan_stages(model, train_data, cfg, images_id, progress, runtime)
    hint = imbalance_hint(train_data.labels, train_data.train, train_data.classes, cfg.train)
    notes += [hint] if hint else []
    cached = sum(getattr(stage.module, "cache_seconds", 0.0) for stage in stages)
    if any(stage.embeddings is not None for stage in stages):
        timings["embed"] = time.perf_counter() - started - cached
    if cached:
        timings["activations"] = cached  # stage 2's frozen blocks, run once
    if progress:
        _print_notes(stages, notes)
    return TrainingSetup(
        prepared, model, train_data, stages, notes, runtime, timings, started=started_at
    )


def run_session(
    setup: TrainingSetup,
    cfg: Config,
    *,
    checkpoints: Path | None,
    history: Path | None,
    saved: dict | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    resume_command: str = "",
) -> TrainResult:
    """Train the set-up model (from ``saved``, a resume state) and load the best weights back.

    Args:
        checkpoints: the folder for best.safetensors and the resume state; None keeps the
            best weights in memory and writes nothing.
        history: history.csv's path, or None.
        callbacks: the user's callbacks, after the standard ones (before the signal guard).
        progress: print the epoch table.
        resume_command: how to continue after an interruption, for its message.

    Raises:
        TrainingInterrupted: Ctrl-C or SIGTERM stopped after the current batch, with the last
            state saved.
    """
    started = time.perf_counter()
    model = setup.model
    best = BestWeights(checkpoints / BEST_WEIGHTS if checkpoints is not None else None)
    signals = StopOnSignal()
    plan, budgeted = _budget(setup, cfg, saved, progress)
    standard = _standard_callbacks(setup, cfg, best, history, progress)
    callbacks = [*standard, *budgeted, *callbacks, signals]
    state = _train(setup, cfg, callbacks, checkpoints, saved, best, resume_command)
    if signals.received:
        raise _interrupted(state, resume_command)
    timings = {**setup.timings, "train": time.perf_counter() - started}
    best.load_into(model)
    embedded = setup.stages[-1].embeddings
    return TrainResult(
        model, state, setup.prepared, setup.runtime, timings, embedded, callbacks, plan
    )


def _standard_callbacks(
    setup: TrainingSetup, cfg: Config, best: BestWeights, history: Path | None, progress: bool
) -> list[Callback]:
    """The standard callbacks (best weights into ``best``, early stopping, history.csv, the
    epoch table when ``progress``)."""
    model, data = setup.model, setup.train_data
    steps = -(-len(data.train) // cfg.train.batch_size)
    return standard_callbacks(
        cfg.train,
        len(data.val) > 0,
        lambda: best.save(model),
        history,
        (steps, cfg.train.batch_size) if progress else None,
        run_dir=history.parent if history is not None else None,
    )


def _train(
    setup: TrainingSetup,
    cfg: Config,
    callbacks: list[Callback],
    checkpoints: Path | None,
    saved: dict | None,
    best: BestWeights,
    resume_command: str,
) -> TrainState:
    """The loop over the set-up's stages; a lost peer process of a distributed run becomes
    TrainingInterrupted."""
    try:
        return fit(
            setup.model, setup.stages, cfg, callbacks, checkpoints, saved, setup.runtime, best
        )
    except RuntimeError as exc:  # (DistBackendError is one)
        if not distributed.lost_peer(exc):
            raise
        hint = f"; resume with: {resume_command}" if resume_command else ""
        raise TrainingInterrupted(
            f"another process of this distributed run stopped ({distributed.reason(exc)}); the "
            f"last checkpoint is intact{hint} (with any number of processes)"
        ) from None


def _interrupted(state: TrainState, resume_command: str) -> TrainingInterrupted:
    """The error of a run a signal stopped: where it stopped, and how to resume."""
    epoch, batch, _ = state.stopped_in or (state.epoch, state.steps, state.steps)
    hint = f"; resume with: {resume_command}" if resume_command else ""
    return TrainingInterrupted(
        f"interrupted at epoch {epoch}, batch {batch}{hint}", epoch=epoch, batch=batch
    )


def _budget(setup: TrainingSetup, cfg: Config, saved: dict | None, progress: bool):
    """(plan, callbacks) of a budgeted run: a new run is probed and planned (its planner, which
    re-plans and guards the deadline, as a callback); a resumed one finishes the steps it
    planned, its schedule restored from the checkpoint. (None, []) without ``train.budget``."""
    from imgclf.train.budget import BudgetPlanner, apply_plan, plan_budget

    if not cfg.train.budget:
        return None, []
    if saved is not None:
        apply_plan(setup.stages, *_saved_plan(setup.stages, saved))
        return None, []
    splits = setup.prepared.splits
    plan = plan_budget(setup, cfg, len(splits.val) + len(splits.test))
    if progress:
        from imgclf.terminal import print_line

        print_line(plan.describe())
    return plan, [BudgetPlanner(plan, setup.stages)]


def _saved_plan(stages: list, saved: dict) -> tuple[dict, dict]:
    """(steps, steps per epoch) of each stage as its budgeted run last planned them (a
    checkpoint without steps planned whole epochs)."""
    per_epoch = {s.name: -(-len(s.data.train) // s.train.batch_size) for s in stages}
    epochs = saved.get("planned", {})
    steps = {
        s.name: saved.get("planned_steps", {}).get(
            s.name, epochs.get(s.name, s.epochs) * per_epoch[s.name]
        )
        for s in stages
    }
    return steps, per_epoch


def _print_notes(stages: list, notes: list[str]) -> None:
    from imgclf.terminal import print_line

    if len(stages) > 1:
        plan = " then ".join(
            f"{stage.name} ({stage.epochs} epoch{'s' * (stage.epochs != 1)})" for stage in stages
        )
        print_line(f"stages: {plan}")
    for note in notes:
        print_line(note)
