"""Resuming a run: the checkpoint a stage writes (model, optimizer, schedule, loader place, RNG,
an epoch's running sums, the schedule's segment) and how a resumed stage picks it up, including
epochs added on resume (a new segment with a fresh cycle of the schedule)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from imgclf.errors import ConfigError
from imgclf.train.callbacks import TrainState
from imgclf.train.parts import EpochTally, Segment, Stage, StageParts


def check_closed_stages(stages: list[Stage], saved: dict[str, Any]) -> None:
    """Epochs added to a stage the run has already left cannot run: say which to raise."""
    rows = saved["state"]["history"]
    for stage in stages[: saved["stage"]]:
        ran = sum(row.get("stage") == stage.name for row in rows)
        if stage.epochs > ran and ran == _planned(saved, stage):
            later = stages[saved["stage"]].name
            raise ConfigError(
                f"Stage '{stage.name}' is over (the run is in stage '{later}'), so its epochs "
                f"cannot be raised from {ran} to {stage.epochs}. Add epochs to the current "
                f"stage instead (finetune_epochs for '{later}')."
            )


def _planned(saved: dict[str, Any], stage: Stage) -> int:
    return saved.get("planned", {}).get(stage.name, stage.epochs)


def segment_after(stage: Stage, resumed: dict[str, Any] | None, done: int) -> Segment:
    """The schedule segment the stage is in after ``done`` of its epochs: the saved one, or,
    once that has ended and epochs were added, a new one over the added epochs."""
    saved = (resumed or {}).get("segment") or {"start": 0, "epochs": stage.epochs}
    segment = Segment(int(saved["start"]), int(saved["epochs"]))
    if segment.start + segment.epochs <= done < stage.epochs:
        return Segment(done, stage.epochs - done)
    return segment


def same_segment(segment: Segment, resumed: dict[str, Any]) -> bool:
    saved = resumed.get("segment")
    return saved is None or (saved["start"], saved["epochs"]) == (segment.start, segment.epochs)


def carry_over(fresh: StageParts, parts: StageParts) -> StageParts:
    """A new segment's parts with the optimizer's moments and the loader's place carried over;
    the lr is the new schedule's first."""
    lrs = _initial_lrs(fresh)
    fresh.optimizer.load_state_dict(parts.optimizer.state_dict())
    for group, lr in zip(fresh.optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    fresh.loader.load_state_dict(parts.loader.state_dict())
    return fresh


def snapshot(
    stage: Stage,
    index: int,
    parts: StageParts,
    state,
    finished: bool,
    segment: Segment,
    tally: EpochTally | None = None,
) -> dict[str, Any]:
    return {
        "stage": index,
        "stage_epochs": state.epoch - state.stage_start + 1,
        "stage_finished": finished,
        "ended_early": bool(state.end_stage),
        "segment": {"start": segment.start, "epochs": segment.epochs},
        "tally": None if tally is None else vars(tally).copy(),
        "model": {k: v.detach().clone() for k, v in stage.module.state_dict().items()},
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "loader": parts.loader.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "state": state.to_dict(),
        "planned": dict(state.planned),
        "planned_steps": dict(state.planned_steps),
    }


def restore_state(state: TrainState, saved: dict[str, Any], stages: list[Stage]) -> None:
    previous = saved["state"]
    state.epoch = previous["epoch"]
    state.history = list(previous["history"])
    state.best_epoch, state.best_value = previous["best_epoch"], previous["best_value"]
    state.elapsed_before = previous["elapsed"]
    # the plan: the epochs planned now (resume may add some), less those early stopping took out
    state.dropped = previous.get("dropped", 0)
    state.epochs = sum(stage.epochs for stage in stages) - state.dropped


def restore_parts(
    module: nn.Module, parts: StageParts, saved: dict[str, Any], keep_schedule: bool = True
) -> None:
    """The saved model, optimizer, loader and RNG; the schedule too unless a new segment
    starts (epochs added on resume begin a fresh cycle)."""
    module.load_state_dict(saved["model"])
    lrs = _initial_lrs(parts)
    parts.optimizer.load_state_dict(saved["optimizer"])
    if keep_schedule:
        parts.scheduler.load_state_dict(saved["scheduler"])
    else:  # the fresh schedule's first lr, not the finished one's last
        for group, lr in zip(parts.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
    parts.loader.load_state_dict(saved["loader"])
    torch.set_rng_state(saved["torch_rng"])


def _initial_lrs(parts: StageParts) -> list[float]:
    return [float(lr) for lr in parts.scheduler.get_last_lr()]
