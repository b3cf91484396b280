"""The training loop, top to bottom: set up, (resume), then stages of epochs of train + validate.

Each epoch: batches from the decode cache (augmented per image, seeded) or from cached
embeddings, forward, loss, backward, clip, step, schedule; then validation in inference mode;
then the callbacks (best checkpoint, early stopping, time budget, history, progress) and the
resume checkpoint. A stage ends after its epochs or when early stopping ends it; the next stage
starts from the best weights so far. A time limit ends the run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgclf.config import Config, ModelConfig, TrainConfig
from imgclf.data.augment import build_augment, build_batch_mix
from imgclf.data.loader import BatchLoader
from imgclf.data.parallel import available_cores
from imgclf.models.freeze import apply_policy, param_groups
from imgclf.models.inference import loss_and_accuracy, predict_rows
from imgclf.train.callbacks import Callback, TrainState
from imgclf.train.checkpoint import BEST_WEIGHTS, RESUME_STATE, load_weights, save_resume_state
from imgclf.train.embeddings import EmbeddingLoader, Embeddings
from imgclf.train.optim import build_loss, build_optimizer, build_scheduler


@dataclass
class TrainData:
    """The decoded images and which rows train and validate."""

    images: np.ndarray
    labels: np.ndarray
    train: np.ndarray
    val: np.ndarray
    classes: list[str]


@dataclass
class Stage:
    """One phase of a run: which module learns, on which inputs, with which settings.

    A plain run is one stage. A staged fine-tune is two: the head on cached embeddings
    (``module`` is the model's classifier, ``embeddings`` set), then the network on pixels with
    some backbone blocks unfrozen. ``policy`` is the freezing applied when the stage begins.
    """

    name: str
    module: nn.Module
    data: TrainData
    train: TrainConfig
    policy: ModelConfig | None = None
    embeddings: Embeddings | None = None
    sizes: list[int] = field(default_factory=list)  # progressive resizing, before the full size

    @property
    def epochs(self) -> int:
        return self.train.epochs


@dataclass
class StageParts:
    loader: BatchLoader
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: nn.Module


# ---------------------------------------------------------------- set-up


def configure_torch(cfg: Config) -> None:
    """Threads for this machine's cores, and the seed for weight init and dropout."""
    torch.set_num_threads(cfg.train.threads or available_cores())
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)


def build_parts(model: nn.Module, stage: Stage, cfg: Config) -> StageParts:
    data, train = stage.data, stage.train
    if stage.embeddings is not None:
        loader: BatchLoader = EmbeddingLoader(
            embeddings=stage.embeddings,
            labels=data.labels,
            indices=data.train,
            batch_size=train.batch_size,
            seed=cfg.seed,
        )
    else:
        mix = build_batch_mix(cfg.augment, len(data.classes))
        loader = BatchLoader(
            images=data.images,
            labels=data.labels,
            indices=data.train,
            batch_size=train.batch_size,
            seed=cfg.seed,
            augment=build_augment(cfg.augment),
            mix=mix,
            rescale=1.0 if mix else None,  # mixing needs float pixels; the model rescales them
            channels_last=True,
        )
    optimizer = build_optimizer(param_groups(model, stage.policy or cfg.model, train.lr), train)
    scheduler = build_scheduler(optimizer, train, len(loader))
    loss_fn = build_loss(train, data.classes, data.labels[data.train])
    return StageParts(loader, optimizer, scheduler, loss_fn)


# ---------------------------------------------------------------- one epoch


def train_epoch(
    module: nn.Module, parts: StageParts, cfg: Config, on_batch, size: tuple[int, int] | None = None
) -> dict[str, float]:
    """One pass over the training batches (resized to ``size`` if given); mean loss, accuracy."""
    module.train()
    total_loss, correct, seen = 0.0, 0, 0
    for batch, (inputs, targets) in enumerate(parts.loader):
        if size is not None:
            inputs = F.interpolate(inputs.float(), size=size, mode="bilinear", antialias=True)
        logits = module(inputs)
        loss = parts.loss_fn(logits, targets)
        parts.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            nn.utils.clip_grad_norm_(module.parameters(), cfg.train.grad_clip)
        parts.optimizer.step()
        parts.scheduler.step()
        hard = targets.argmax(1) if targets.ndim == 2 else targets
        n = len(hard)
        total_loss += float(loss.detach()) * n
        correct += int((logits.argmax(1) == hard).sum())
        seen += n
        on_batch(batch, {"loss": total_loss / seen, "accuracy": correct / seen})
    return {"loss": total_loss / seen, "accuracy": correct / seen}


def validate(module: nn.Module, data: TrainData, cfg: Config) -> dict[str, float]:
    if len(data.val) == 0:
        return {}
    probs = predict_rows(module, data.images, data.val, cfg.train.eval_batch_size)
    loss, accuracy = loss_and_accuracy(probs, data.labels[data.val])
    return {"val_loss": loss, "val_accuracy": accuracy}


def epoch_size(stage: Stage, index: int) -> tuple[int, int] | None:
    """The training size of the stage's epoch ``index`` (0-based) under progressive resizing:
    its epochs split evenly over ``sizes`` then the full size (None)."""
    if not stage.sizes:
        return None
    steps = [*stage.sizes, None]
    size = steps[min(len(steps) - 1, index * len(steps) // max(1, stage.epochs))]
    if size is None:
        return None
    height, width = stage.data.images.shape[1:3]
    return size, max(1, round(size * width / height))


# ---------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    stages: list[Stage],
    cfg: Config,
    callbacks: list[Callback],
    checkpoint_dir: Path | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainState:
    """Train ``model`` through ``stages`` (until their epochs end or a callback stops it)."""
    configure_torch(cfg)
    state = TrainState(epochs=sum(stage.epochs for stage in stages))
    first, done = 0, 0
    if resume is not None:
        _restore_state(state, resume)
        first, done = resume["stage"], resume["stage_epochs"]
        if resume["stage_finished"]:
            first, done = first + 1, 0
    for callback in callbacks:
        callback.on_train_begin(state)
    for index in range(first, len(stages)):
        stage = stages[index]
        if index > 0 and checkpoint_dir is not None and (checkpoint_dir / BEST_WEIGHTS).is_file():
            load_weights(model, checkpoint_dir / BEST_WEIGHTS)  # start from the best so far
        if stage.policy is not None:
            apply_policy(model, stage.policy)
        parts = build_parts(model, stage, cfg)
        if resume is not None and index == resume["stage"]:
            _restore_parts(stage.module, parts, resume)
        else:
            done = 0
        state.stage_start = state.epoch + 1 - done
        state.stage = stage.name if len(stages) > 1 else None
        for _ in range(done, stage.epochs):
            epoch = state.epoch + 1
            for callback in callbacks:
                callback.on_epoch_begin(epoch, state)
            logs = _run_epoch(stage, parts, cfg, epoch, state, callbacks)
            if state.stage:
                logs["stage"] = state.stage
            state.epoch = epoch
            state.history.append(logs)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs, state)
            stage_epochs = epoch - state.stage_start + 1
            finished = bool(state.end_stage) or stage_epochs == stage.epochs
            if state.end_stage:  # the epochs this stage will not run leave the plan
                state.epochs -= stage.epochs - stage_epochs
            if checkpoint_dir is not None:  # after the callbacks: it holds their best_* updates
                snapshot = _snapshot(stage, index, parts, state, finished)
                save_resume_state(checkpoint_dir / RESUME_STATE, snapshot)
            if state.stop_reason or state.end_stage:
                break
        if state.stop_reason:
            break
        if state.end_stage:
            if index == len(stages) - 1:
                state.stop_reason = state.end_stage
            state.end_stage = None
    for callback in callbacks:
        callback.on_train_end(state)
    return state


def _run_epoch(stage: Stage, parts: StageParts, cfg, epoch, state, callbacks) -> dict[str, Any]:
    started = time.perf_counter()
    parts.loader.set_epoch(epoch - 1)

    def on_batch(batch: int, logs: dict) -> None:
        for callback in callbacks:
            callback.on_batch_end(batch, logs, state)

    size = epoch_size(stage, epoch - state.stage_start)
    logs: dict[str, Any] = {"epoch": epoch}
    logs.update(train_epoch(stage.module, parts, cfg, on_batch, size))
    logs.update(validate(stage.module, stage.data, cfg))
    logs["lr"] = parts.optimizer.param_groups[0]["lr"]
    logs["time"] = time.perf_counter() - started
    if stage.sizes:
        logs["image_size"] = (size or stage.data.images.shape[1:3])[0]
    return logs


# ---------------------------------------------------------------- resume


def _snapshot(stage: Stage, index: int, parts: StageParts, state, finished: bool) -> dict[str, Any]:
    return {
        "stage": index,
        "stage_epochs": state.epoch - state.stage_start + 1,
        "stage_finished": finished,
        "model": {k: v.detach().clone() for k, v in stage.module.state_dict().items()},
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "loader": parts.loader.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "state": state.to_dict(),
        "pid": os.getpid(),
    }


def _restore_state(state: TrainState, saved: dict[str, Any]) -> None:
    previous = saved["state"]
    state.epoch = previous["epoch"]
    state.epochs = previous.get("epochs", state.epochs)
    state.history = list(previous["history"])
    state.best_epoch, state.best_value = previous["best_epoch"], previous["best_value"]
    state.elapsed_before = previous["elapsed"]


def _restore_parts(module: nn.Module, parts: StageParts, saved: dict[str, Any]) -> None:
    module.load_state_dict(saved["model"])
    parts.optimizer.load_state_dict(saved["optimizer"])
    parts.scheduler.load_state_dict(saved["scheduler"])
    parts.loader.load_state_dict(saved["loader"])
    torch.set_rng_state(saved["torch_rng"])
