"""The loop's set-up: the seeded torch a run starts from, and the parts a stage trains with.

``configure_torch`` applies the runtime (threads) and seeds torch and NumPy; ``build_parts``
gives a stage (or one segment of it) its loader, optimizer, schedule, loss and loss scaler.
Training (``loop.py``), lr-find and the budget's probe all build their parts here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imgclf.config import Config, TrainConfig
from imgclf.data.batches.augment import build_augment, build_batch_mix
from imgclf.data.batches.loader import BatchLoader, worth_a_thread
from imgclf.models.freeze import param_groups
from imgclf.runtime import Runtime
from imgclf.train import distributed
from imgclf.train.embeddings import EmbeddingLoader
from imgclf.train.optim import build_loss, build_optimizer, build_scheduler
from imgclf.train.parts import Segment, Stage, StageParts


def configure_torch(cfg: Config, runtime: Runtime | None = None) -> None:
    """The runtime's threads (default: the CPU's, or ``train.threads``), and the seed for
    weight init, dropout and NumPy's generator."""
    (runtime or default_runtime(cfg)).apply()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)


def default_runtime(cfg: Config) -> Runtime:
    """The runtime of a loop called without one: the CPU at 32 bits, ``train.threads``."""
    return Runtime.create("cpu", "32", cfg.train.threads)


def build_parts(
    model: nn.Module,
    stage: Stage,
    cfg: Config,
    segment: Segment | None = None,
    runtime: Runtime | None = None,
) -> StageParts:
    """Loader, optimizer, schedule (over ``segment``'s epochs, default the stage's), loss and
    (float16 on CUDA) the loss scaler."""
    runtime = runtime or Runtime()
    data, train = stage.data, stage.train
    shard = {"rank": runtime.rank, "world_size": runtime.world_size} if distributed.active() else {}
    if segment is not None:
        train = train.model_copy(update={"epochs": segment.epochs})
    loader = _loader(stage, train, cfg, shard)
    optimizer = build_optimizer(param_groups(model, stage.policy or cfg.model, train.lr), train)
    scheduler = build_scheduler(optimizer, train, len(loader), stage.schedule)
    loss_fn = build_loss(train, data.classes, data.labels[data.train]).to(runtime.device)
    return StageParts(loader, optimizer, scheduler, loss_fn, runtime, runtime.grad_scaler())


def _loader(stage: Stage, train: TrainConfig, cfg: Config, shard: dict[str, int]) -> BatchLoader:
    """The stage's training batches: of cached features, or of pixels (augmented, mixed);
    shuffled, or class-balanced by ``train.sampler``."""
    data = stage.data
    if data.images.ndim == 2:  # cached features: embeddings, or a frozen prefix's activations
        emb = stage.embeddings
        cached = {"embeddings": emb} if emb is not None else {"features": data.images}
        return EmbeddingLoader(
            **cached,
            labels=data.labels,
            indices=data.train,
            batch_size=train.batch_size,
            balanced=train.sampler == "balanced",
            seed=cfg.seed,
            **shard,
        )
    mix = build_batch_mix(cfg.augment, len(data.classes))
    augment = build_augment(cfg.augment)
    return BatchLoader(
        images=data.images,
        labels=data.labels,
        indices=data.train,
        batch_size=train.batch_size,
        balanced=train.sampler == "balanced",
        seed=cfg.seed,
        augment=augment,
        mix=mix,
        rescale=1.0 if mix else None,  # mixing needs float pixels; the model rescales them
        channels_last=True,
        prefetch=worth_a_thread(augment, mix, data.images.shape[1:3]),
        **shard,
    )
