"""One training run: data -> model -> fit -> the best weights.

This is where the rooms meet (API tier): data is prepared once, the network is built for its
shape and classes, and trained with the callbacks that write the run folder's checkpoints and
history.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.config import Config
from imgclf.data.prepare import PreparedData, prepare_data
from imgclf.data.sources import DataLike, same_source
from imgclf.errors import TrainingInterrupted
from imgclf.models.backbones import backbone_preprocess
from imgclf.models.network import ImageModel, build_model
from imgclf.models.recipes import is_recipe
from imgclf.runs.rundir import RunDir, read_run_config
from imgclf.train.callbacks import (
    Callback,
    StopOnSignal,
    TrainState,
    signals_noted,
    standard_callbacks,
)
from imgclf.train.checkpoint import (
    BEST_WEIGHTS,
    load_weights,
    save_weights,
)
from imgclf.train.loop import configure_torch, fit
from imgclf.train.parts import Stage, TrainData
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
    callbacks: list[Callback] = field(default_factory=list)  # on_run_end gets the metrics


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


def prepare_training(data: DataLike, cfg: Config, progress: bool = True) -> TrainingSetup:
    """Prepare the data, build the model for it (seeded) and plan the stages.

    Nothing is written to a run folder: a run's folder is made only once this succeeded, so
    bad data, an unknown model or a model that does not fit the data leave nothing behind.

    Args:
        progress: show progress bars and the plan's notes.
    """
    started = time.perf_counter()
    prepared = prepare_data(data, cfg, progress=progress, default_size=default_image_size(cfg))
    timings = {"data": time.perf_counter() - started}
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


# What a resume may change: how long it trains (more epochs, a time limit for this session) and
# where and how fast it reads; anything else would make it another run.
RESUMABLE = (
    "train.epochs", "train.finetune_epochs", "train.time_limit", "train.threads",
    "train.eval_batch_size", "run.quiet", "data.data_dir", "data.cache_dir", "data.workers",
    "data.download",
)  # fmt: skip


def resume_config(run: RunDir, requested: dict[str, Any], data: DataLike | None) -> Config:
    """The run's own config with the changes a resume allows, checked.

    Args:
        requested: the settings asked for, as {'section.key': value} (only those given).
        data: the data asked for, or None (the run's own).

    Raises:
        ConfigError: a setting other than RESUMABLE differs, epochs would shrink, or ``data``
            is not the run's data; the message shows how to start a new run instead.
    """
    from imgclf.config_loader import build_config, dotted_overrides
    from imgclf.errors import ConfigError

    saved = read_run_config(run)
    source = saved.get("data", {}).get("source")
    if data is None and source is None:
        raise ConfigError(
            f"{run.path} does not record its data (it was trained from Python objects): pass "
            "the same data again."
        )
    if data is not None and source is not None and not same_source(data, source):
        raise ConfigError(
            f"--resume continues {run.path} on its own data ({source}), received {data}. Omit "
            f"DATA, or train a new run on it: imgclf train {data} --config {run.config}"
        )
    before = dotted_overrides(Config.model_validate(saved).model_dump(mode="json"))
    changed = {k: v for k, v in requested.items() if _json(v) != before.get(k)}
    fixed = [key for key in changed if key not in RESUMABLE]
    if fixed:
        shown = ", ".join(f"{k} (run: {before.get(k)!r}, given: {changed[k]!r})" for k in fixed)
        sets = " ".join(f"--set {k}={_yaml(changed[k])}" for k in fixed)
        raise ConfigError(
            f"--resume continues a run with its own settings, and these differ: {shown}. A "
            "resume may change only epochs, finetune_epochs and time_limit (and threads, "
            "workers, folders). For other settings start a new run from its config: "
            f"imgclf train --config {run.config} {sets}"
        )
    cfg = build_config(saved, **changed)
    after = dotted_overrides(cfg.model_dump(mode="json"))
    for key in ("train.epochs", "train.finetune_epochs"):
        if after[key] < before[key]:
            raise ConfigError(
                f"--resume can add epochs, not remove them: {key} was {before[key]}, received "
                f"{after[key]}. Pass at least {before[key]}."
            )
    return cfg


def _json(value: Any) -> Any:
    """A requested value as the saved config's JSON has it (paths as text, tuples as lists)."""
    import json

    return json.loads(json.dumps(value, default=str))


def _yaml(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, default=str)


def describe_run(run: RunDir, cfg: Config, prepared: PreparedData, progress: bool) -> None:
    """Write the run's config and data report, and say what the data left out."""
    run.write_config(cfg)
    run.write_json(run.data_report, prepared.report.to_dict())
    if progress:
        from imgclf.terminal import print_line, print_warning

        line, warnings = prepared.report.left_out()
        for warning in warnings:
            print_warning(warning)
        if line:
            print_line(f"{line}; see {run.data_report}")


def run_training(
    setup: TrainingSetup,
    cfg: Config,
    run: RunDir,
    saved: dict | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train the set-up model (from ``saved``, a resume state), and load the best weights back.

    Ctrl-C or SIGTERM stops after the current batch with the last state saved, and raises
    TrainingInterrupted. The artifacts (bundle, metrics, plots, report) are written by
    imgclf.artifacts.
    """
    started = time.perf_counter()
    signals = StopOnSignal()
    callbacks = [*_callbacks(cfg, setup.model, run, setup.train_data), *callbacks, signals]
    state = fit(setup.model, setup.stages, cfg, callbacks, run.checkpoints, saved)
    if signals.received:
        epoch, batch, _ = state.stopped_in or (state.epoch, state.steps, state.steps)
        raise TrainingInterrupted(
            f"interrupted at epoch {epoch}, batch {batch}; resume with: imgclf train --resume "
            f"{run.path}",
            epoch=epoch,
            batch=batch,
        )
    timings = {**setup.timings, "train": time.perf_counter() - started}
    best = run.checkpoints / BEST_WEIGHTS
    if best.is_file():
        load_weights(setup.model, best)
    embedded = setup.stages[-1].embeddings
    features = embedded.clean if embedded is not None else None
    return TrainResult(setup.model, state, setup.prepared, run, timings, features, callbacks)


@contextmanager
def recording_status(run: RunDir) -> Iterator[None]:
    """status.json says running, then finished, interrupted or failed with the error."""
    run.write_status("running")
    try:
        yield
    except TrainingInterrupted as exc:
        run.write_status("interrupted", epoch=exc.epoch, batch=exc.batch)
        raise
    except KeyboardInterrupt:
        run.write_status("interrupted")
        raise
    except Exception as exc:
        run.write_status("failed", error=str(exc) or type(exc).__name__)
        raise
    run.write_status("finished")


def finishing(progress: bool):
    """The run's last seconds (evaluation, bundle, plots, report) go on after a first Ctrl-C
    or SIGTERM, so the report is written; a second one stops at once."""
    from imgclf.terminal import print_warning

    def note(name: str) -> None:
        if progress:
            print_warning("finishing the report; press Ctrl-C again to stop at once")

    return signals_noted(note)


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
    steps = -(-len(data.train) // cfg.train.batch_size)
    return standard_callbacks(
        cfg.train,
        len(data.val) > 0,
        lambda: save_weights(model, run.checkpoints / BEST_WEIGHTS),
        run.history,
        None if cfg.run.quiet else (steps, cfg.train.batch_size),
    )


def evaluation_rows(prepared: PreparedData) -> dict[str, np.ndarray]:
    """The splits to evaluate at the end of training (those that have images)."""
    splits = {"val": prepared.splits.val, "test": prepared.splits.test}
    return {name: rows for name, rows in splits.items() if len(rows)}


def data_name(data: DataLike) -> str:
    """A short name for the data in run names and reports."""
    return Path(str(data)).name if isinstance(data, str | Path) else type(data).__name__
