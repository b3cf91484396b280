"""The training loop, top to bottom: set up, (resume), then stages of epochs of train + validate.

Each epoch: batches from the decode cache (augmented per image, seeded) or from cached
embeddings, forward, loss, backward, clip, step, schedule; then validation in inference mode;
then the callbacks (best checkpoint, early stopping, time limit, history, progress) and the
resume checkpoint. A stage ends after its epochs (a budgeted one after its planned steps: its
last epoch may stop part-way, and is validated like any) or when early stopping ends it; the
next stage starts from the best weights so far. A callback that sets ``state.stop_reason`` ends
the run, after the current batch: an epoch cut short leaves no history row, and its place in the
epoch (batches done, running sums, RNG) goes into the resume checkpoint, so a resumed run
continues the same epoch and ends as an uninterrupted one would.

The set-up (seeding, threads, and each stage's loader, optimizer, schedule and loss) is
``setup.py``'s; this module runs it.

Epochs added on resume (``epochs`` raised) form a new segment of the stage: the schedule of the
epochs planned before runs to its end, then the added epochs get a fresh cycle of the same
schedule (a warm restart, as SGDR, or as calling fastai's ``fit_one_cycle`` again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from imgclf.config import Config
from imgclf.models.freeze import apply_policy
from imgclf.models.inference import loss_and_accuracy, predict_rows
from imgclf.runtime import Runtime
from imgclf.train import distributed
from imgclf.train.callbacks import Callback, TrainState, improved, monitored
from imgclf.train.checkpoint import RESUME_STATE, BestWeights, save_resume_state
from imgclf.train.efficiency import StepMeter, step_flops
from imgclf.train.parts import (
    EpochTally,
    Segment,
    Stage,
    StageParts,
    TrainData,
    epoch_batches,
    sizes_of_epoch,
)
from imgclf.train.resume import (
    carry_over,
    check_closed_stages,
    restore_parts,
    restore_state,
    same_segment,
    segment_after,
    snapshot,
)
from imgclf.train.setup import build_parts, configure_torch, default_runtime

# ---------------------------------------------------------------- one epoch


def train_epoch(
    module: nn.Module,
    parts: StageParts,
    cfg: Config,
    on_batch,
    size_at: Callable[[int], tuple[int, int] | None] = lambda batch: None,
    tally: EpochTally | None = None,
    stop=lambda: False,
    meter: StepMeter | None = None,
    batches: Callable[[], int] | None = None,
) -> EpochTally:
    """The epoch's (remaining) training batches, each resized to ``size_at(batch)`` unless
    None; stops after the batch where ``stop()`` turns true, or after ``batches()`` batches (a
    budgeted stage's last epoch: asked after each batch, as a re-plan may move it). Returns
    the epoch's running sums; ``meter`` adds each step's compute seconds, images and flops."""
    module.train()
    tally = tally or EpochTally()
    runtime = parts.runtime
    for batch_inputs, batch_targets in parts.loader:
        inputs, targets = runtime.move(batch_inputs), runtime.move(batch_targets)
        size = size_at(tally.batches)
        if size is not None:
            inputs = F.interpolate(inputs.float(), size=size, mode="bilinear", antialias=True)
        shape = tuple(inputs.shape[1:])
        if meter is not None and shape not in parts.flops_per_image:  # once per stage and size
            parts.flops_per_image[shape] = step_flops(module, inputs, targets) / len(inputs)
        began = time.perf_counter()
        logits, mean = _step(module, parts, cfg.train.grad_clip, inputs, targets)
        parts.scheduler.step()
        if distributed.active():
            kept = distributed.kept_rows(targets)
            logits, targets = logits[kept], targets[kept]
        hard = targets.argmax(1) if targets.ndim == 2 else targets
        tally.add(float(mean), int((logits.argmax(1) == hard).sum()), len(hard))  # (GPU: waits)
        if meter is not None:
            meter.compute_seconds += time.perf_counter() - began
            meter.images += len(hard)
            meter.flops += parts.flops_per_image[shape] * len(hard)
        on_batch(tally.batches - 1, tally.logs())
        if stop() or (batches is not None and tally.batches >= batches()):
            break
    return tally


def _step(module, parts: StageParts, grad_clip, inputs, targets):
    """One forward, loss and update: (the logits, the global batch's mean loss)."""
    with parts.runtime.autocast():
        logits = module(inputs)
    if distributed.active():  # the global batch's mean, whatever this rank's share
        loss, mean = distributed.global_loss(parts.loss_fn, logits.float(), targets)
    else:
        loss = parts.loss_fn(logits.float(), targets)
        mean = loss.detach()
    optimizer_step(module, parts, loss, grad_clip)
    return logits.detach(), mean


def optimizer_step(
    module: nn.Module, parts: StageParts, loss: torch.Tensor, grad_clip: float | None
) -> None:
    """Backward, clip to ``grad_clip`` (max norm), step: the one update training and lr-find do.

    With a loss scaler (float16 on CUDA) the loss is scaled for backward, the gradients are
    unscaled before clipping, and a step whose gradients overflowed is skipped.
    """
    parts.optimizer.zero_grad(set_to_none=True)
    scaler = parts.scaler
    if scaler is None or not scaler.is_enabled():
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
        parts.optimizer.step()
        return
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(parts.optimizer)
        nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
    scaler.step(parts.optimizer)
    scaler.update()


def validate(
    module: nn.Module, data: TrainData, cfg: Config, runtime: Runtime | None = None
) -> dict[str, float]:
    if len(data.val) == 0:
        return {}
    tta = cfg.train.tta if data.images.ndim == 4 else "none"  # (no mirror of an embedding)
    probs = predict_rows(
        module, data.images, data.val, cfg.train.eval_batch_size, runtime=runtime, tta=tta
    )
    loss, accuracy = loss_and_accuracy(probs, data.labels[data.val])
    return {"val_loss": loss, "val_accuracy": accuracy}


# ---------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    stages: list[Stage],
    cfg: Config,
    callbacks: list[Callback],
    checkpoint_dir: Path | None = None,
    resume: dict[str, Any] | None = None,
    runtime: Runtime | None = None,
    best: BestWeights | None = None,
) -> TrainState:
    """Train ``model`` through ``stages`` (until their epochs end or a callback stops it).

    Args:
        checkpoint_dir: where the resume checkpoint goes after each epoch; None: nowhere.
        resume: a resume checkpoint's state to continue from.
        runtime: the device, precision and threads (default: the CPU at 32 bits).
        best: the best weights so far, which a stage after the first starts from.
    """
    runtime = runtime or default_runtime(cfg)
    configure_torch(cfg, runtime)  # seeded again: the loop draws the same numbers however
    # many the model build drew (so lr-find and training start alike)
    _place(model, runtime)
    state = _new_state(stages, cfg)
    first, done = _resume_point(state, resume, stages)
    for callback in callbacks:
        callback.on_train_begin(state)
    for index in range(first, len(stages)):
        stage = stages[index]
        resumed = resume if resume is not None and index == resume["stage"] else None
        done = done if resumed is not None else 0
        _begin_stage(model, stages, index, state, done, resumed, best)
        for callback in callbacks:
            callback.on_stage_begin(stage.name, state)
        _run_stage(model, stage, index, cfg, callbacks, state, checkpoint_dir, resumed, runtime)
        for callback in callbacks:
            callback.on_stage_end(stage.name, state)
        if _ends_run(state, last=index == len(stages) - 1):
            break
    for callback in callbacks:
        callback.on_train_end(state)
    return state


def _place(model: nn.Module, runtime: Runtime) -> None:
    """``model`` on the runtime's device, its BatchNorm layers synchronised across processes."""
    model.to(runtime.device)
    local = distributed.sync_batchnorm(model, runtime)  # (frozen ones, the fine-tune default)
    if local and runtime.is_main:
        from imgclf.terminal import print_warning

        print_warning(
            f"{len(local)} BatchNorm layers of another kind ({local[0]}, ...) keep per-process "
            "batch statistics on the CPU: this run differs slightly from one process"
        )


def _new_state(stages: list[Stage], cfg: Config) -> TrainState:
    """The state of a run about to start: every stage's planned epochs, the monitored metric."""
    state = TrainState(epochs=sum(stage.epochs for stage in stages))
    state.planned = {stage.name: stage.epochs for stage in stages}
    state.planned_steps = {stage.name: stage.steps for stage in stages if stage.steps is not None}
    state.monitor = monitored(cfg.train.monitor, len(stages[0].data.val) > 0)
    return state


def _resume_point(
    state: TrainState, resume: dict[str, Any] | None, stages: list[Stage]
) -> tuple[int, int]:
    """(the stage to start at, its epochs done): the checkpoint's state restored into
    ``state``; (0, 0) for a new run."""
    if resume is None:
        return 0, 0
    restore_state(state, resume, stages)
    check_closed_stages(stages, resume)
    first, done = resume["stage"], resume["stage_epochs"]
    if resume["stage_finished"] and (resume.get("ended_early") or done >= stages[first].epochs):
        first, done = first + 1, 0  # (a finished stage whose epochs were raised goes on)
    return first, done


def _begin_stage(model, stages, index, state, done, resumed, best) -> None:
    """Stage ``index``'s weights (the best so far, for a new stage after the first), its
    freezing policy, and its place in ``state``."""
    stage = stages[index]
    if index > 0 and resumed is None and best is not None:
        best.load_into(model)  # a new stage starts from the best weights so far
    if stage.policy is not None:
        apply_policy(model, stage.policy)
    state.stage_start = state.epoch + 1 - done
    state.stage = stage.name if len(stages) > 1 else None
    state.stage_epochs = stage.epochs


def _ends_run(state: TrainState, last: bool) -> bool:
    """Whether training ends after this stage: a callback stopped it. A stage ended early
    (``end_stage``) goes on to the next stage, or ends the run as the last one."""
    if state.stop_reason:
        return True
    if state.end_stage:
        if last:
            state.stop_reason = state.end_stage
        state.end_stage = None
    return False


def _run_stage(
    model, stage, index, cfg, callbacks, state, checkpoint_dir, resumed, runtime
) -> None:
    """The stage's epochs, segment by segment, until they end or a callback stops training."""
    done = state.epoch - state.stage_start + 1
    segment = segment_after(stage, resumed, done)
    tally = None
    parts = build_parts(model, stage, cfg, segment, runtime)
    if resumed is not None:
        restore_parts(stage.module, parts, resumed, keep_schedule=same_segment(segment, resumed))
        tally = EpochTally(**resumed["tally"]) if resumed.get("tally") else None
        if tally is not None and runtime.rank > 0 and distributed.active():
            tally.loss, tally.correct, tally.seen = 0.0, 0, 0  # rank 0 holds the sums so far
    state.steps = len(parts.loader)
    trained = distributed.wrap(stage.module, runtime)
    while True:
        while state.epoch - state.stage_start + 1 < _segment_end(stage, segment):
            epoch = state.epoch + 1
            for callback in callbacks:
                callback.on_epoch_begin(epoch, state)
            logs, tally = _run_epoch(stage, trained, parts, cfg, epoch, state, callbacks, tally)
            if logs is None:  # stopped inside the epoch: its place goes into the checkpoint
                state.stopped_in = (epoch, tally.batches, len(parts.loader))
                _save(checkpoint_dir, stage, index, parts, state, segment, False, tally)
                return
            tally = None
            if state.stage:
                logs["stage"] = state.stage
            state.epoch = epoch
            state.history.append(logs)
            if improved(logs.get(state.monitor), state.best_value, state.monitor):
                state.best_value, state.best_epoch = logs[state.monitor], epoch
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs, state)
            distributed.agree(state)
            stage_epochs = epoch - state.stage_start + 1
            finished = bool(state.end_stage) or stage_epochs == stage.epochs
            if state.end_stage:  # the epochs this stage will not run leave the plan
                state.epochs -= stage.epochs - stage_epochs
                state.dropped += stage.epochs - stage_epochs
            # after the callbacks: the checkpoint holds their best_* updates
            _save(checkpoint_dir, stage, index, parts, state, segment, finished)
            if state.stop_reason or state.end_stage:
                return
        done = segment.start + segment.epochs
        if done >= stage.epochs:
            return
        segment = Segment(done, stage.epochs - done)  # epochs added on resume: a new cycle
        parts = carry_over(build_parts(model, stage, cfg, segment, runtime), parts)


def _segment_end(stage: Stage, segment: Segment) -> int:
    """The stage epoch the segment ends at; a budgeted stage's plan may change as it goes (its
    one segment follows it)."""
    if stage.schedule is not None:
        segment.epochs = stage.epochs - segment.start
    return segment.start + segment.epochs


def _save(checkpoint_dir, stage, index, parts, state, segment, finished, tally=None) -> None:
    if checkpoint_dir is not None:
        saved = snapshot(stage, index, parts, state, finished, segment, tally)
        save_resume_state(checkpoint_dir / RESUME_STATE, saved)


def _run_epoch(
    stage: Stage,
    trained: nn.Module,
    parts: StageParts,
    cfg,
    epoch,
    state,
    callbacks,
    tally: EpochTally | None,
) -> tuple[dict[str, Any] | None, EpochTally]:
    """Train and validate one epoch (``trained``: the stage's module, under DDP when several
    processes train it); (None, tally) when a callback stopped it part-way."""
    started = time.perf_counter()
    parts.loader.set_epoch(epoch - 1)

    def on_batch(batch: int, logs: dict) -> None:
        for callback in callbacks:
            callback.on_batch_end(batch, logs, state)

    index, per_epoch = epoch - state.stage_start, len(parts.loader)
    size_at = sizes_of_epoch(stage, index, per_epoch)
    built = parts.loader.built_images, parts.loader.build_seconds
    tally = train_epoch(
        trained,
        parts,
        cfg,
        on_batch,
        size_at,
        tally,
        stop=distributed.stopping(state),
        meter=state.meter,
        batches=lambda: epoch_batches(stage, index, per_epoch),
    )
    state.meter.data_images += parts.loader.built_images - built[0]
    state.meter.data_seconds += parts.loader.build_seconds - built[1]
    if tally.batches < epoch_batches(stage, index, per_epoch):
        tally.seconds += time.perf_counter() - started
        tally.loss, tally.correct, tally.seen = distributed.sum_over_ranks(
            tally.loss, tally.correct, tally.seen
        )  # rank 0 saves the epoch's sums so far, over every rank
        return None, tally
    logs: dict[str, Any] = {"epoch": epoch}
    logs.update(distributed.epoch_logs(tally))
    logs.update(validate(stage.module, stage.data, cfg, parts.runtime))
    logs["lr"] = parts.optimizer.param_groups[0]["lr"]
    logs["time"] = tally.seconds + time.perf_counter() - started
    if stage.sizes:
        logs["image_size"] = (size_at(tally.batches - 1) or stage.data.images.shape[1:3])[0]
    return logs, tally
