"""The events a training callback gets, with explicit arguments (``logs``, ``state``): the
Callback base and TrainState, below every callback (the standard ones and the progress printer)
so that none of them imports another to subclass it.

Events, in order: ``on_train_begin(state)``, then per stage ``on_stage_begin(stage, state)``,
per epoch ``on_epoch_begin(epoch, state)``, ``on_batch_end(batch, logs, state)`` after each
batch, ``on_epoch_end(epoch, logs, state)``, ``on_stage_end(stage, state)``; then
``on_train_end(state)`` and, once the run is evaluated and written, ``on_run_end(metrics,
state)`` with the final metrics (val and test). The loop keeps the best-so-far
(``state.best_epoch``, ``state.best_value``) before ``on_epoch_end``, so no callback depends on
another's order.

The one way to stop: set ``state.stop_reason`` (training ends after the current batch), or
``state.end_stage`` at an epoch's end (the stage ends: early stopping in a staged fine-tune
goes on with its next stage). A callback never receives the trainer, the model or the
optimizer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from imgclf.train.efficiency import StepMeter


@dataclass
class TrainState:
    """What callbacks may read, and what they may set (best_*, stop_reason and end_stage)."""

    epochs: int  # planned, over all stages (early stopping takes out the epochs it skips)
    epoch: int = 0  # epochs completed
    stage: str | None = None  # the current stage's name when a run has several
    stage_start: int = 1  # first epoch of the current stage
    stage_epochs: int = 0  # epochs the current stage plans
    steps: int = 0  # batches per epoch of the current stage
    end_stage: str | None = None
    dropped: int = 0  # planned epochs that early stopping took out
    stopped_in: tuple[int, int, int] | None = None  # (epoch, batches done, batches) if cut short
    planned: dict[str, int] = field(default_factory=dict)  # epochs per stage name, as planned
    planned_steps: dict[str, int] = field(default_factory=dict)  # a budgeted stage's steps
    monitor: str = "val_accuracy"  # what best_* track (the training metric without val)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stop_reason: str | None = None
    started: float = field(default_factory=lambda: time.perf_counter())
    elapsed_before: float = 0.0  # seconds spent before a resume
    meter: StepMeter = field(default_factory=StepMeter)  # this session's steps: efficiency

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
            "dropped": self.dropped,
        }


class Callback:
    """Base class with no-op events."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_stage_begin(self, stage: str, state: TrainState) -> None: ...
    def on_epoch_begin(self, epoch: int, state: TrainState) -> None: ...
    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None: ...
    def on_stage_end(self, stage: str, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...
    def on_run_end(self, metrics: dict, state: TrainState) -> None: ...
