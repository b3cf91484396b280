"""A run planned to a time budget (``train.budget``): probe, plan steps, schedule, re-plan, guard.

1. **Probe.** A few training steps of each stage (about a second's worth), on a copy of the
   model (so training itself is untouched), and part of a validation pass time a step and an
   epoch's validation.
2. **Plan optimizer steps, not epochs.** The steps fill what is left of the budget once the
   time already spent (data, embeddings, the probe) and a reserve for the final evaluation and
   report are taken out; each epoch's validation pass is counted, the last epoch's too, which
   may stop part-way. Stages before the last keep their epochs' steps (or are cut to half of
   the time left); the last stage gets the rest. A budget smaller than one epoch still trains
   a whole schedule: warm-up, peak and anneal all fit in the steps planned.
3. **Schedule.** Each stage's learning rate is a function of its *progress*, a number from 0
   to 1 that grows per step by what is left over the steps left, so a new plan changes how
   fast it grows from now on, never where it is: the lr never jumps (Ultralytics' ``time=``
   rebuilt its schedule on each re-plan, so short runs never left warm-up).
4. **Re-plan all the way.** A few steps into each stage, then every twentieth of its plan,
   the measured speed (the steps since the last check, each validation pass) re-plans the
   steps left, so the run follows a machine that slows down or speeds up to the end.
5. **Guard.** A deadline a little past the plan's end stops training if the plan was wrong
   anyway. That is never the normal end of a budgeted run, so it is said loudly: in the stop
   reason ("budget ...: the plan was wrong by X %") and in metrics.json (``budget.cut``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from imgclf.config import Config
from imgclf.timefmt import format_duration
from imgclf.train.callbacks import Callback, TrainState
from imgclf.train.probe import PROBE_STEPS, StageCost, probe_costs

CHECKS = 20  # re-plans per stage at most: one every twentieth of its planned steps
SMOOTHING = 0.5  # a check's step time: this share of the speed since the last check, the rest
# of the estimate before it (a moving average, so one noisy window does not swing the plan)
# bundle, plots and report.html: measured on 2 cores at 2.5 s for 3 classes, 4.5-6 s for 10
# (the confusion matrices and per-class tables grow with the classes)
REPORT_SECONDS, REPORT_SECONDS_PER_CLASS = 1.5, 0.35
# the guard cuts training this far past the plan's end: 5 % of it, from 1 s up to 10 s
GRACE_FRACTION, GRACE_MIN, GRACE_MAX = 0.05, 1.0, 10.0


@dataclass
class BudgetPlan:
    """The plan of a budgeted run, recorded in its metrics: planned, each re-plan, and the
    guard's cut if the plan was wrong."""

    budget: float
    spent: float  # before training: data, embeddings, the probe
    reserve: float  # kept for the final evaluation and report
    costs: dict[str, StageCost]
    steps: dict[str, int]  # optimizer steps per stage, as first planned
    replans: list[dict[str, Any]] = field(default_factory=list)
    cut: dict[str, Any] | None = None  # where the guard stopped training, and how wrong

    @property
    def training_seconds(self) -> float:
        """The seconds training may take, from the loop's start."""
        return max(0.0, self.budget - self.spent - self.reserve)

    @property
    def epochs(self) -> dict[str, int]:
        """Epochs per stage as first planned, the last one possibly part-way."""
        return {name: -(-n // self.costs[name].steps) for name, n in self.steps.items()}

    def describe(self) -> str:
        planned = " + ".join(
            f"{n:,} {name} steps ({n / self.costs[name].steps:.3g} epochs)"
            for name, n in self.steps.items()
        )
        per = ", ".join(f"{name} {c.step * 1000:.3g} ms" for name, c in self.costs.items())
        return (
            f"budget {format_duration(self.budget)}: {planned} planned (a step: {per}; "
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
            "planned_steps": dict(self.steps),
            "planned_epochs": self.epochs,
            "replans": list(self.replans),
            "cut": self.cut,
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


# ---------------------------------------------------------------- plan


def final_reserve(costs: dict[str, StageCost], stages, evaluated_rows: int) -> float:
    """Seconds kept for scoring ``evaluated_rows`` with the last stage's network, the bundle,
    the plots and the report."""
    last = stages[-1]
    report = REPORT_SECONDS + REPORT_SECONDS_PER_CLASS * len(last.data.classes)
    return costs[last.name].row * evaluated_rows + report


def plan_steps(costs: dict[str, StageCost], stages, available: float) -> dict[str, int]:
    """Optimizer steps per stage that fill ``available`` seconds: earlier stages keep their
    epochs' steps unless they would take over half of it; the last stage gets what is left
    (at least one step each)."""
    steps = {}
    earlier = stages[:-1]
    wanted = sum(costs[s.name].seconds(s.epochs * costs[s.name].steps) for s in earlier)
    scale = min(1.0, available / 2 / wanted) if wanted > 0 else 1.0
    for stage in earlier:
        steps[stage.name] = max(1, math.floor(stage.epochs * costs[stage.name].steps * scale))
    left = available - sum(costs[s.name].seconds(steps[s.name]) for s in earlier)
    last = stages[-1]
    steps[last.name] = costs[last.name].steps_within(left)
    return steps


def plan_budget(setup, cfg: Config, evaluated_rows: int) -> BudgetPlan:
    """Probe ``setup``'s stages and plan their steps to end the run within ``train.budget``
    (counted from the start of ``setup``'s preparation); set the steps and schedules on the
    stages."""
    from imgclf.train import distributed

    budget = float(cfg.train.budget)
    costs = probe_costs(setup.model, setup.stages, cfg, setup.runtime)
    spent = time.perf_counter() - setup.started
    costs, spent = distributed.from_rank0((costs, spent))  # one plan: rank 0's timings
    reserve = final_reserve(costs, setup.stages, evaluated_rows)
    steps = plan_steps(costs, setup.stages, budget - spent - reserve)
    apply_plan(setup.stages, steps, {name: cost.steps for name, cost in costs.items()})
    return BudgetPlan(budget, spent, reserve, costs, steps)


def apply_plan(stages, steps: dict[str, int], per_epoch: dict[str, int]) -> None:
    """Give each stage its planned steps (and the epochs they start), and a schedule over its
    progress: warm-up, peak and anneal within those steps."""
    for stage in stages:
        planned, each = steps[stage.name], max(1, per_epoch[stage.name])
        stage.steps = planned
        stage.train = stage.train.model_copy(update={"epochs": -(-planned // each)})
        warmup = stage.train.warmup_epochs * each / planned
        stage.schedule = BudgetSchedule(stage.train.schedule, planned, warmup)


class BudgetPlanner(Callback):
    """Follow the plan through the run: re-plan each stage's steps from the measured speed,
    and guard the deadline.

    - **Re-plan.** A few steps into each stage (``PROBE_STEPS + 2``), then every ``CHECKS``-th
      of its planned steps, the speed measured since the last check (and the last validation
      pass) re-plans the steps left. The last stage fills the time left; an earlier stage only
      shrinks, when it would take more than half of it (the last stage gets what it leaves).
      The schedule's progress then reaches 1 at the new end, from where it is: no lr jumps.
      Several processes re-plan from rank 0's measurements, so they keep one plan.
    - **Guard.** Training that runs past the plan's end by more than the grace (5 %, 1 to 10
      s) stops after the current batch, and the plan records how wrong it was.
    """

    def __init__(self, plan: BudgetPlan, stages) -> None:
        self.plan, self.stages = plan, {stage.name: stage for stage in stages}
        self.order = [stage.name for stage in stages]
        training = plan.training_seconds
        self.deadline = training + min(GRACE_MAX, max(GRACE_MIN, GRACE_FRACTION * training))
        self._mark = (0.0, 0)  # (time, stage step) the speed's window counts from
        self._last_batch = 0.0  # when the last batch ended (validation is timed from there)
        self._next_check = 0

    def on_stage_begin(self, stage: str, state: TrainState) -> None:
        name = self._name(state)
        if name == self.order[-1] and len(self.order) > 1:  # earlier stages took what they took
            self._replan(state, self._done(state, 0), "stage start")
        self._next_check = self._done(state, 0) + PROBE_STEPS + 2

    def on_epoch_begin(self, epoch: int, state: TrainState) -> None:
        self._mark = (time.perf_counter(), self._done(state, 0))

    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None:
        from imgclf.train import distributed

        now = self._last_batch = time.perf_counter()
        if now - state.started > self.deadline and not state.stop_reason:
            self._cut(state, batch)
        done = self._done(state, batch + 1)
        if done < self._next_check or (state.stop_reason and not distributed.active()):
            return  # (several processes all check, stopping or not: the check is a collective)
        began, since = self._mark
        cost = self.plan.costs[self._name(state)]
        measured = distributed.from_rank0((now - began) / max(1, done - since))
        cost.step = SMOOTHING * measured + (1 - SMOOTHING) * cost.step
        self._mark = (now, done)
        self._replan(state, done, "measured")
        every = max(PROBE_STEPS + 2, self.stages[self._name(state)].steps // CHECKS)
        self._next_check = done + every

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        from imgclf.train import distributed

        if "val_loss" in logs:  # this epoch's validation pass, from its last batch on
            val = distributed.from_rank0(time.perf_counter() - self._last_batch)
            self.plan.costs[self._name(state)].val = val

    def _name(self, state: TrainState) -> str:
        return state.stage or self.order[0]

    def _done(self, state: TrainState, batches: int) -> int:
        """The stage's steps done: its complete epochs' and ``batches`` of the current one."""
        return (state.epoch - state.stage_start + 1) * state.steps + batches

    def _replan(self, state: TrainState, done: int, why: str) -> None:
        """Plan the current stage's steps from ``done`` on, from the costs as measured."""
        from imgclf.train import distributed

        name = self._name(state)
        stage, cost = self.stages[name], self.plan.costs[name]
        spent = distributed.from_rank0(time.perf_counter() - state.started)
        left = self.plan.training_seconds - spent
        if name == self.order[-1]:
            total = cost.steps_within(left, done)
        else:  # an earlier stage keeps its steps unless they take over half of what is left
            later = self.order[self.order.index(name) + 1 :]
            left -= sum(self.plan.costs[n].seconds(1) for n in later)  # (at least one step)
            total = min(stage.steps, cost.steps_within(left / 2, done))
        if total == stage.steps:
            return
        self.plan.replans.append({"stage": name, "after_steps": done, "why": why,
                                  "step_seconds": cost.step, "steps": total})  # fmt: skip
        epochs = -(-total // cost.steps)
        state.epochs += epochs - stage.epochs
        state.planned[name] = state.stage_epochs = epochs
        state.planned_steps[name] = stage.steps = total
        stage.train = stage.train.model_copy(update={"epochs": epochs})
        stage.schedule.replan(done, total - done)

    def _cut(self, state: TrainState, batch: int) -> None:
        """Stop training now, and say how far off the plan was: the time training would take
        at the measured speed, against the time it had."""
        name = self._name(state)
        done = self._done(state, batch + 1)
        index = self.order.index(name)
        left = self.plan.costs[name].seconds(self.stages[name].steps, done) + sum(
            self.plan.costs[n].seconds(self.stages[n].steps) for n in self.order[index + 1 :]
        )
        spent = time.perf_counter() - state.started
        wrong = 100 * ((spent + left) / max(self.plan.training_seconds, 1e-9) - 1)
        self.plan.cut = {
            "stage": name, "after_steps": done, "steps_planned": self.stages[name].steps,
            "seconds": spent, "training_seconds": self.plan.training_seconds,
            "wrong_by_percent": wrong,
        }  # fmt: skip
        state.stop_reason = (
            f"budget {format_duration(self.plan.budget)}: the deadline cut training at step "
            f"{done:,} of {self.stages[name].steps:,} ({name}), with {state.epoch} of "
            f"{state.epochs} epochs complete: the plan was wrong by {wrong:.0f} %"
        )
