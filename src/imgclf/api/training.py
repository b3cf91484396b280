"""Training: the one entry point of a run (``train``), and the learning-rate range test.

The CLI's ``imgclf train`` and ``imgclf demo`` and ``ImageClassifier.fit`` call ``train``; it
is the only module between them and the rooms: it configures (or resumes), prepares the data
and model (``train.session``), makes the run folder (``runs``), trains, and finishes the run
(``runs.finish``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgclf.api.describe import data_name
from imgclf.api.settings import make_config, requested_settings
from imgclf.errors import ConfigError

if TYPE_CHECKING:  # the CLI imports this module at start: numpy and torch only when training
    from imgclf.config import Config
    from imgclf.data.formats.resolve import DataLike
    from imgclf.data.pipeline.prepare import PreparedData
    from imgclf.runs.run import Run
    from imgclf.runtime import Runtime
    from imgclf.train.lr_find import LRFinderResult


def train(
    data: DataLike | None = None,
    config: str | Path | dict | Config | None = None,
    *,
    resume: str | Path | None = None,
    callbacks: Sequence[Any] = (),
    runtime: Runtime | None = None,
    started: float | None = None,
    **overrides: Any,
) -> Run:
    """Train a classifier on ``data``: the one entry point of the CLI, the estimator and demo.

    The data is read and the model built before the run folder is made, so a bad model name
    or unusable data leaves no folder. A run that fails after that records ``failed`` and the
    error in its status.json. Ctrl-C stops after the current batch with the state saved and
    raises TrainingInterrupted; ``resume=RUN`` continues it, and may add epochs (``epochs``,
    ``finetune_epochs``) or set a ``time_limit`` or ``device`` for the session. A non-main
    process (``runtime.rank > 0``) trains the same way and writes nothing.

    Args:
        data: folder, CSV, .npz, built-in name, DataFrame or (images, labels); None: the
            config's ``data.source`` (or, with ``resume``, the run's own data).
        config: a YAML file, dict or Config under the keyword overrides.
        resume: a run folder to continue.
        callbacks: Callback objects or names (registered, or 'package.module:ClassName'),
            after the standard ones; ``on_run_end`` receives the final metrics.
        runtime: device, precision, threads and rank; None: from ``train.device``,
            ``train.precision`` and ``train.threads`` (and torchrun's environment).
        started: when the run's clock started (``time.perf_counter()``), from which
            ``train.budget`` counts; None: this call (the CLI passes its process's start).
        **overrides: config keys, e.g. ``model="cnn", epochs=10, lr=1e-3``.

    Returns:
        The Run: its folder, config, best model, history and metrics.
    """
    began = time.perf_counter() if started is None else started
    from imgclf.runs.run import Run
    from imgclf.runtime import Runtime
    from imgclf.train import distributed

    cfg, data, run, saved = _configure(data, config, resume, overrides)
    runtime = runtime or Runtime.from_config(cfg.train)
    if saved is not None and (complete := _complete_run(run, cfg, saved, runtime)):
        return complete  # nothing to add: nothing trained, evaluated or written
    progress = runtime.is_main and not cfg.run.quiet
    joined = _join(cfg, runtime)
    setup = _prepare(data, cfg, progress, runtime, began)
    if runtime.is_main and run is None:  # only now: bad data or models leave no folder
        run = _create_run(cfg, data, setup.prepared, progress)
    elif runtime.is_main:  # a resumed run: its final scores leave out its leaks too
        from imgclf.runs.finish import check_leaks

        check_leaks(run, setup.prepared, cfg.data.cache_dir)
    extra = _callbacks(callbacks, cfg, run)
    result, metrics = _train_and_finish(setup, cfg, run, saved, extra, progress)
    history = result.state.history
    if joined:
        distributed.leave()
    return Run(run.path if run else None, cfg, result.model, history, metrics, runtime)


def _join(cfg: Config, runtime: Runtime) -> bool:
    """Under torchrun: join the process group (once) and check the ranks agree."""
    from imgclf.train import distributed

    joined = distributed.join(runtime)
    if joined:
        _check_distributed(cfg, runtime)
    return joined


def _prepare(data, cfg: Config, progress: bool, runtime: Runtime, began: float):
    """Data, model and stages (one rank per machine decodes and embeds first), then the
    trackers' packages checked: all before a run folder exists."""
    from imgclf.track import require as require_tracker
    from imgclf.train import distributed
    from imgclf.train.session import prepare_training

    with distributed.local_main_first(runtime):
        setup = prepare_training(data, cfg, progress, runtime, began)
    if runtime.is_main:
        for name in cfg.run.track:
            require_tracker(name, cfg.run.project)
    return setup


def _callbacks(callbacks: Sequence[Any], cfg: Config, run) -> list[Any]:
    """The caller's callbacks (objects or registered names), then the config's trackers for a
    process with a run folder."""
    from imgclf.track import create_tracker
    from imgclf.train.callbacks import create_callback

    extra = [create_callback(c) if isinstance(c, str) else c for c in callbacks]
    if run is not None:
        config = cfg.model_dump(mode="json")
        extra += [create_tracker(name, run.path, config) for name in cfg.run.track]
    return extra


def _train_and_finish(setup, cfg: Config, run, saved, callbacks: list[Any], progress: bool):
    """(the session's result, the final metrics): train, then score and write the run, all
    recorded in status.json and the ledger; ``on_run_end`` gets the metrics."""
    from imgclf.train.session import run_session

    with _recorded(run, cfg, setup, saved) as outcome:
        result = run_session(
            setup,
            cfg,
            checkpoints=run.checkpoints if run else None,
            history=run.history if run else None,
            saved=saved,
            callbacks=callbacks,
            progress=progress,
            resume_command=_resume_command(run),
        )
        metrics = outcome.metrics = _finish(result, cfg, run, progress)
        for callback in result.callbacks:
            callback.on_run_end(metrics, result.state)
    return result, metrics


def _resume_command(run) -> str:
    """How to continue an interrupted run: the CLI's command, or in a notebook the call."""
    from imgclf.notebook import in_notebook

    if run is None:
        return ""
    if in_notebook():
        return f'ImageClassifier(...).fit(data, resume="{run.path}")'
    return f"imgclf train --resume {run.path}"


def _check_distributed(cfg: Config, runtime: Runtime) -> None:
    """What several processes cannot do yet, and the same settings on every rank."""
    import hashlib
    import json

    from imgclf.train import distributed

    if cfg.train.batch_size % runtime.world_size:
        raise ConfigError(
            f"batch_size {cfg.train.batch_size} is the global batch: it must divide evenly over "
            f"{runtime.world_size} processes."
        )
    settings = cfg.model_dump(mode="json")
    settings["run"].pop("quiet", None)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    distributed.check_same(digest, "config (model, data, augmentation and training settings)")


def _configure(data, config, resume, overrides: dict[str, Any]):
    """(config, data, run folder, resume state): a new run's config and data, or the run to
    resume with the changes it allows, its data and its last state."""
    if resume is not None:
        from imgclf.runs.resuming import resume_config
        from imgclf.runs.rundir import open_run_dir
        from imgclf.train.checkpoint import RESUME_STATE, load_resume_state

        run = open_run_dir(resume)
        cfg = resume_config(run, requested_settings(config, overrides), data)
        saved = load_resume_state(run.checkpoints / RESUME_STATE)
        return cfg, data if data is not None else cfg.data.source, run, saved
    cfg = make_config(config, **_preset_for_data(config, overrides, data))
    data = data if data is not None else cfg.data.source
    if data is None:
        raise ConfigError("No data: pass DATA (a folder, .csv, .npz or built-in name).")
    if isinstance(data, str | Path):
        cfg.data.source = str(data)
    return cfg, data, None, None


def _preset_for_data(config, overrides: dict[str, Any], data) -> dict[str, Any]:
    """``overrides`` with a preset alias (``fast``) resolved by the data's channels where
    they are known before reading it (else the config resolves it by ``color_mode``)."""
    from imgclf.data.formats.resolve import peek_channels
    from imgclf.presets import ALIASES, resolve_preset

    requested = requested_settings(config, overrides)
    name = requested.get("preset")
    if not isinstance(name, str) or name.strip().lower() not in ALIASES:
        return overrides
    channels = peek_channels(data if data is not None else requested.get("data.source"))
    color_mode = str(requested.get("data.color_mode", "auto"))
    return {**overrides, "preset": resolve_preset(name, channels, color_mode)}


def _complete_run(run, cfg: Config, saved: dict, runtime: Runtime) -> Run | None:
    """A finished run that a resume has nothing to add to, as it is (said in one line);
    None when the resume has work to do."""
    from imgclf.models.bundle import load_bundle
    from imgclf.runs.resuming import complete_line
    from imgclf.runs.run import Run
    from imgclf.runs.rundir import read_metrics

    line = complete_line(run, cfg, saved)
    if line is None:
        return None
    if runtime.is_main:  # (even quiet: it is the outcome, not progress)
        from imgclf.terminal import print_line

        print_line(line)
    history = list(saved["state"]["history"])
    return Run(run.path, cfg, load_bundle(run.path), history, read_metrics(run), runtime, note=line)


def _create_run(cfg: Config, data: DataLike, prepared: PreparedData, progress: bool):
    """The new run's folder with its config and data report."""
    from imgclf.runs.finish import describe_run
    from imgclf.runs.rundir import create_run_dir

    run = create_run_dir(cfg, data_name(data))
    describe_run(run, cfg, prepared, progress)
    if cfg.data.audit == "full":
        _full_audit(run, cfg, data, prepared, progress)
    return run


def _full_audit(run, cfg: Config, data: DataLike, prepared: PreparedData, progress: bool) -> None:
    """``imgclf audit``'s every check on the run's data, read and split as the run reads it but
    embedded by the audit's own backbone at its size, into RUN/audit-full/ (beside the quick
    check's files); the final scores leave out the leaks either found."""
    import numpy as np

    from imgclf.api.auditing import audit
    from imgclf.audit.quick import leaked_rows
    from imgclf.config import ModelConfig

    settings = cfg.model_copy(
        update={"model": ModelConfig(), "data": cfg.data.model_copy(update={"image_size": None})}
    )
    folder = run.path / "audit-full"
    result = audit(data, out=folder, config=settings, progress=progress)
    for split, rows in leaked_rows(result).items():
        prepared.leaks[split] = np.union1d(prepared.leaks.get(split, rows), rows)
    if progress:
        from imgclf.terminal import print_line

        for line in result.summary_lines()[1:]:
            print_line(f"audit: {line}")
        print_line(f"audit: see {folder / 'audit.html'}")


def _recorded(run, cfg: Config, setup, saved: dict | None):
    """status.json and the project's ledger follow the run (started, then finished, failed or
    interrupted; a resumed run that had finished stays finished if this session fails); a
    process without a run folder records nothing."""
    from contextlib import nullcontext

    from imgclf.data.pipeline.fingerprint import data_fingerprint
    from imgclf.runs.recording import Outcome, recording, started_fields
    from imgclf.runs.rundir import read_status

    if run is None:
        return nullcontext(Outcome())
    finished = saved is not None and read_status(run)["status"] == "finished"
    prepared = setup.prepared
    started = started_fields(
        cfg,
        data_fingerprint(prepared.source, prepared.splits, prepared.stats),
        setup.runtime.describe(),
        resumed_from_epoch=saved["state"]["epoch"] if saved is not None else None,
    )
    return recording(run, started, finished_before=finished)


def _finish(result, cfg: Config, run, progress: bool) -> dict[str, Any]:
    """Score, bundle, plot and report the run (after a first Ctrl-C too); without a run folder
    only the run's course, unscored."""
    from imgclf.runs.finish import finishing, run_metrics, write_run_artifacts

    if run is None:
        return run_metrics(result, {})
    with finishing(progress):
        return write_run_artifacts(result, cfg, run)


def lr_find(
    data: DataLike,
    config: str | Path | dict | Config | None = None,
    stage: str | None = None,
    num_steps: int = 100,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    out: str | Path | None = None,
    progress: bool = True,
    **overrides: Any,
) -> LRFinderResult:
    """The learning-rate range test of a run's first stage (or ``stage``) on ``data``.

    The data, model and stages are set up exactly as ``train`` would; nothing is written but
    ``out``. For a pretrained backbone the first stage is the head on cached embeddings;
    ``stage="finetune"`` fits the head first, then tests the unfrozen network.

    Args:
        stage: a stage name of the run (``train``, ``head``, ``finetune``); None: the first.
        num_steps: batches to train (at least 5), the lr growing exponentially over them.
        start_lr: the first learning rate.
        end_lr: the last learning rate (the test stops earlier if the loss diverges).
        out: folder for ``lr_find.png`` and ``lr_find.csv``; None writes nothing.
        progress: show progress bars.
        **overrides: config keys, e.g. ``model="cnn", batch_size=64, image_size=128``.

    Returns:
        An LRFinderResult: ``suggestion``, ``minimum``, ``steepest`` and the curve.
    """
    from imgclf.runtime import Runtime
    from imgclf.train.lr_find import check_range, lr_range_test
    from imgclf.train.session import prepare_training

    cfg = make_config(config, **overrides)
    check_range(num_steps, start_lr, end_lr)
    runtime = Runtime.from_config(cfg.train)
    setup = prepare_training(data, cfg, progress, runtime)
    result = lr_range_test(
        setup.model, setup.stages, cfg, stage, num_steps, start_lr, end_lr, progress, runtime
    )
    if out is not None:
        write_lr_find(result, out)
    return result


def write_lr_find(result: LRFinderResult, out: str | Path) -> dict[str, Path]:
    """Write ``lr_find.png`` (the curve) and ``lr_find.csv`` (one row per step) into ``out``."""
    from imgclf.evaluate.lr_find_plot import plot_lr_find
    from imgclf.fileio import atomic_write_text

    out = Path(out)
    csv = out / "lr_find.csv"
    atomic_write_text(csv, result.to_frame().to_csv(index=False))
    return {"plot": plot_lr_find(result, out / "lr_find.png"), "csv": csv}
