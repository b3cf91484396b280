"""The training loop, top to bottom: set up, (resume), then epochs of train + validate.

Each epoch: batches from the decode cache (augmented per image, seeded), forward, loss,
backward, clip, step, schedule; then validation in inference mode; then the callbacks (best
checkpoint, resume checkpoint, early stopping, time budget, history, progress).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imgclf.config import Config
from imgclf.data.augment import build_augment, build_batch_mix
from imgclf.data.loader import BatchLoader
from imgclf.data.parallel import available_cores
from imgclf.models.freeze import param_groups
from imgclf.models.inference import loss_and_accuracy, predict_rows
from imgclf.train.callbacks import Callback, TrainState
from imgclf.train.checkpoint import RESUME_STATE, save_resume_state
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
class _Parts:
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


def _build_parts(model: nn.Module, data: TrainData, cfg: Config) -> _Parts:
    mix = build_batch_mix(cfg.augment, len(data.classes))
    loader = BatchLoader(
        images=data.images,
        labels=data.labels,
        indices=data.train,
        batch_size=cfg.train.batch_size,
        seed=cfg.seed,
        augment=build_augment(cfg.augment),
        mix=mix,
        rescale=1.0 if mix else None,  # mixing needs float pixels; the model rescales them
        channels_last=True,
    )
    optimizer = build_optimizer(param_groups(model, cfg.model, cfg.train.lr), cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train, len(loader))
    loss_fn = build_loss(cfg.train, data.classes, data.labels[data.train])
    return _Parts(loader, optimizer, scheduler, loss_fn)


# ---------------------------------------------------------------- one epoch


def train_epoch(model: nn.Module, parts: _Parts, cfg: Config, on_batch) -> dict[str, float]:
    """One pass over the training batches; returns mean loss and accuracy."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for batch, (images, targets) in enumerate(parts.loader):
        logits = model(images)
        loss = parts.loss_fn(logits, targets)
        parts.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        parts.optimizer.step()
        parts.scheduler.step()
        hard = targets.argmax(1) if targets.ndim == 2 else targets
        n = len(hard)
        total_loss += float(loss.detach()) * n
        correct += int((logits.argmax(1) == hard).sum())
        seen += n
        on_batch(batch, {"loss": total_loss / seen, "accuracy": correct / seen})
    return {"loss": total_loss / seen, "accuracy": correct / seen}


def validate(model: nn.Module, data: TrainData, cfg: Config) -> dict[str, float]:
    if len(data.val) == 0:
        return {}
    probs = predict_rows(model, data.images, data.val, cfg.train.eval_batch_size)
    loss, accuracy = loss_and_accuracy(probs, data.labels[data.val])
    return {"val_loss": loss, "val_accuracy": accuracy}


# ---------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    data: TrainData,
    cfg: Config,
    callbacks: list[Callback],
    checkpoint_dir: Path | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainState:
    """Train ``model`` for ``cfg.train.epochs`` (or until a callback stops it)."""
    configure_torch(cfg)
    parts = _build_parts(model, data, cfg)
    state = TrainState(epochs=cfg.train.epochs)
    if resume is not None:
        _restore(model, parts, state, resume)
    for callback in callbacks:
        callback.on_train_begin(state)
    for epoch in range(state.epoch + 1, cfg.train.epochs + 1):
        for callback in callbacks:
            callback.on_epoch_begin(epoch, state)
        logs = _run_epoch(model, parts, data, cfg, epoch, state, callbacks)
        state.epoch = epoch
        state.history.append(logs)
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs, state)
        if checkpoint_dir is not None:  # after the callbacks: it holds their best_* updates
            save_resume_state(checkpoint_dir / RESUME_STATE, _snapshot(model, parts, state))
        if state.stop_reason:
            break
    for callback in callbacks:
        callback.on_train_end(state)
    return state


def _run_epoch(model, parts, data, cfg, epoch, state, callbacks) -> dict[str, Any]:
    started = time.perf_counter()
    parts.loader.set_epoch(epoch - 1)

    def on_batch(batch: int, logs: dict) -> None:
        for callback in callbacks:
            callback.on_batch_end(batch, logs, state)

    logs: dict[str, Any] = {"epoch": epoch, **train_epoch(model, parts, cfg, on_batch)}
    logs.update(validate(model, data, cfg))
    logs["lr"] = parts.optimizer.param_groups[0]["lr"]
    logs["time"] = time.perf_counter() - started
    return logs


# ---------------------------------------------------------------- resume


def _snapshot(model: nn.Module, parts: _Parts, state: TrainState) -> dict[str, Any]:
    return {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "loader": parts.loader.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "state": state.to_dict(),
        "pid": os.getpid(),
    }


def _restore(model: nn.Module, parts: _Parts, state: TrainState, saved: dict[str, Any]) -> None:
    model.load_state_dict(saved["model"])
    parts.optimizer.load_state_dict(saved["optimizer"])
    parts.scheduler.load_state_dict(saved["scheduler"])
    parts.loader.load_state_dict(saved["loader"])
    torch.set_rng_state(saved["torch_rng"])
    previous = saved["state"]
    state.epoch = previous["epoch"]
    state.history = list(previous["history"])
    state.best_epoch, state.best_value = previous["best_epoch"], previous["best_value"]
    state.elapsed_before = previous["elapsed"]
