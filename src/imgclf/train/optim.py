"""Optimizers, learning-rate schedules and the loss, from TrainConfig."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from imgclf.config import TrainConfig
from imgclf.errors import ConfigError

# The torch optimizer of each name in the schema's Optimizer (a test holds the names equal), and
# the settings it takes beside lr and weight_decay.
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], tuple[str, ...]]] = {
    "adam": (torch.optim.Adam, ()),
    "adamw": (torch.optim.AdamW, ()),
    "sgd": (torch.optim.SGD, ("momentum", "nesterov")),
    "rmsprop": (torch.optim.RMSprop, ("momentum",)),
}
# torch's fused kernels (one call updates every tensor; on the CPU since torch 2.4): a step of
# Adam over an MLP's 8 tensors took 0.39 ms one tensor at a time and 0.15 ms fused, over
# Lite0's 50 tensors 4.2 and 1.3 ms (BENCHMARKS.md, "The defaults changed for speed").
FUSED = {"adam", "adamw", "sgd"}


def build_optimizer(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The config's optimizer over parameter groups with their lr (SGD: nesterov only with
    momentum, which torch requires)."""
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ConfigError("Nothing to train: every parameter is frozen. Unfreeze some layers.")
    optimizer, takes = OPTIMIZERS[cfg.optimizer]
    extra = {"momentum": cfg.momentum, "nesterov": cfg.nesterov and cfg.momentum > 0}
    chosen = {name: extra[name] for name in takes}
    if cfg.optimizer in FUSED and _fusable([p for g in groups for p in g["params"]]):
        chosen["fused"] = True
    return optimizer(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, **chosen)


def _fusable(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused kernel takes these parameters: floating point, on one device of a
    kind this torch has the kernels for (its own list, which gained the CPU in 2.4)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:  # a torch that moved it: step one tensor at a time, as before
        return False
    devices = {p.device.type for p in params}
    return (
        len(devices) == 1
        and devices <= set(_get_fused_kernels_supported_devices())
        and all(torch.is_floating_point(p) for p in params)
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int, budgeted=None
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule: constant, cosine or one-cycle, after a linear warmup; over the
    stage's progress instead of its steps when ``budgeted`` (a BudgetSchedule) is given."""
    if budgeted is not None:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, budgeted)
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, round(cfg.warmup_epochs * steps_per_epoch))
    if cfg.schedule == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        start = max(warmup / total, 0.3) if warmup else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=total, pct_start=start
        )

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_loss(cfg: TrainConfig, classes: list[str], train_labels: np.ndarray) -> nn.Module:
    """Cross-entropy with label smoothing and class weights (balanced or per class name)."""
    weights = class_weights(cfg.class_weight, classes, train_labels)
    weight = torch.tensor(weights, dtype=torch.float32) if weights is not None else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)


def class_weights(
    spec: str | dict[str, float] | None, classes: list[str], labels: np.ndarray
) -> list[float] | None:
    """None, scikit-learn's 'balanced' weights, or a {class name: weight} map (others 1.0)."""
    if spec is None:
        return None
    if spec == "balanced":
        from sklearn.utils.class_weight import compute_class_weight

        present = np.unique(labels)
        computed = compute_class_weight("balanced", classes=present, y=labels)
        weights = np.ones(len(classes))
        weights[present] = computed
        return [float(w) for w in weights]
    unknown = sorted(set(spec) - set(classes))
    if unknown:
        raise ConfigError(
            f"class_weight names classes that do not exist: {', '.join(unknown)}. "
            f"Classes: {', '.join(classes)}."
        )
    return [float(spec.get(name, 1.0)) for name in classes]
