"""What a training run is made of: the data, its stages, each stage's parts, an epoch's running
sums and a schedule's segment (plain dataclasses the loop, stages, resume and lr-find share)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from imgclf.config import ModelConfig, TrainConfig
from imgclf.data.batches.loader import BatchLoader
from imgclf.models.features.embeddings import Embeddings
from imgclf.runtime import Runtime


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
    schedule: Any = None  # a budgeted run's BudgetSchedule (lr over the stage's progress)
    steps: int | None = None  # a budgeted stage's training steps: its last epoch may stop early

    @property
    def epochs(self) -> int:
        return self.train.epochs


@dataclass
class StageParts:
    """What a stage trains with: batches, the update rule, the loss, and where it computes."""

    loader: BatchLoader
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: nn.Module
    runtime: Runtime = field(default_factory=Runtime)
    scaler: torch.amp.GradScaler | None = None  # float16 on CUDA: the loss scaler
    # a training step's flops per image, by input shape (counted once per stage and size)
    flops_per_image: dict[tuple[int, ...], float] = field(default_factory=dict)


@dataclass
class EpochTally:
    """The running sums of an epoch's training batches (saved when an epoch is cut short)."""

    loss: float = 0.0  # summed over images
    correct: int = 0
    seen: int = 0
    batches: int = 0
    seconds: float = 0.0  # spent in this epoch before a resume

    def add(self, loss: float, correct: int, n: int) -> None:
        self.loss, self.correct, self.seen = (
            self.loss + loss * n,
            self.correct + correct,
            self.seen + n,
        )
        self.batches += 1

    def logs(self) -> dict[str, float]:
        return {"loss": self.loss / self.seen, "accuracy": self.correct / self.seen}


@dataclass
class Segment:
    """The epochs of a stage that one schedule spans: the plan, or epochs added on resume."""

    start: int  # epochs of the stage done before it
    epochs: int


# ---------------------------------------------------------------- a stage's epochs


def epoch_size(stage: Stage, index: int) -> tuple[int, int] | None:
    """The training size of the stage's epoch ``index`` (0-based) under progressive resizing:
    its epochs split evenly over ``sizes`` then the full size (None)."""
    if not stage.sizes:
        return None
    return _nth_size(stage, index * (len(stage.sizes) + 1) // max(1, stage.epochs))


def sizes_of_epoch(stage: Stage, index: int, per_epoch: int) -> Callable[[int], Any]:
    """The training size of each batch of the stage's epoch ``index``: each size trains an equal
    share of the stage's steps (whole epochs where they divide evenly, as in ``epoch_size``),
    or, in a budgeted stage, of its schedule's progress; so that a stage of one epoch, or a
    plan of part of one, still goes through every size."""
    if not stage.sizes:
        return lambda batch: None
    shares = len(stage.sizes) + 1
    if stage.schedule is None:
        total = max(1, stage.epochs * per_epoch)
        return lambda batch: _nth_size(stage, (index * per_epoch + batch) * shares // total)
    return lambda batch: _nth_size(
        stage, int(stage.schedule.progress(index * per_epoch + batch) * shares)
    )


def _nth_size(stage: Stage, nth: int) -> tuple[int, int] | None:
    """Size ``nth`` of the stage's progressive sizes then its full size (None)."""
    size = [*stage.sizes, None][min(len(stage.sizes), nth)]
    if size is None:
        return None
    height, width = stage.data.images.shape[1:3]
    return size, max(1, round(size * width / height))


def epoch_batches(stage: Stage, index: int, per_epoch: int) -> int:
    """The training batches of the stage's epoch ``index``: all, except the last epoch of a
    budgeted stage, which stops at its planned steps."""
    if stage.steps is None:
        return per_epoch
    return max(0, min(per_epoch, stage.steps - index * per_epoch))
