"""Training callbacks: a fixed set of events with explicit arguments (``logs``, ``state``).

Events: ``on_train_begin(state)``, ``on_epoch_begin(epoch, state)``,
``on_batch_end(batch, logs, state)``, ``on_epoch_end(epoch, logs, state)``,
``on_train_end(state)``. A callback asks training to stop by setting ``state.stop_reason``,
or to end the current stage by setting ``state.end_stage`` (early stopping: a staged fine-tune
goes on with its next stage); it never receives the trainer, the model or the optimizer.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.fileio import atomic_write_text


@dataclass
class TrainState:
    """What callbacks may read, and what they may set (best_*, stop_reason and end_stage)."""

    epochs: int
    epoch: int = 0  # epochs completed
    stage: str | None = None  # the current stage's name when a run has several
    stage_start: int = 1  # first epoch of the current stage
    end_stage: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stop_reason: str | None = None
    started: float = field(default_factory=time.perf_counter)
    elapsed_before: float = 0.0  # seconds spent before a resume

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "epochs": self.epochs,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "elapsed": self.elapsed,
        }


class Callback:
    """Base class with no-op events."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_epoch_begin(self, epoch: int, state: TrainState) -> None: ...
    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


def improved(value: float, best: float | None, monitor: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` for ``monitor`` (accuracy up, loss down) by min_delta."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value > best + min_delta if "accuracy" in monitor else value < best - min_delta


class BestCheckpoint(Callback):
    """Save the weights whenever the monitored metric improves (``save`` writes atomically)."""

    def __init__(self, monitor: str, save: Callable[[], None]) -> None:
        self.monitor, self.save = monitor, save

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        value = logs.get(self.monitor)
        if improved(value, state.best_value, self.monitor):
            state.best_value, state.best_epoch = value, epoch
            self.save()


class EarlyStopping(Callback):
    """End the stage after ``patience`` of its epochs without an improvement of ``min_delta``."""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        rows = state.history[state.stage_start - 1 :]
        best, best_at = None, state.stage_start - 1
        for at, row in enumerate(rows, start=state.stage_start):
            if improved(row.get(self.monitor), best, self.monitor, self.min_delta):
                best, best_at = row.get(self.monitor), at
        if epoch - best_at >= self.patience:
            state.end_stage = (
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {best} at epoch {best_at})"
            )


class TimeBudget(Callback):
    """Stop at an epoch boundary when the next epoch would not fit in ``seconds``.

    The budget is per session: a resumed run gets the budget again (the way a platform's time
    limit applies to each job).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        # this stage's epochs predict its next one (a head epoch says nothing of a pixel epoch)
        rows = state.history[state.stage_start - 1 :] or state.history
        durations = [row["time"] for row in rows if "time" in row]
        next_epoch = max(durations) if durations else 0.0
        spent = time.perf_counter() - state.started
        if state.epoch < state.epochs and spent + next_epoch > self.seconds:
            ends = _hms(spent + next_epoch)
            state.stop_reason = (
                f"time limit: {state.epoch} of {state.epochs} epochs fitted in "
                f"{_hms(self.seconds)} (the next would have ended after {ends})"
            )


class HistoryCSV(Callback):
    """Rewrite ``history.csv`` after every epoch (atomically), so a killed run keeps it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        columns = list(dict.fromkeys(key for row in state.history for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(state.history)
        atomic_write_text(self.path, buffer.getvalue())


def _hms(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
