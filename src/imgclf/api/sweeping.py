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
from typing import TYPE_CHECKING, Any

from imgclf.api.settings import make_config
from imgclf.errors import ConfigError, did_you_mean
from imgclf.sweep.trials import best_row, enqueue_config, forget_abandoned, trial_rows

if TYPE_CHECKING:  # the CLI imports this module at start: the data room only when sweeping
    from imgclf.config import Config
    from imgclf.data.formats.resolve import DataLike


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
    from imgclf.api.training import train
    from imgclf.sweep.runner import TrialRunner
    from imgclf.sweep.space import load_space
    from imgclf.sweep.study import JOURNAL

    say = say or (lambda line: None)
    seconds = _check_arguments(space, trials, budget, sampler, pruner)
    deadline = time.perf_counter() + seconds if seconds else None
    searched = load_space(space)
    base = make_config(config, **overrides)
    data = _sweep_data(data, base)
    project = Path(base.run.project)
    name = study or _new_study_name()
    the_study = _open_study(name, storage, project, searched, base, sampler, pruner)
    forget_abandoned(the_study, project, say)
    if enqueue is not None:
        enqueue_config(the_study, searched, enqueue)
    runner = TrialRunner(data, base, searched, the_study, deadline, refit, say, train=train)
    ran = runner.run_until(trials)
    refit_name = runner.refit_best() if refit else None
    storage_text = storage or str(project / JOURNAL)
    rows = trial_rows(the_study)
    best = best_row(the_study, rows)
    return SweepResult(name, storage_text, rows, best, refit_name, ran, runner.notes)


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


def _sweep_data(data: DataLike | None, base: Config) -> DataLike:
    """The data every trial trains on: given, or the config's; it must have validation data."""
    data = data if data is not None else base.data.source
    if data is None:
        raise ConfigError("No data: pass DATA (a folder, .csv, .npz or built-in name).")
    if base.data.val_split <= 0 and not _has_val_folder(data):
        raise ConfigError("A sweep scores trials on validation data: set val_split above 0.")
    return data


def _open_study(name: str, storage, project: Path, searched, base: Config, sampler, pruner):
    """The study (new or continued) with its sampler, pruner and the monitor's direction."""
    from imgclf.sweep.study import make_pruner, make_sampler, open_storage, open_study

    grid = searched.grid() if sampler == "grid" else None
    storage_obj = open_storage(storage, project)
    direction = "maximize" if "accuracy" in base.train.monitor else "minimize"
    return open_study(
        name, storage_obj, make_sampler(sampler, base.seed, grid), make_pruner(pruner), direction
    )


def _has_val_folder(data: Any) -> bool:
    return isinstance(data, str | Path) and (Path(data) / "val").is_dir()


def _new_study_name() -> str:
    from datetime import datetime

    return "sweep-" + datetime.now().strftime("%Y%m%d-%H%M%S")


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
