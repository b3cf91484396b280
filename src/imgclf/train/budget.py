"""A run planned to a time budget (``train.budget``): probe, plan, schedule, re-plan.

1. **Probe.** A few training steps of each stage (about a second's worth), on a copy of the
   model (so training itself is untouched), and part of a validation pass time what an epoch
   costs. Early in the first epoch the real speed is checked once more (see 4).
2. **Plan.** The epochs fill what is left of the budget once the time already spent (data,
   embeddings, the probe) and a reserve for the final evaluation and report are taken out.
   Stages before the last keep their epochs (or are cut to half of the time left); the last
   stage gets the rest.
3. **Schedule.** Each stage's learning rate is a function of its *progress*, a number from 0
   to 1 that grows per step by what is left over the steps left, so a new plan changes how
   fast it grows from now on, never where it is: the lr never jumps (Ultralytics' ``time=``
   rebuilt its schedule on each re-plan, so short runs never left warm-up).
4. **Re-plan** only when the measured speed differs from the estimate by more than ``DRIFT``
   (10 %): a tenth into a stage's first epoch, and at each epoch's end. A hard deadline
   (TimeBudget) stops training inside an epoch when the time for training is spent.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from imgclf.config import Config
from imgclf.models.freeze import apply_policy
from imgclf.models.inference import predict_rows
from imgclf.runtime import Runtime
from imgclf.timefmt import format_duration
from imgclf.train.callbacks import Callback, TrainState

DRIFT = 0.10  # re-plan when an epoch's time is off the plan by more than this fraction
PROBE_STEPS = 3  # timed training steps per stage at least (after WARMUP_STEPS untimed ones)
PROBE_SECONDS = 1.0  # ... and at least this long, up to MAX_PROBE_STEPS
MAX_PROBE_STEPS = 20
WARMUP_STEPS = 2
PROBE_VAL_ROWS = 512  # at most this many validation rows are timed
# bundle, plots and report.html: measured on 2 cores at 2.5 s for 3 classes, 4.5-6 s for 10
# (the confusion matrices and per-class tables grow with the classes)
REPORT_SECONDS, REPORT_SECONDS_PER_CLASS = 1.5, 0.35


@dataclass
class StageCost:
    """What one epoch of a stage costs, in seconds."""

    step: float  # one training batch
    steps: int  # batches per epoch
    val: float  # one validation pass
    row: float = 0.0  # scoring one image (the final evaluation's unit)

    @property
    def epoch(self) -> float:
        return self.step * self.steps + self.val


@dataclass
class BudgetPlan:
    """The plan of a budgeted run, recorded in its metrics: planned, then each re-plan."""

    budget: float
    spent: float  # before training: data, embeddings, the probe
    reserve: float  # kept for the final evaluation and report
    costs: dict[str, StageCost]
    epochs: dict[str, int]  # as first planned
    replans: list[dict[str, Any]] = field(default_factory=list)

    @property
    def training_seconds(self) -> float:
        """The seconds training may take (the hard deadline, from the loop's start)."""
        return max(0.0, self.budget - self.spent - self.reserve)

    def describe(self) -> str:
        epochs = " + ".join(f"{n} {name}" for name, n in self.epochs.items())
        per = ", ".join(f"{name} {format_duration(c.epoch)}" for name, c in self.costs.items())
        return (
            f"budget {format_duration(self.budget)}: {epochs} epochs planned (per epoch: {per}; "
            f"{format_duration(self.spent)} spent before training, "
            f"{format_duration(self.reserve)} kept for the final evaluation and report)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "spent_before_training": self.spent,
            "reserve": self.reserve,
            "epoch_seconds": {name: cost.epoch for name, cost in self.costs.items()},
            "costs": {name: asdict(cost) for name, cost in self.costs.items()},
            "planned_epochs": dict(self.epochs),
            "replans": list(self.replans),
        }


class BudgetSchedule:
    """A stage's lr factor as a function of its progress (0 to 1), itself a function of the
    step: piecewise linear, continuous across re-plans.

    A callable object, so LambdaLR's state_dict saves its anchors and a resumed run continues
    the same curve. Shapes: ``constant``, ``cosine`` (to 0) and ``onecycle`` (from 1/25 of the
    peak up over 30 % of the progress, then down to 1/250,000 of it, both cosine), after a
    linear warm-up over ``warmup`` (a fraction of the progress).
    """

    def __init__(self, shape: str, steps: int, warmup: float = 0.0) -> None:
        self.shape, self.warmup = shape, min(warmup, 0.99)
        self.anchor_step, self.anchor, self.rate = 0, 0.0, 1.0 / max(1, steps)

    def progress(self, step: int) -> float:
        return min(1.0, self.anchor + (step - self.anchor_step) * self.rate)

    def replan(self, step: int, steps_left: int) -> None:
        """From ``step`` on, reach progress 1 after ``steps_left`` more steps."""
        self.anchor, self.anchor_step = self.progress(step), step
        self.rate = (1.0 - self.anchor) / max(1, steps_left)

    def __call__(self, step: int) -> float:
        p = self.progress(step)
        if self.warmup and p < self.warmup:
            return min(1.0, self.progress(step + 1) / self.warmup)
        if self.shape == "onecycle":
            peak_at = max(0.3, self.warmup)
            if p < peak_at:
                return _cosine(1 / 25, 1.0, p / peak_at)
            return _cosine(1.0, 1 / 25 / 1e4, (p - peak_at) / (1 - peak_at))
        if self.shape == "cosine":
            return _cosine(1.0, 0.0, (p - self.warmup) / (1 - self.warmup))
        return 1.0


def _cosine(start: float, end: float, fraction: float) -> float:
    fraction = min(1.0, max(0.0, fraction))
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * fraction))


# ---------------------------------------------------------------- probe and plan


def probe_costs(model, stages, cfg: Config, runtime: Runtime) -> dict[str, StageCost]:
    """Time training steps of each stage on a copy of ``model`` (the median of at least
    ``PROBE_STEPS`` and ``PROBE_SECONDS``, after ``WARMUP_STEPS``; the mean over its progressive
    sizes) and a validation pass on up to ``PROBE_VAL_ROWS`` rows, scaled to the whole.

    The model and the stages' modules are copied together, so each copied module is made of
    the copied model's layers whatever it is: the model, its classifier (a new Sequential over
    the head's layers, on embeddings) or a ``FromActivations`` over it."""
    from imgclf.train.setup import build_parts

    twin, modules = copy.deepcopy((model, [stage.module for stage in stages]))
    costs = {}
    for stage, module in zip(stages, modules, strict=True):
        if stage.policy is not None:
            apply_policy(twin, stage.policy)
        probe = dataclasses.replace(stage, module=module, schedule=None)
        parts = build_parts(twin, probe, cfg, runtime=runtime)
        steps = [_step_seconds(module, parts, runtime, size) for size in _epoch_sizes(stage)]
        row = _row_seconds(module, probe, cfg, runtime)
        costs[stage.name] = StageCost(
            float(np.mean(steps)), len(parts.loader), row * len(stage.data.val), row
        )
    return costs


def _epoch_sizes(stage) -> list[tuple[int, int] | None]:
    """The input sizes the stage's epochs train at, as the loop resizes them: its progressive
    sizes then the full size (None), each for an equal share of the epochs."""
    from imgclf.train.loop import epoch_size

    if not stage.sizes:
        return [None]
    steps = len(stage.sizes) + 1
    one_each = dataclasses.replace(stage, train=stage.train.model_copy(update={"epochs": steps}))
    return [epoch_size(one_each, index) for index in range(steps)]


def _step_seconds(module, parts, runtime: Runtime, size: tuple[int, int] | None) -> float:
    """The median seconds of a training step at ``size`` (None: as loaded), waiting for its
    batch included, as the loop trains it."""
    from torch.nn import functional as F

    from imgclf.train.loop import optimizer_step

    module.train()
    times, batches = [], iter(parts.loader)
    began = time.perf_counter()
    for inputs, targets in batches:
        inputs, targets = runtime.move(inputs), runtime.move(targets)
        if size is not None:
            inputs = F.interpolate(inputs.float(), size=size, mode="bilinear", antialias=True)
        with runtime.autocast():
            logits = module(inputs)
        optimizer_step(module, parts, parts.loss_fn(logits.float(), targets), None)
        now = time.perf_counter()
        times.append(now - began)
        began = now
        timed = times[WARMUP_STEPS:]
        if len(timed) >= MAX_PROBE_STEPS or (
            len(timed) >= PROBE_STEPS and sum(timed) >= PROBE_SECONDS
        ):
            break
    batches.close()
    return float(np.median(times[WARMUP_STEPS:] or times))


def _row_seconds(module, stage, cfg: Config, runtime: Runtime) -> float:
    """Seconds to score one image as validation does, timed on up to ``PROBE_VAL_ROWS``
    validation rows (training rows when there are none: the final test still needs it)."""
    rows = stage.data.val if len(stage.data.val) else stage.data.train
    timed = rows[:PROBE_VAL_ROWS]
    tta = cfg.train.tta if stage.data.images.ndim == 4 else "none"
    began = time.perf_counter()
    predict_rows(
        module, stage.data.images, timed, cfg.train.eval_batch_size, runtime=runtime, tta=tta
    )
    return (time.perf_counter() - began) / max(1, len(timed))


def final_reserve(costs: dict[str, StageCost], stages, evaluated_rows: int) -> float:
    """Seconds kept for scoring ``evaluated_rows`` with the last stage's network, the bundle,
    the plots and the report."""
    last = stages[-1]
    report = REPORT_SECONDS + REPORT_SECONDS_PER_CLASS * len(last.data.classes)
    return costs[last.name].row * evaluated_rows + report


def plan_epochs(costs: dict[str, StageCost], stages, available: float) -> dict[str, int]:
    """Epochs per stage that fill ``available`` seconds: earlier stages keep theirs unless
    they would take over half of it; the last stage gets what is left (at least one each)."""
    epochs = {}
    earlier = stages[:-1]
    wanted = sum(costs[s.name].epoch * s.epochs for s in earlier)
    scale = min(1.0, available / 2 / wanted) if wanted > 0 else 1.0
    for stage in earlier:
        epochs[stage.name] = max(1, math.floor(stage.epochs * scale))
    left = available - sum(costs[s.name].epoch * epochs[s.name] for s in earlier)
    last = stages[-1]
    epochs[last.name] = max(1, math.floor(left / max(costs[last.name].epoch, 1e-9)))
    return epochs


def plan_budget(setup, cfg: Config, evaluated_rows: int) -> BudgetPlan:
    """Probe ``setup``'s stages and plan their epochs to end the run within ``train.budget``
    (counted from the start of ``setup``'s preparation); set the epochs and schedules on the
    stages."""
    from imgclf.train import distributed

    budget = float(cfg.train.budget)
    costs = probe_costs(setup.model, setup.stages, cfg, setup.runtime)
    spent = time.perf_counter() - setup.started
    costs, spent = distributed.from_rank0((costs, spent))  # one plan: rank 0's timings
    reserve = final_reserve(costs, setup.stages, evaluated_rows)
    epochs = plan_epochs(costs, setup.stages, budget - spent - reserve)
    apply_plan(setup.stages, epochs, cfg)
    return BudgetPlan(budget, spent, reserve, costs, epochs)


def apply_plan(stages, epochs: dict[str, int], cfg: Config) -> None:
    """Give each stage its planned epochs and a schedule over its progress."""
    for stage in stages:
        planned = epochs[stage.name]
        warmup = stage.train.warmup_epochs / planned
        stage.train = stage.train.model_copy(update={"epochs": planned})
        steps = -(-len(stage.data.train) // stage.train.batch_size)
        stage.schedule = BudgetSchedule(stage.train.schedule, planned * steps, warmup)


class BudgetReplanner(Callback):
    """Plan a stage's remaining epochs again when its measured speed is off the estimate by
    more than ``DRIFT``: once early in the stage's first epoch (its first tenth of batches,
    while the schedule can still stretch), and at each epoch's end from the mean epoch time
    (one slow epoch is noise). The schedule's progress then reaches 1 at the new end; epochs
    are added only while it has progress left (none at lr 0). Later stages keep their plan."""

    def __init__(self, plan: BudgetPlan, stages) -> None:
        self.plan, self.stages = plan, {stage.name: stage for stage in stages}
        self.order = [stage.name for stage in stages]
        self._began, self._check_at = 0.0, None

    def on_epoch_begin(self, epoch: int, state: TrainState) -> None:
        self._began = time.perf_counter()
        first = epoch == state.stage_start and not state.history[state.stage_start - 1 :]
        self._check_at = max(PROBE_STEPS + 2, state.steps // 10) if first else None

    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None:
        from imgclf.train import distributed

        # (several processes all check, stopping or not: the check is a collective)
        stopping = state.stop_reason and not distributed.active()
        if self._check_at is None or batch + 1 < self._check_at or stopping:
            return
        self._check_at = None
        cost = self.plan.costs[self._name(state)]
        step = (time.perf_counter() - self._began) / (batch + 1)
        epoch_seconds = step * cost.steps + cost.val
        this_epoch_left = step * (cost.steps - batch - 1) + cost.val
        self._replan(state, state.epoch + 1, epoch_seconds, this_epoch_left, batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        times = [row["time"] for row in state.history[state.stage_start - 1 :] if "time" in row]
        if times:
            done = epoch - state.stage_start + 1
            self._replan(state, epoch, float(np.mean(times)), 0.0, done * state.steps)

    def _name(self, state: TrainState) -> str:
        return state.stage or self.order[0]

    def _replan(self, state, epoch, epoch_seconds, this_epoch_left, steps_done) -> None:
        """Re-plan from ``epoch_seconds`` (measured) if it drifted, with ``epoch`` (1-based)
        started and ``this_epoch_left`` seconds of it to go. Several processes re-plan from
        rank 0's measurements, so they keep one plan."""
        from imgclf.train import distributed

        measured = (epoch_seconds, this_epoch_left, state.elapsed)
        epoch_seconds, this_epoch_left, elapsed = distributed.from_rank0(measured)
        name = self._name(state)
        stage, cost = self.stages[name], self.plan.costs[name]
        if abs(epoch_seconds / cost.epoch - 1) <= DRIFT:
            return
        scale = epoch_seconds / cost.epoch
        cost.step, cost.val = cost.step * scale, cost.val * scale
        later = sum(
            self.plan.costs[n].epoch * self.stages[n].epochs
            for n in self.order[self.order.index(name) + 1 :]
        )
        left = self.plan.training_seconds - elapsed - later - this_epoch_left
        started = epoch - state.stage_start + 1
        planned = started + max(0, math.floor(left / epoch_seconds))
        if stage.schedule.progress(steps_done) >= 0.99:
            planned = min(planned, stage.epochs)  # no epochs at the schedule's end (lr ~0)
        self.plan.replans.append({"epoch": epoch, "stage": name, "after_steps": steps_done,
                                  "epoch_seconds": epoch_seconds, "epochs": planned})  # fmt: skip
        if planned == stage.epochs:
            return
        state.epochs += planned - stage.epochs
        state.planned[name] = planned
        state.stage_epochs = planned
        stage.train = stage.train.model_copy(update={"epochs": planned})
        steps = cost.steps
        stage.schedule.replan(steps_done, planned * steps - steps_done)
