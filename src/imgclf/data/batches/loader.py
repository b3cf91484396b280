"""Shuffled, seeded, shardable batches straight from a uint8 image array (the decode cache).

No Dataset / DataLoader / worker processes: the images are already decoded, so a batch is one
fancy-index of the array plus batched torch augmentation. A single background thread prepares
the next batch while the training loop computes (torch ops release the GIL).

Order and augmentation depend only on (seed, epoch, batch index), never on the number of
processes, prefetching or thread timing, and ``state_dict`` / ``load_state_dict`` resume an
epoch mid-way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from imgclf.data.batches.augment import BatchAugment, BatchMix
from imgclf.data.batches.sampling import balanced_order
from imgclf.errors import ConfigError, DataError

Batch = tuple[torch.Tensor, torch.Tensor]
IGNORE_LABEL = -100  # a padding row's label: cross-entropy's ignore_index, no accuracy count


def worth_a_thread(
    augment: BatchAugment | None, mix: BatchMix | None, size: tuple[int, int]
) -> bool:
    """Whether batches are worth building in a background thread while the model computes:
    resampling, per-image policies or mixing on images over 64x64. Below that (and for flips
    and shifts at any size) the thread's contention for the cores costs more than the batch
    (BENCHMARKS.md, "The defaults changed for speed": 23.7 against 28.3 s an epoch with zoom
    at 32 px)."""
    dear = mix is not None or (augment is not None and augment.costly)
    return dear and size[0] * size[1] > 64 * 64


def to_float(images: torch.Tensor, rescale: float) -> torch.Tensor:
    """uint8 pixels to float32 times ``rescale`` (Keras's ``rescale``, applied to every split)."""
    return images.to(torch.float32).mul_(rescale)


class BatchLoader:
    """Batches ``(images NCHW, labels)`` from a uint8 (N, H, W, C) array, shuffled per epoch.

    Like ``DistributedSampler``, the order depends on ``(seed, epoch)`` and iterating does not
    advance the epoch: call ``set_epoch`` before each epoch. ``batch_size`` is the global batch:
    with ``world_size > 1`` each global batch is built (gathered, augmented, mixed) exactly as
    one process builds it, and rank ``r`` keeps its rows ``[r::world_size]``. So every image
    gets the same augmentation in any world size, and the ranks' batches together are the one
    process's batch. A last batch that does not split evenly is padded with copies of its first
    row labelled ``IGNORE_LABEL`` (soft labels: all zero), which the loss and the accuracy skip:
    every rank yields the same number of batches of the same size, and no image counts twice.

    Args:
        images: (N, H, W, C) uint8 array, e.g. the read-only memmap of the decode cache.
        labels: (N,) integer class indices.
        indices: rows of ``images`` to use (a split); default all.
        batch_size: images per batch.
        shuffle: reshuffle every epoch; False keeps ``indices`` order.
        balanced: draw each epoch's ``len(indices)`` rows with replacement, every class equally
            likely (``sampling.balanced_order``), instead of a permutation.
        seed: base seed of the order and of the per-batch augmentation generators.
        augment: per-image augmentation on the uint8 batch.
        mix: MixUp / CutMix; labels become soft (N, K) float. Needs ``rescale``.
        rescale: None yields uint8; a float yields float32 pixels times ``rescale``.
        drop_last: drop the last incomplete (global) batch of the epoch.
        rank: this process's rank in ``[0, world_size)``.
        world_size: number of processes sharing the epoch.
        channels_last: output memory format (faster convolutions on CPU).
        prefetch: prepare the next batch in a background thread.
    """

    def __init__(
        self,
        *,
        images: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray | None = None,
        batch_size: int,
        shuffle: bool = True,
        balanced: bool = False,
        seed: int = 0,
        augment: BatchAugment | None = None,
        mix: BatchMix | None = None,
        rescale: float | None = None,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
        prefetch: bool = True,
    ) -> None:
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.balanced = balanced
        self.seed = seed
        self.augment = augment
        self.mix = mix
        self.rescale = rescale
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.channels_last = channels_last
        self.prefetch = prefetch
        self._validate()
        self.indices = self.indices.astype(np.int64)
        self.epoch = 0
        self.batches_done = 0
        self.built_images, self.build_seconds = 0, 0.0  # the data side's own speed

    def _validate(self) -> None:
        self._validate_array()
        n = len(self.images)
        if self.labels.shape != (n,):
            raise DataError(
                f"images and labels differ in length: {n} images but labels of shape "
                f"{self.labels.shape}. Pass one integer label per image."
            )
        if self.indices.ndim != 1 or len(self.indices) == 0:
            raise DataError(
                f"indices select no images (received shape {self.indices.shape}). "
                "Pass at least one row index, or None for all rows."
            )
        if not np.issubdtype(self.indices.dtype, np.integer):
            raise DataError(f"indices must be integers, received dtype {self.indices.dtype}.")
        if self.indices.min() < 0 or self.indices.max() >= n:
            raise DataError(
                f"indices must lie in [0, {n}) for {n} images, received values from "
                f"{self.indices.min()} to {self.indices.max()}."
            )
        self._validate_settings()

    def _validate_array(self) -> None:
        images = self.images
        if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3):
            raise DataError(
                "BatchLoader needs images as a uint8 array (N, H, W, C) with C in {1, 3}, "
                f"received {images.dtype} with shape {images.shape}."
            )

    def _validate_settings(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int | np.integer):
            raise ConfigError(f"batch_size must be an integer >= 1, received {self.batch_size!r}.")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, received {self.batch_size}.")
        if self.world_size < 1:
            raise ConfigError(f"world_size must be >= 1, received {self.world_size}.")
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(
                f"rank must be in [0, {self.world_size}) for world_size={self.world_size}, "
                f"received {self.rank}."
            )
        if self.balanced and not self.shuffle:
            raise ConfigError("a balanced loader draws its own order: it needs shuffle=True.")
        if self.mix is not None and self.rescale is None:
            raise ConfigError(
                "mixup/cutmix blend float pixels: pass rescale (e.g. 1/255) so the loader "
                "yields float images."
            )

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.indices) // self.batch_size
        return math.ceil(len(self.indices) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order to yield; a different epoch starts at its first batch.

        Setting the epoch already held keeps the position, so ``load_state_dict`` followed by the
        training loop's usual ``set_epoch(epoch)`` still resumes mid-epoch.
        """
        if epoch != self.epoch:
            self.epoch = int(epoch)
            self.batches_done = 0

    def state_dict(self) -> dict[str, int]:
        """Epoch and batches already yielded this epoch (enough to resume the same order)."""
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``: the next iteration yields the rest of that epoch."""
        done = int(state["batches_done"])
        if not 0 <= done <= len(self):
            raise DataError(
                f"loader state has batches_done={done}, but an epoch here has {len(self)} "
                "batches. Was the state saved with another batch size, split or world size?"
            )
        self.epoch = int(state["epoch"])
        self.batches_done = done

    def shard(self, epoch: int | None = None) -> np.ndarray:
        """The epoch's order of row indices (default: the current epoch), the same on every
        rank; batch ``b`` is ``shard[b * batch_size : (b + 1) * batch_size]``. A balanced
        loader's order draws rows with replacement, so a row may come twice or not at all."""
        epoch = self.epoch if epoch is None else epoch
        order = self.indices
        if not self.shuffle:
            return order
        rng = np.random.default_rng(_entropy(self.seed, epoch))
        if self.balanced:
            return balanced_order(order, self.labels[order], rng)
        return order[rng.permutation(len(order))]

    def __iter__(self) -> Iterator[Batch]:
        """Yield the remaining batches of the current epoch (all of them after a full pass)."""
        if self.batches_done >= len(self):
            self.batches_done = 0
        shard, start = self.shard(), self.batches_done
        if not self.prefetch:
            for b in range(start, len(self)):
                batch = self._timed_batch(shard, self.epoch, b)
                self.batches_done = b + 1
                yield batch
            return
        yield from self._prefetched(shard, self.epoch, start)

    def _prefetched(self, shard: np.ndarray, epoch: int, start: int) -> Iterator[Batch]:
        """Iterate with the next batch always being built in one background thread."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgclf-loader") as pool:
            pending: Future[Batch] | None = None
            try:
                if start < len(self):
                    pending = pool.submit(self._timed_batch, shard, epoch, start)
                for b in range(start, len(self)):
                    batch = pending.result()
                    nxt = b + 1
                    more = nxt < len(self)
                    pending = pool.submit(self._timed_batch, shard, epoch, nxt) if more else None
                    self.batches_done = nxt
                    yield batch
            finally:
                if pending is not None:
                    pending.cancel()

    def _timed_batch(self, shard: np.ndarray, epoch: int, b: int) -> Batch:
        """``_make_batch``, adding its seconds and images to the loader's own speed."""
        began = time.perf_counter()
        batch = self._make_batch(shard, epoch, b)
        self.build_seconds += time.perf_counter() - began
        self.built_images += len(batch[1])
        return batch

    def _make_batch(self, shard: np.ndarray, epoch: int, b: int) -> Batch:
        """Gather, augment and convert batch ``b`` of ``shard`` (pure function of its inputs),
        then keep this rank's rows of it."""
        rows = shard[b * self.batch_size : (b + 1) * self.batch_size]
        randomised = self.augment is not None or self.mix is not None
        if self.world_size > 1 and not randomised:  # only this rank's rows need reading
            images = self._gather(rows[self.rank :: self.world_size])
        else:
            images = self._gather(rows)
        labels = torch.from_numpy(self.labels[rows])
        generator = torch.Generator().manual_seed(self._batch_seed(epoch, b))
        if self.augment is not None:
            images = self.augment(images, generator)
        if self.rescale is not None:
            images = to_float(images, self.rescale)
        if self.mix is not None:
            images, labels = self.mix(images, labels, generator)
        if self.world_size > 1:
            first = images[:1] if randomised else None
            images, labels = self._rank_rows(images, labels, rows, first)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return images.contiguous(memory_format=fmt), labels

    def _rank_rows(
        self, images: torch.Tensor, labels: torch.Tensor, rows: np.ndarray, first
    ) -> Batch:
        """This rank's rows ``[rank::world_size]`` of a global batch, padded to the ranks'
        common size with copies of the batch's first image, labelled to be ignored.

        ``first`` is that image when ``images`` holds the whole (augmented) batch; None when
        ``images`` holds this rank's rows only."""
        mine = slice(self.rank, None, self.world_size)
        if first is not None:
            images = images[mine]
        labels = labels[mine]
        missing = math.ceil(len(rows) / self.world_size) - len(labels)
        if not missing:
            return images, labels
        if first is None:
            first = self._gather(rows[:1])
            first = to_float(first, self.rescale) if self.rescale is not None else first
        images = torch.cat([images, first.expand(missing, *first.shape[1:])])
        pad = torch.zeros((missing, *labels.shape[1:]), dtype=labels.dtype)
        labels = torch.cat([labels, pad if labels.ndim == 2 else pad.fill_(IGNORE_LABEL)])
        return images, labels

    def _gather(self, rows: np.ndarray) -> torch.Tensor:
        """Read rows in sorted order (memmap locality), restore the shuffled order, HWC -> CHW."""
        order = np.argsort(rows, kind="stable")
        data = np.ascontiguousarray(self.images[rows[order]])
        restore = np.empty_like(order)
        restore[order] = np.arange(len(order))
        return torch.from_numpy(data[restore]).permute(0, 3, 1, 2)

    def _batch_seed(self, epoch: int, b: int) -> int:
        state = np.random.SeedSequence(_entropy(self.seed, epoch, b, 0))  # (0: rank, formerly)
        return int(state.generate_state(1, dtype=np.uint64)[0])


def _entropy(*values: int) -> list[int]:
    """Non-negative entropy words for SeedSequence (seeds may be negative ints)."""
    return [int(v) % 2**64 for v in values]
