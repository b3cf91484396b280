"""The two callbacks a sweep adds to each trial's run: pruning, and the study's deadline."""

from __future__ import annotations

import time

from imgclf.train.callbacks import Callback, TimeLimit, TrainState


class TrialPruning(Callback):
    """Report the monitored value to the trial after each epoch; when the pruner says so, stop
    at once (the run is then recorded with stop ``pruned``)."""

    def __init__(self, trial, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            state.stop_reason = (
                f"pruned at epoch {epoch}: {self.monitor} {value:.4f} is below the pruner's "
                "cut for this epoch"
            )


class StudyDeadline(TimeLimit):
    """TimeLimit counted from when the trial started (data preparation included), so the
    study's deadline also cuts the trial in flight (Optuna's ``timeout`` lets it finish)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.origin = time.perf_counter()

    def _spent(self, state: TrainState) -> float:
        return time.perf_counter() - self.origin
