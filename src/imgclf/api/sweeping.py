"""Sweeps: many runs of one data set over a search space, on an Optuna study, within a budget.

Each trial is an ordinary ``train`` run (in the ledger with its study and trial) with two more
callbacks: pruning (the pruner sees the monitored value each epoch) and the study's deadline,
which cuts the trial in flight. ``trials`` is the study's total: a study continued with
``study=NAME`` runs only the trials it still lacks, and a trial whose process was killed is
marked failed and replaced, so none is lost or counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.api.settings import make_config
from imgclf.config import Config
from imgclf.data.sources import DataLike
from imgclf.errors import ConfigError, ImgclfError, TrainingInterrupted, did_you_mean
from imgclf.sweep.trials import (
    best_row,
    counted,
    enqueue_config,
    forget_abandoned,
    grid_exhausted,
    trial_rows,
)

REFIT_MARGIN = 1.25  # time kept for the refit: the longest complete trial's wall time, times this
MIN_TRIAL_SECONDS = 5.0  # no new trial starts with less than this left


@dataclass
class SweepResult:
    """A sweep's study and its trials (this session's and earlier ones)."""

    study: str
    storage: str
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    refit: str | None = None  # the refit run's name
    ran: int = 0  # trials run by this call
    notes: list[str] = field(default_factory=list)


def sweep(
    data: DataLike | None = None,
    space: str | Path | dict[str, Any] | None = None,
    *,
    trials: int = 20,
    budget: float | str | None = None,
    study: str | None = None,
    storage: str | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    enqueue: str | Path | dict[str, Any] | None = None,
    refit: bool = False,
    config: str | Path | dict | Config | None = None,
    say: Callable[[str], None] | None = None,
    **overrides: Any,
) -> SweepResult:
    """Search ``space`` with ``trials`` runs on ``data`` (TPE, random or grid), pruning the
    poor ones, within ``budget`` (the whole sweep, refit included).

    Args:
        space: the search space: a YAML file or a dict of dotted config keys.
        trials: the study's total number of trials (failed ones count, killed ones do not).
        budget: seconds or '30m' for the whole sweep; the deadline also cuts the trial in
            flight and keeps time for the refit.
        study: the study's name (default: a new one); an existing study is continued.
        storage: a journal file path or a database URL (default: PROJECT/sweeps.journal).
        enqueue: a config (YAML file or dict) to run as the next trial, e.g. the tutorial's.
        refit: train the best trial's settings again on train + validation data.
        config, overrides: the settings every trial shares, under the space's.
        say: where progress lines go (default: nowhere).
    """
    from imgclf.sweep.space import load_space
    from imgclf.sweep.study import JOURNAL, make_pruner, make_sampler, open_storage, open_study

    say = say or (lambda line: None)
    seconds = _check_arguments(space, trials, budget, sampler, pruner)
    deadline = time.perf_counter() + seconds if seconds else None
    searched = load_space(space)
    base = make_config(config, **overrides)
    data = data if data is not None else base.data.source
    if data is None:
        raise ConfigError("No data: pass DATA (a folder, .csv, .npz or built-in name).")
    if base.data.val_split <= 0 and not _has_val_folder(data):
        raise ConfigError("A sweep scores trials on validation data: set val_split above 0.")
    project = Path(base.run.project)
    name = study or _new_study_name()
    grid = searched.grid() if sampler == "grid" else None
    storage_obj = open_storage(storage, project)
    direction = "maximize" if "accuracy" in base.train.monitor else "minimize"
    the_study = open_study(
        name, storage_obj, make_sampler(sampler, base.seed, grid), make_pruner(pruner), direction
    )
    forget_abandoned(the_study, project, say)
    if enqueue is not None:
        enqueue_config(the_study, searched, enqueue)
    trial_runner = _TrialRunner(data, base, searched, the_study, deadline, refit, say)
    ran = trial_runner.run_until(trials)
    refit_name = trial_runner.refit_best() if refit else None
    storage_text = storage or str(project / JOURNAL)
    rows = trial_rows(the_study)
    best = best_row(the_study, rows)
    return SweepResult(name, storage_text, rows, best, refit_name, ran, trial_runner.notes)


def _check_arguments(space, trials: int, budget, sampler: str, pruner: str) -> float | None:
    """The sweep's own arguments, checked before anything is opened; the budget in seconds."""
    from imgclf.sweep.study import PRUNERS, SAMPLERS
    from imgclf.timefmt import parse_duration

    for kind, value, known in (("sampler", sampler, SAMPLERS), ("pruner", pruner, PRUNERS)):
        if value not in known:
            raise ConfigError(
                f"Unknown {kind} '{value}'.{did_you_mean(value, known)} "
                f"{kind.capitalize()}s: {', '.join(known)}."
            )
    if space is None:
        raise ConfigError("No search space: pass --space space.yaml (dotted config keys).")
    if trials < 1:
        raise ConfigError(f"trials must be at least 1, received {trials}.")
    try:
        seconds = parse_duration(budget) if isinstance(budget, str) else budget
    except ValueError as exc:
        raise ConfigError(f"The sweep budget must be {exc}.") from None
    if seconds is not None and seconds <= 0:
        raise ConfigError(f"The sweep budget must be positive, received {budget}.")
    return seconds


def _has_val_folder(data: Any) -> bool:
    return isinstance(data, str | Path) and (Path(data) / "val").is_dir()


def _new_study_name() -> str:
    from datetime import datetime

    return "sweep-" + datetime.now().strftime("%Y%m%d-%H%M%S")


class _TrialRunner:
    """Runs trials one after the other (ask, train, tell) until the study has enough of them
    or the deadline leaves no time for another."""

    def __init__(self, data, base: Config, space, study, deadline, refit: bool, say) -> None:
        self.data, self.base, self.space, self.study = data, base, space, study
        self.deadline, self.refit, self.say = deadline, refit, say
        self.notes: list[str] = []

    def left(self) -> float:
        """Seconds left for trials (the refit's time kept), or infinity without a budget."""
        if self.deadline is None:
            return float("inf")
        return self.deadline - time.perf_counter() - self._refit_reserve()

    def _refit_reserve(self) -> float:
        from optuna.trial import TrialState

        if not self.refit:
            return 0.0
        walls = [
            t.user_attrs.get("wall_seconds", 0.0)
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        ]
        return REFIT_MARGIN * max(walls, default=0.0)

    def _shortest_trial(self) -> float:
        """Seconds a trial needs at least: the shortest complete one so far (a trial started
        with less left would be cut before it scores), and never under MIN_TRIAL_SECONDS."""
        from optuna.trial import TrialState

        walls = [
            t.user_attrs["wall_seconds"]
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("wall_seconds")
        ]
        return max(MIN_TRIAL_SECONDS, min(walls, default=0.0))

    def run_until(self, total: int) -> int:
        ran = 0
        while (done := counted(self.study)) < total:
            if self.left() < self._shortest_trial():
                self.notes.append(f"the budget ended the sweep with {done} of {total} trials")
                break
            if grid_exhausted(self.study):
                self.notes.append(f"the grid is exhausted after {done} trials")
                break
            self.run_trial()
            ran += 1
        return ran

    def run_trial(self) -> None:
        """One trial, inside Optuna's own loop (its samplers, e.g. the grid, expect that): a
        trial that raises is failed and the sweep goes on; Ctrl-C ends the sweep."""
        self.study.optimize(self._objective, n_trials=1, catch=(_TrialFailed,))

    def _objective(self, trial) -> float:
        import optuna

        from imgclf.api.training import train
        from imgclf.sweep.callbacks import StudyDeadline, TrialPruning
        from imgclf.sweep.space import nest
        from imgclf.sweep.study import worker

        trial.set_user_attr("worker", worker())
        try:
            suggested = self.space.suggest(trial)
        except ValueError as exc:  # Optuna: a parameter's choices differ from the study's
            trial.set_user_attr("abandoned", True)
            key = next((k for k in self.space.keys if k not in trial.params), "a key")
            raise ConfigError(
                f"Study '{self.study.study_name}' searched other values of {key} ({exc}): "
                "continue it with its own space, or give a new --study name."
            ) from None
        settings = {**trial.user_attrs.get("overrides", {}), **suggested}
        run_name = f"{self.study.study_name}-{trial.number:03d}"
        trial.set_user_attr("run", run_name)
        config = nest(settings, self.base.model_dump(mode="json"))
        config["run"].update(name=run_name, study=self.study.study_name, trial=trial.number)
        monitor = self.base.train.monitor
        pruning = TrialPruning(trial, monitor)
        callbacks: list[Any] = [pruning]
        if self.deadline is not None:
            callbacks.append(StudyDeadline(self.left()))
        self.say(f"trial {trial.number}: {_describe(settings)}")
        try:
            run = train(self.data, config, callbacks=callbacks)
        except TrainingInterrupted:  # replaced by a new trial when the study is continued
            trial.set_user_attr("abandoned", True)
            raise
        except (ImgclfError, RuntimeError, ValueError) as exc:
            error = " ".join(str(exc).split()) or type(exc).__name__
            trial.set_user_attr("error", error)
            self.say(f"trial {trial.number} failed: {error}")
            raise _TrialFailed(error) from None
        value = (run.metrics.get("best_val") or {}).get(monitor)
        stop = run.metrics.get("stop_reason") or ""
        trial.set_user_attr("wall_seconds", run.metrics["timings"].get("total"))
        trial.set_user_attr("stop", _kind(stop))
        self.say(
            f"trial {trial.number}: {monitor} {value if value is None else round(value, 4)}, "
            f"{_kind(stop)}, {run.metrics['timings'].get('total', 0):.0f} s"
        )
        if pruning.pruned_at is not None or stop.startswith("time limit") or value is None:
            _drop_checkpoints(run.path)
            raise optuna.TrialPruned(stop)
        return float(value)

    def refit_best(self) -> str | None:
        """The best complete trial trained again on train + validation (for its best epoch
        count, in a one-stage run), as a run whose parent is the trial's run."""
        from imgclf.api.training import train
        from imgclf.runs.rundir import RunDir, read_run_config

        try:
            best = self.study.best_trial
        except ValueError:
            self.notes.append("no trial completed: nothing to refit")
            return None
        parent = best.user_attrs["run"]
        folder = RunDir(Path(self.base.run.project) / parent)
        config = read_run_config(folder)
        epochs = _best_epochs(folder)
        config["data"]["val_split"] = 0.0
        config["train"].update(patience=None, budget=None, time_limit=None)
        if epochs:
            config["train"]["epochs"] = epochs
        name = f"{self.study.study_name}-refit"
        config["run"].update(name=name, study=self.study.study_name, trial=None, parent=parent)
        self.say(f"refit: trial {best.number}'s settings on train + validation")
        train(self.data, config)
        return name


def _drop_checkpoints(run_path: Path | None) -> None:
    """A pruned or cut trial is over for good: its resume checkpoint (a whole model's weights
    and optimizer, 14 MB for Lite0) goes; its bundle, metrics and report stay."""
    import shutil

    if run_path is not None:
        shutil.rmtree(run_path / "checkpoints", ignore_errors=True)


class _TrialFailed(Exception):
    """A trial's run raised: the trial is failed (with the error in its attributes)."""


def _best_epochs(folder) -> int | None:
    """The best epoch of a one-stage run (None for a staged one, which keeps its epochs)."""
    import json

    from imgclf.runs.rundir import read_history

    best = json.loads(folder.metrics.read_text(encoding="utf-8")).get("best_epoch")
    staged = any("stage" in row for row in read_history(folder))
    return int(best) if best and not staged else None


def _kind(stop: str | None) -> str:
    from imgclf.runs.recording import stop_kind

    return stop_kind("finished", stop)


def _describe(settings: dict[str, Any]) -> str:
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in settings.items()
    )


def sweep_report(
    study: str,
    *,
    project: str | Path = "runs",
    storage: str | None = None,
    out: str | Path | None = None,
):
    """compare.html for a study's runs, with the optimisation history and Optuna's parameter
    importances added (each also a PNG); returns the Comparison (``files``: the paths)."""
    from imgclf.runs.compare import compare_runs
    from imgclf.runs.compare_report import write_compare_report
    from imgclf.sweep.report import study_figures
    from imgclf.sweep.study import load_study, open_storage

    project = Path(project)
    the_study = load_study(study, open_storage(storage, project))
    comparison = compare_runs(project, None, where={"run.study": study})
    folder = Path(out) if out is not None else project / "sweeps" / study
    comparison.files = write_compare_report(comparison, folder, extra=study_figures(the_study))
    return comparison
