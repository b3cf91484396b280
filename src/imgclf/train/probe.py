"""The budget's timing probe: what a step, an epoch's validation pass and scoring an image
cost, measured on copies of the model (so training itself is untouched)."""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from imgclf.config import Config
from imgclf.models.freeze import apply_policy
from imgclf.models.inference import predict_rows
from imgclf.runtime import Runtime

PROBE_STEPS = 3  # timed training steps per stage at least (after WARMUP_STEPS untimed ones)
PROBE_SECONDS = 1.0  # ... and at least this long, up to MAX_PROBE_STEPS
MAX_PROBE_STEPS = 20
WARMUP_STEPS = 2
PROBE_VAL_ROWS = 512  # at most this many validation rows are timed


@dataclass
class StageCost:
    """What a stage's training costs, in seconds."""

    step: float  # one training batch
    steps: int  # batches per epoch
    val: float  # one validation pass (after each epoch, the last one's too)
    row: float = 0.0  # scoring one image (the final evaluation's unit)

    @property
    def epoch(self) -> float:
        return self.step * self.steps + self.val

    def seconds(self, total: int, done: int = 0) -> float:
        """Seconds from step ``done`` of the stage to step ``total``: the steps, and a
        validation pass at each epoch end on the way (the last, part-way epoch's included)."""
        ends = -(-total // self.steps) - done // self.steps
        return (total - done) * self.step + max(0, ends) * self.val

    def steps_within(self, seconds: float, done: int = 0) -> int:
        """The most steps the stage can reach from step ``done`` in ``seconds`` (at least one
        more); a last epoch of under a tenth of an epoch is left out (its validation pass would
        cost more than its steps at the schedule's end are worth)."""
        low, high = done + 1, done + 1 + max(0, int(seconds / max(self.step, 1e-9)))
        while low < high:  # seconds() grows with total: the last total that fits
            middle = (low + high + 1) // 2
            if self.seconds(middle, done) <= seconds:
                low = middle
            else:
                high = middle - 1
        tail = low % self.steps
        if tail < self.steps / 10 and low - tail > max(done, 0):
            low -= tail
        return low


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
    from imgclf.train.parts import epoch_size

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
