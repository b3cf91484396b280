"""A sweep's trial loop: ask Optuna, train one run, tell it the score; then the refit.

The runner is given the training function (``api.train``) rather than importing it: sweep sits
below the API tier, and a trial is an ordinary run with two callbacks added (pruning and the
study's deadline), so the runner needs nothing of the API but that one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgclf.config import Config
from imgclf.errors import ConfigError, ImgclfError, TrainingInterrupted
from imgclf.sweep.trials import counted, grid_exhausted

REFIT_MARGIN = 1.25  # time kept for the refit: the longest complete trial's wall time, times this
MIN_TRIAL_SECONDS = 5.0  # no new trial starts with less than this left

Train = Callable[..., Any]  # api.train: (data, config, callbacks=...) -> Run


class TrialRunner:
    """Runs trials one after the other (ask, train, tell) until the study has enough of them
    or the deadline leaves no time for another."""

    def __init__(
        self, data, base: Config, space, study, deadline, refit: bool, say, *, train: Train
    ) -> None:
        self.data, self.base, self.space, self.study = data, base, space, study
        self.deadline, self.refit, self.say = deadline, refit, say
        self.train = train
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
        """Seconds a trial needs at least (a trial started with less left would be cut before
        it scores), never under MIN_TRIAL_SECONDS: the shortest complete one so far, less what
        the next trial reads from the caches that trial left (decoding, embedding), so a first
        trial that built them does not stand for every trial."""
        from optuna.trial import TrialState

        walls = [
            t.user_attrs.get("repeat_seconds", t.user_attrs["wall_seconds"])
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
        self.study.optimize(self._objective, n_trials=1, catch=(TrialFailed,))

    def _objective(self, trial) -> float:
        from imgclf.sweep.callbacks import StudyDeadline, TrialPruning
        from imgclf.sweep.space import nest
        from imgclf.sweep.study import worker

        trial.set_user_attr("worker", worker())
        settings = {**trial.user_attrs.get("overrides", {}), **self._suggest(trial)}
        run_name = f"{self.study.study_name}-{trial.number:03d}"
        trial.set_user_attr("run", run_name)
        config = nest(settings, self.base.model_dump(mode="json"))
        config["run"].update(name=run_name, study=self.study.study_name, trial=trial.number)
        pruning = TrialPruning(trial, self.base.train.monitor)
        callbacks: list[Any] = [pruning]
        if self.deadline is not None:
            callbacks.append(StudyDeadline(self.left()))
        self.say(f"trial {trial.number}: {describe_settings(settings)}")
        run = self._train_trial(trial, config, callbacks)
        return self._score(trial, run, pruning)

    def _suggest(self, trial) -> dict[str, Any]:
        """The space's values for ``trial``; a study that searched other values is an error."""
        try:
            return self.space.suggest(trial)
        except ValueError as exc:  # Optuna: a parameter's choices differ from the study's
            trial.set_user_attr("abandoned", True)
            key = next((k for k in self.space.keys if k not in trial.params), "a key")
            raise ConfigError(
                f"Study '{self.study.study_name}' searched other values of {key} ({exc}): "
                "continue it with its own space, or give a new --study name."
            ) from None

    def _train_trial(self, trial, config: dict[str, Any], callbacks: list[Any]):
        """The trial's run; an error fails the trial (the sweep goes on), Ctrl-C abandons it."""
        try:
            return self.train(self.data, config, callbacks=callbacks)
        except TrainingInterrupted:  # replaced by a new trial when the study is continued
            trial.set_user_attr("abandoned", True)
            raise
        except (ImgclfError, RuntimeError, ValueError) as exc:
            error = " ".join(str(exc).split()) or type(exc).__name__
            trial.set_user_attr("error", error)
            self.say(f"trial {trial.number} failed: {error}")
            raise TrialFailed(error) from None

    def _score(self, trial, run, pruning) -> float:
        """The run's best monitored value; a pruned, cut or unscored run prunes the trial."""
        import optuna

        monitor = self.base.train.monitor
        value = (run.metrics.get("best_val") or {}).get(monitor)
        stop = run.metrics.get("stop_reason") or ""
        timings = run.metrics["timings"]
        trial.set_user_attr("wall_seconds", timings.get("total"))
        cached = timings.get("data", 0.0) + timings.get("embed", 0.0)  # the next trial reads them
        trial.set_user_attr("repeat_seconds", max(0.0, timings.get("total", 0.0) - cached))
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
        # the run one keeps draws its figures, whatever the trials did
        config["run"].update(
            name=name, study=self.study.study_name, trial=None, parent=parent, plots=True
        )
        self.say(f"refit: trial {best.number}'s settings on train + validation")
        self.train(self.data, config)
        return name


class TrialFailed(Exception):
    """A trial's run raised: the trial is failed (with the error in its attributes)."""


def _drop_checkpoints(run_path: Path | None) -> None:
    """A pruned or cut trial is over for good: its resume checkpoint (a whole model's weights
    and optimizer, 14 MB for Lite0) goes; its bundle, metrics and report stay."""
    import shutil

    if run_path is not None:
        shutil.rmtree(run_path / "checkpoints", ignore_errors=True)


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


def describe_settings(settings: dict[str, Any]) -> str:
    """A trial's settings on one line, as the progress lines show them."""
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in settings.items()
    )
