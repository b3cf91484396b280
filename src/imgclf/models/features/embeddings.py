"""Embed once: a frozen backbone runs once per image and its pooled features are cached on disk.

Feature extraction trains only the head, and the frozen backbone computes the same features
every epoch; so they are computed once (batched, inference mode, channels_last) and the head
trains on them in milliseconds per epoch. ``augment_views: K`` adds K augmented views of each
training image, so augmentation still helps; every epoch picks one stored view per image.

The backbone runs on the fastest backend measured for it (``backend.py``: ONNX Runtime or
channels_last torch). The cache file is keyed by the decoded-image cache, the backbone's weights
(their values, not a name), the preprocessing and pooling, the backend's numerics, and for
views the augmentation settings and seed. A finished file appears atomically (temporary name,
then rename), like the image cache.

The pass and its cache serve training's head stage and the data audit alike, so they live in
models and take what comes from the data room as arguments: the cache folder, and the views'
transform. Training's wrapper (``train/embeddings.py``) builds both from the config, and holds
the loader that draws a stored view per image per epoch.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imgclf.config import AugmentConfig
from imgclf.errors import DataError
from imgclf.fileio import atomic_path
from imgclf.identity import image_set_digest
from imgclf.models.features.backend import (
    NUMERICS,
    Backbone,
    Embedder,
    make_embedder,
    planned_backend,
)
from imgclf.models.heads import GLOBAL_POOLINGS, global_pooling
from imgclf.models.inference import eval_mode, inference_batch_size
from imgclf.models.unknown import model_stages
from imgclf.progressbar import progress_bar
from imgclf.runtime import Runtime

_FORMAT = 2  # 2: the pass keeps the other global pooling and the stages' means beside
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]  # uint8 batch, seeded


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
    # every row's spatial mean at each stage the unknown score taps (``models.unknown``), from
    # the same pass; None when a stage file is damaged (the score then makes its own pass)
    stages: list[np.ndarray] | None = None
    stage_names: list[str] = field(default_factory=list)


def embed_once(
    model,
    images: np.ndarray,
    *,
    train: np.ndarray,
    folder: Path,
    batch_size: int = 256,
    views: int = 0,
    augment: AugmentConfig | None = None,
    transform: Transform | None = None,
    seed: int = 0,
    images_id: str | None = None,
    progress: bool = False,
    runtime: Runtime | None = None,
    backend: str = "auto",
) -> Embeddings:
    """The pooled features of ``images`` (N, H, W, C uint8) under ``model.embed``, cached in
    ``folder``. The same pass keeps the features of the other global pooling (avg or max) and
    the stages' means, so a sweep over the pooling and the run's unknown score reuse it.

    Args:
        model: an ImageModel whose backbone is frozen (its weights define the cache key).
        train: the training rows (the only ones that get augmented views).
        views: augmented views per training image (0: none; none without ``transform``).
        augment, transform: the views' augmentation settings (part of the views' cache key)
            and the batched transform built from them (``data.batches.augment.build_augment``).
        images_id: identifies the image array (the image cache's file name); None hashes it.
        runtime: the device and precision the backbone runs at (a mixed precision is part of
            the cache key: its features differ from 32-bit ones).
        backend: auto, torch or onnx (see ``backend.py``; part of the cache key too).
    """
    started = time.perf_counter()
    runtime = runtime or Runtime()
    batch_size = inference_batch_size(batch_size, *images.shape[1:3])
    views = _views_made(views, augment, transform)
    train = np.asarray(train, dtype=np.int64)
    folder = Path(folder)
    poolings, stage_names = _poolings(model), model_stages(model, images)
    backbone = Backbone(model, poolings, stage_names)
    embed = _LazyEmbedder(backbone, _planned(backend, runtime, images, views, train), runtime)
    keys = _clean_keys(embed, model, images, images_id, folder, batch_size)
    rows = np.arange(len(images))
    pooled = [folder / f"{key}.npy" for key in keys]
    stage_key = _stage_key(model, images, images_id, embed, stage_names)
    stage_paths = [folder / f"{stage_key}-stage{i}.npy" for i in range(len(stage_names))]
    fill = lambda outs: _embed_into(outs, embed, model, images, rows, batch_size, progress)  # noqa: E731
    clean, reused = _cached([*pooled, *stage_paths], (len(images),), fill)
    stages = [_existing(path, (len(images),)) for path in stage_paths]
    view_array = None
    if views:
        view_paths = [
            folder / f"{key}-views-{_views_key(key, augment, views, seed, train)}.npy"
            for key in keys
        ]
        view_array, views_reused = _cached(
            view_paths,
            (views, len(train)),
            lambda outs: _embed_views(
                outs, embed, model, images, train, batch_size, transform, seed, progress
            ),
        )
        reused = reused and views_reused
    seconds = time.perf_counter() - started
    kept = stages if all(stage is not None for stage in stages) else None
    return Embeddings(clean, view_array, train, pooled[0], reused, seconds, *embed.used(),
                      kept, stage_names)  # fmt: skip


def _poolings(model) -> list[nn.Module]:
    """The model's pooling, then the other global pooling when it pools globally (the same
    pass gives both for the price of one)."""
    own = repr(model.pooling)
    for kind in GLOBAL_POOLINGS:
        if own == repr(nn.Sequential(*global_pooling(kind))):
            other = next(other for other in GLOBAL_POOLINGS if other != kind)
            return [model.pooling, nn.Sequential(*global_pooling(other))]
    return [model.pooling]


def _views_made(views: int, augment: AugmentConfig | None, transform: Transform | None) -> int:
    """The augmented views per training image the pass makes: none without a transform."""
    if transform is not None and augment is None:
        raise ValueError("augmented views need the augment settings of their transform")
    return views if transform is not None else 0


def _planned(
    backend: str, runtime: Runtime, images: np.ndarray, views: int, train: np.ndarray
) -> str:
    """The backend ``backend`` means for this pass's pixels (clean images and views)."""
    height, width = images.shape[1:3]
    pixels = (len(images) + views * len(train)) * height * width
    return planned_backend(backend, runtime, pixels)


class _LazyEmbedder:
    """The pass's backend, made on the first batch it embeds (a cache miss): an export costs
    seconds, and a reused cache needs none."""

    def __init__(self, backbone: Backbone, planned: str, runtime: Runtime) -> None:
        self.backbone, self.planned, self.runtime = backbone, planned, runtime
        self.made: Embedder | None = None

    def __call__(self, batch: torch.Tensor) -> list[np.ndarray]:
        if self.made is None:
            self.made = make_embedder(self.backbone, self.planned, self.runtime, batch)
        return self.made.run(batch)

    def used(self) -> tuple[str, str | None]:
        """(the backend that computed the features, why it is not the one asked for)."""
        if self.made is None:
            return self.planned, None
        return self.made.backend, self.made.note


def _clean_keys(
    embed: _LazyEmbedder,
    model,
    images: np.ndarray,
    images_id: str | None,
    folder: Path,
    batch_size: int,
) -> list[str]:
    """The clean features' cache key of each pooling: for the planned backend's numerics,
    unless that backend is not cached yet and refuses the graph when exported (now), then
    torch's."""
    precision = embed.runtime.precision

    def keys(numerics: str) -> list[str]:
        return [features_key(model, images, images_id, precision, numerics, pooling=pooling)
                for pooling in embed.backbone.poolings]  # fmt: skip

    planned = keys(NUMERICS[embed.planned])
    if embed.planned != "torch" and _existing(folder / f"{planned[0]}.npy", (len(images),)) is None:
        embed(_first_batch(images, batch_size))  # exports now: a refused graph changes the key
        if embed.used()[0] != embed.planned:
            return keys(NUMERICS["torch"])
    return planned


def _stage_key(model, images, images_id, embed: _LazyEmbedder, stages: list[str]) -> str:
    """The stages' means' key: the backbone's own (before any pooling), the numerics the
    pass computes them with, and the stages."""
    precision, numerics = embed.runtime.precision, NUMERICS[embed.used()[0]]
    digest = hashlib.blake2b(digest_size=12)
    digest.update(features_key(model, images, images_id, precision, numerics, False).encode())
    digest.update(("stages:" + "|".join(stages)).encode())
    return digest.hexdigest()


def _first_batch(images: np.ndarray, batch_size: int) -> torch.Tensor:
    return torch.from_numpy(np.array(images[:batch_size])).permute(0, 3, 1, 2)  # a writable copy


def _cached(paths: list[Path], leading: tuple[int, ...], fill) -> tuple[np.ndarray, bool]:
    """The float32 array at ``paths[0]`` whose shape starts with ``leading``, and whether it
    was reused; when it is missing, unreadable or mis-shaped (a disk error, a hand edit), one
    ``fill`` computes it again with every other missing one of ``paths``."""
    array = _existing(paths[0], leading)
    if array is not None:
        return array, True
    missing = [i for i, path in enumerate(paths) if i == 0 or _existing(path, leading) is None]
    with ExitStack() as stack:
        temporary = {i: stack.enter_context(atomic_path(paths[i])) for i in missing}
        outs = [_LazyMemmap(temporary[i], leading) if i in temporary else None
                for i in range(len(paths))]  # fmt: skip
        fill(outs)
        for out in outs:
            if out is not None:
                out.flush()
    return np.load(paths[0], mmap_mode="r"), False


def _existing(path: Path, leading: tuple[int, ...]) -> np.ndarray | None:
    """The float32 array at ``path`` if its shape starts with ``leading``, else None."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    return array if array.dtype == np.float32 and array.shape[: len(leading)] == leading else None


def features_key(
    model,
    images: np.ndarray,
    images_id: str | None,
    precision: str = "32",
    numerics="torch",
    pooled: bool = True,
    pooling: nn.Module | None = None,
) -> str:
    """Hash of the images' identity, the frozen weights and how pixels become features (with
    ``pooled`` False, the backbone's own: its stages come before the pooling; ``pooling``:
    another than the model's own)."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"imgclf-embeddings-{_FORMAT}".encode())
    if precision != "32":  # (32-bit keys stay those of the caches written before precisions)
        digest.update(precision.encode())
    if numerics != "torch":  # (and torch's keys those written before other backends)
        digest.update(numerics.encode())
    digest.update((images_id or _array_digest(images)).encode())
    digest.update(json.dumps(model.spec["preprocess"], sort_keys=True).encode())
    if pooled:
        digest.update(repr(model.pooling if pooling is None else pooling).encode())
    state = {**model.preprocess.state_dict(), **model.features.state_dict()}
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _array_digest(images: np.ndarray) -> str:
    return image_set_digest(images=images, digest_size=12).hexdigest()


def _views_key(key: str, augment: AugmentConfig, views: int, seed: int, train: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(key.encode())
    digest.update(augment.model_dump_json().encode())
    digest.update(f"{views}-{seed}".encode())
    digest.update(train.tobytes())
    return digest.hexdigest()


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
def _features(embed, images, rows, transform=None, generator=None) -> list[np.ndarray]:
    """Augmented on the CPU (seeded), then embedded by the pass's backend."""
    batch = torch.from_numpy(np.ascontiguousarray(images[rows])).permute(0, 3, 1, 2)
    if transform is not None:
        batch = transform(batch, generator)
    return embed(batch)


def _write(outs: list, index, outputs: list[np.ndarray]) -> None:
    for out, output in zip(outs, outputs, strict=False):  # (views keep no stages)
        if out is not None:
            out.write(index, output)


def _embed_into(outs: list, embed, model, images, rows, batch_size, progress) -> None:
    with eval_mode(model), progress_bar(progress, "embedding images", len(rows)) as advance:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            _write(outs, slice(start, start + len(chunk)), _features(embed, images, chunk))
            advance(len(chunk))


def _embed_views(outs: list, embed, model, images, train, batch_size, transform, seed,
                 progress) -> None:  # fmt: skip
    views = outs[0].leading[0]  # (the model's own pooling: always computed)
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
                _write(outs, (view, slice(start, start + len(chunk))), features)
                advance(len(chunk))
