"""Embed once, for training: the frozen backbone's features (``models/features``) with the
config's augmentation and cache folder, and the loader the head trains from.

The pass and its cache are ``models.features.embeddings.embed_once``'s (the data audit uses
them too); the data room's parts they take as arguments (the views' batched augmentation, the
default cache folder) are built here, where training may import both rooms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from imgclf.config import AugmentConfig
from imgclf.data.batches.augment import build_augment
from imgclf.data.batches.loader import Batch, BatchLoader
from imgclf.data.pipeline.cache import embeddings_dir
from imgclf.errors import DataError
from imgclf.models.features.embeddings import Embeddings, embed_once
from imgclf.runtime import Runtime


def embed_images(
    model,
    images: np.ndarray,
    *,
    train: np.ndarray,
    batch_size: int = 256,
    views: int = 0,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    images_id: str | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
    runtime: Runtime | None = None,
    backend: str = "auto",
) -> Embeddings:
    """The pooled features of ``images`` (N, H, W, C uint8) under ``model.embed`` (see
    ``embed_once``).

    Args:
        views: augmented views per training image (0: none).
        augment: the augmentation of the views; None or no enabled option means no views.
        cache_dir: the cache folder (else $IMGCLF_CACHE_DIR, else ~/.cache/imgclf).
    """
    transform = build_augment(augment) if augment is not None and views else None
    return embed_once(
        model, images, train=train, folder=embeddings_dir(cache_dir),
        batch_size=batch_size, views=views, augment=augment, transform=transform, seed=seed,
        images_id=images_id, progress=progress, runtime=runtime, backend=backend,
    )  # fmt: skip


class EmbeddingLoader(BatchLoader):
    """Shuffled, seeded, resumable batches of cached features (a head's or a fine-tune's
    training input).

    Order (shuffled, or class-balanced with ``balanced``), sharding and resume are
    BatchLoader's. With augmented views (``embeddings`` with
    views), each epoch draws for every image one of its 1 + K stored versions (the plain one
    or an augmented view). ``features`` instead gives plain rows (N, D) without views, such as
    the frozen part of a backbone's activations (``train.activations``).
    """

    def __init__(
        self,
        *,
        embeddings: Embeddings | None = None,
        features: np.ndarray | None = None,
        labels: np.ndarray,
        indices: np.ndarray,
        batch_size: int,
        balanced: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if (embeddings is None) == (features is None):
            raise ValueError("EmbeddingLoader takes embeddings or features, one of them")
        self.views = embeddings.views if embeddings is not None else None
        super().__init__(
            images=embeddings.clean if embeddings is not None else features,
            labels=labels,
            indices=indices,
            batch_size=batch_size,
            balanced=balanced,
            seed=seed,
            rank=rank,
            world_size=world_size,
            prefetch=False,
        )
        self._position = np.full(len(self.images), -1, dtype=np.int64)
        if embeddings is not None:
            self._position[embeddings.train] = np.arange(len(embeddings.train))

    def _validate_array(self) -> None:
        features = self.images
        if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
            raise DataError(
                f"EmbeddingLoader needs float features (N, D), received {features.dtype} with "
                f"shape {features.shape}."
            )

    def _make_batch(self, shard: np.ndarray, epoch: int, b: int) -> Batch:
        rows = shard[b * self.batch_size : (b + 1) * self.batch_size]
        features = np.array(self.images[rows], dtype=np.float32)
        views = self.views
        if views is not None:
            rng = np.random.default_rng(self._batch_seed(epoch, b))
            pick = rng.integers(0, len(views) + 1, len(rows))
            position = self._position[rows]
            augmented = (pick > 0) & (position >= 0)
            features[augmented] = views[pick[augmented] - 1, position[augmented]]
        batch = torch.from_numpy(features), torch.from_numpy(self.labels[rows])
        if self.world_size > 1:
            batch = self._rank_rows(*batch, rows, batch[0][:1])
        return batch
