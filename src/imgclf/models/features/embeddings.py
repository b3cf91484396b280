"""Embed once: a frozen backbone runs once per image and its pooled features are cached on disk.

Feature extraction trains only the head, and the frozen backbone computes the same features
every epoch; so they are computed once (batched, inference mode, channels_last) and the head
trains on them in milliseconds per epoch. ``augment_views: K`` adds K augmented views of each
training image, so augmentation still helps; every epoch picks one stored view per image.

The backbone runs on the fastest backend measured for it (``embed_backend.py``: ONNX Runtime or
channels_last torch). The cache file is keyed by the decoded-image cache, the backbone's weights
(their values, not a name), the preprocessing and pooling, the backend's numerics, and for
views the augmentation settings and seed. A finished file appears atomically (temporary name,
then rename), like the image cache.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from imgclf.config import AugmentConfig
from imgclf.data.augment import build_augment
from imgclf.data.cache import resolve_cache_dir
from imgclf.data.loader import Batch, BatchLoader
from imgclf.errors import DataError
from imgclf.fileio import atomic_path
from imgclf.models.inference import eval_mode, inference_batch_size
from imgclf.progressbar import progress_bar
from imgclf.runtime import Runtime
from imgclf.train.embed_backend import NUMERICS, Embedder, make_embedder, planned_backend

_FORMAT = 1


@dataclass
class Embeddings:
    """Pooled features of every row, and augmented views of the training rows."""

    clean: np.ndarray  # (N, D) float32: every image, not augmented
    views: np.ndarray | None  # (K, len(train), D) float32: augmented views of the train rows
    train: np.ndarray  # the rows ``views`` hold, in order
    path: Path
    reused: bool
    seconds: float
    backend: str = "torch"  # what computed them: torch, or onnx (ONNX Runtime)
    note: str | None = None  # why the backend asked for was not used


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
    """The pooled features of ``images`` (N, H, W, C uint8) under ``model.embed``.

    Args:
        model: an ImageModel whose backbone is frozen (its weights define the cache key).
        train: the training rows (the only ones that get augmented views).
        views: augmented views per training image (0: none).
        augment: the augmentation of the views; None or no enabled option means no views.
        images_id: identifies the image array (the image cache's file name); None hashes it.
        cache_dir: the cache folder (else $IMGCLF_CACHE_DIR, else ~/.cache/imgclf).
        runtime: the device and precision the backbone runs at (a mixed precision is part of
            the cache key: its features differ from 32-bit ones).
        backend: auto, torch or onnx (see ``embed_backend``; part of the cache key too).
    """
    started = time.perf_counter()
    runtime = runtime or Runtime()
    batch_size = inference_batch_size(batch_size, *images.shape[1:3])
    transform = build_augment(augment) if augment is not None and views else None
    views = views if transform is not None else 0
    train = np.asarray(train, dtype=np.int64)
    folder = resolve_cache_dir(cache_dir) / "embeddings"
    height, width = images.shape[1:3]
    pixels = (len(images) + views * len(train)) * height * width
    planned = planned_backend(backend, runtime, pixels)
    embedder: list[Embedder] = []  # made on the first cache miss: an export costs seconds

    def embed(batch: torch.Tensor) -> np.ndarray:
        if not embedder:
            embedder.append(make_embedder(model, planned, runtime, batch))
        return embedder[0].run(batch)

    key = _key(model, images, images_id, runtime.precision, NUMERICS[planned])
    rows = np.arange(len(images))
    clean_path = folder / f"{key}.npy"
    fill = lambda out: _embed_into(out, embed, model, images, rows, batch_size, progress)  # noqa: E731
    if planned != "torch" and _existing(clean_path, (len(images),)) is None:
        embed(_first_batch(images, batch_size))  # exports now: a refused graph changes the key
        if embedder[0].backend != planned:
            key = _key(model, images, images_id, runtime.precision, NUMERICS["torch"])
            clean_path = folder / f"{key}.npy"
    clean, reused = _cached(clean_path, (len(images),), fill)
    view_array = None
    if views:
        view_key = _views_key(key, augment, views, seed, train)
        view_array, views_reused = _cached(
            folder / f"{key}-views-{view_key}.npy",
            (views, len(train)),
            lambda out: _embed_views(
                out, embed, model, images, train, batch_size, transform, seed, progress
            ),
        )
        reused = reused and views_reused
    used = embedder[0].backend if embedder else planned
    note = embedder[0].note if embedder else None
    seconds = time.perf_counter() - started
    return Embeddings(clean, view_array, train, clean_path, reused, seconds, used, note)


def _first_batch(images: np.ndarray, batch_size: int) -> torch.Tensor:
    return torch.from_numpy(np.array(images[:batch_size])).permute(0, 3, 1, 2)  # a writable copy


def _cached(path: Path, leading: tuple[int, ...], fill) -> tuple[np.ndarray, bool]:
    """The float32 array at ``path`` whose shape starts with ``leading``, and whether it was
    reused; a missing, unreadable or mis-shaped file (a disk error, a hand edit) is computed
    again through ``fill`` and replaced."""
    array = _existing(path, leading)
    if array is not None:
        return array, True
    _write(path, fill, leading)
    return np.load(path, mmap_mode="r"), False


def _existing(path: Path, leading: tuple[int, ...]) -> np.ndarray | None:
    """The float32 array at ``path`` if its shape starts with ``leading``, else None."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    return array if array.dtype == np.float32 and array.shape[: len(leading)] == leading else None


def _key(
    model, images: np.ndarray, images_id: str | None, precision: str = "32", numerics="torch"
) -> str:
    """Hash of the images' identity, the frozen weights and how pixels become features."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"imgclf-embeddings-{_FORMAT}".encode())
    if precision != "32":  # (32-bit keys stay those of the caches written before precisions)
        digest.update(precision.encode())
    if numerics != "torch":  # (and torch's keys those written before other backends)
        digest.update(numerics.encode())
    digest.update((images_id or _array_digest(images)).encode())
    digest.update(json.dumps(model.spec["preprocess"], sort_keys=True).encode())
    digest.update(repr(model.pooling).encode())
    state = {**model.preprocess.state_dict(), **model.features.state_dict()}
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _array_digest(images: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(str(images.shape).encode())
    digest.update(np.ascontiguousarray(images).data)
    return digest.hexdigest()


def _views_key(key: str, augment: AugmentConfig, views: int, seed: int, train: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(key.encode())
    digest.update(augment.model_dump_json().encode())
    digest.update(f"{views}-{seed}".encode())
    digest.update(train.tobytes())
    return digest.hexdigest()


def _write(path: Path, fill, leading: tuple[int, ...]) -> None:
    """Create ``path`` through ``fill(out)`` on a temporary memmap, then rename it into place."""
    with atomic_path(path) as tmp:
        fill_target = _LazyMemmap(tmp, leading)
        fill(fill_target)
        fill_target.flush()


class _LazyMemmap:
    """A memmap created when the first batch tells the feature width."""

    def __init__(self, path: Path, leading: tuple[int, ...]) -> None:
        self.path, self.leading, self.array = path, leading, None

    def write(self, index, features: np.ndarray) -> None:
        if self.array is None:
            shape = (*self.leading, *features.shape[1:])
            self.array = np.lib.format.open_memmap(
                self.path, mode="w+", dtype=np.float32, shape=shape
            )
        self.array[index] = features

    def flush(self) -> None:
        if self.array is None:
            raise DataError("No images to embed: the data has no rows.")
        self.array.flush()
        del self.array


@torch.inference_mode()
def _features(embed, images, rows, transform=None, generator=None) -> np.ndarray:
    """Augmented on the CPU (seeded), then embedded by the pass's backend."""
    batch = torch.from_numpy(np.ascontiguousarray(images[rows])).permute(0, 3, 1, 2)
    if transform is not None:
        batch = transform(batch, generator)
    return embed(batch)


def _embed_into(out: _LazyMemmap, embed, model, images, rows, batch_size, progress) -> None:
    with eval_mode(model), progress_bar(progress, "embedding images", len(rows)) as advance:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            out.write(slice(start, start + len(chunk)), _features(embed, images, chunk))
            advance(len(chunk))


def _embed_views(out: _LazyMemmap, embed, model, images, train, batch_size, transform, seed,
                 progress) -> None:  # fmt: skip
    views = out.leading[0]
    with (
        eval_mode(model),
        progress_bar(progress, "embedding augmented views", views * len(train)) as advance,
    ):
        for view in range(views):
            for start in range(0, len(train), batch_size):
                chunk = train[start : start + batch_size]
                words = [1 + view, start, seed % 2**63]
                generator = torch.Generator().manual_seed(
                    int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> 1)
                )
                features = _features(embed, images, chunk, transform, generator)
                out.write((view, slice(start, start + len(chunk))), features)
                advance(len(chunk))


class EmbeddingLoader(BatchLoader):
    """Shuffled, seeded, resumable batches of cached features (a head's or a fine-tune's
    training input).

    Order, sharding and resume are BatchLoader's. With augmented views (``embeddings`` with
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
