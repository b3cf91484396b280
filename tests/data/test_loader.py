"""BatchLoader: order, coverage, sharding, resume, output formats and argument errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.config import AugmentConfig
from imgclf.data.batches.augment import build_augment, build_batch_mix
from imgclf.data.batches.loader import IGNORE_LABEL, BatchLoader, to_float
from imgclf.errors import ConfigError, DataError

N, H, W = 23, 6, 5


@pytest.fixture
def images() -> np.ndarray:
    """23 RGB 6x5 images; pixel (0, 0, 0) of image i is i, so a batch says which rows it holds."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)
    data[:, 0, 0, 0] = np.arange(N)
    return data


@pytest.fixture
def labels() -> np.ndarray:
    return np.arange(N, dtype=np.int64) % 3


def make(images: np.ndarray, labels: np.ndarray, **kwargs: object) -> BatchLoader:
    kwargs.setdefault("batch_size", 4)
    return BatchLoader(images=images, labels=labels, **kwargs)


def rows_of(batch_images: torch.Tensor) -> list[int]:
    return batch_images[:, 0, 0, 0].tolist()


def epoch_rows(loader: BatchLoader) -> list[int]:
    return [row for images, _ in loader for row in rows_of(images)]


def test_every_index_once_per_epoch(images: np.ndarray, labels: np.ndarray) -> None:
    loader = make(images, labels)
    rows = epoch_rows(loader)
    assert sorted(rows) == list(range(N))
    assert rows != list(range(N))
    assert len(loader) == 6


def test_labels_follow_their_images(images: np.ndarray, labels: np.ndarray) -> None:
    for batch_images, batch_labels in make(images, labels, seed=3):
        assert batch_labels.dtype == torch.int64
        assert batch_labels.tolist() == [labels[r] for r in rows_of(batch_images)]


def test_images_are_nchw_copies_of_the_array(images: np.ndarray, labels: np.ndarray) -> None:
    batch_images, _ = next(iter(make(images, labels, shuffle=False)))
    assert batch_images.dtype == torch.uint8 and batch_images.shape == (4, 3, H, W)
    assert batch_images.is_contiguous()
    assert np.array_equal(batch_images.permute(0, 2, 3, 1).numpy(), images[:4])


def test_order_depends_on_seed_and_epoch_not_on_iteration(
    images: np.ndarray, labels: np.ndarray
) -> None:
    loader = make(images, labels, seed=1)
    first = epoch_rows(loader)
    assert epoch_rows(loader) == first  # iterating again does not advance the epoch
    loader.set_epoch(1)
    assert epoch_rows(loader) != first
    assert epoch_rows(make(images, labels, seed=2)) != first
    assert epoch_rows(make(images, labels, seed=1)) == first


def test_no_shuffle_keeps_indices_order(images: np.ndarray, labels: np.ndarray) -> None:
    indices = np.array([9, 2, 17, 4, 11])
    assert epoch_rows(make(images, labels, indices=indices, shuffle=False)) == indices.tolist()


def test_indices_select_a_split(images: np.ndarray, labels: np.ndarray) -> None:
    indices = np.arange(0, N, 2)
    loader = make(images, labels, indices=indices, batch_size=5)
    assert sorted(epoch_rows(loader)) == indices.tolist()
    assert len(loader) == 3


def test_drop_last(images: np.ndarray, labels: np.ndarray) -> None:
    loader = make(images, labels, drop_last=True)
    sizes = [len(b[1]) for b in loader]
    assert len(loader) == 5 and sizes == [4] * 5


@pytest.mark.parametrize("augmented", [False, True])
def test_ranks_split_each_global_batch_as_one_process_builds_it(
    images: np.ndarray, labels: np.ndarray, augmented: bool
) -> None:
    """The union of the ranks' batches is the one process's batch, augmentation included;
    a last batch of 3 rows over 2 ranks pads rank 1 with an ignored copy."""
    settings = {"seed": 5, "batch_size": 4}
    if augmented:
        augment = AugmentConfig(horizontal_flip=True, brightness_range=(0.7, 1.3))
        settings["augment"] = build_augment(augment)
    single = make(images, labels, **settings)
    shards = [make(images, labels, rank=r, world_size=2, **settings) for r in (0, 1)]
    for loader in (single, *shards):
        loader.set_epoch(2)
    assert len(single) == len(shards[0]) == len(shards[1]) == 6  # ceil(23 / 4) global batches
    for whole, first, second in zip(single, *shards, strict=True):
        assert len(first[0]) == len(second[0])  # the ranks' batches have one size
        kept = second[1] != IGNORE_LABEL
        assert torch.equal(first[0], whole[0][0::2]) and torch.equal(first[1], whole[1][0::2])
        assert torch.equal(second[0][kept], whole[0][1::2])
        assert torch.equal(second[1][kept], whole[1][1::2])
    assert kept.tolist() == [True, False]  # 23 = 5 x 4 + 3: rank 1 has 1 row and 1 pad


def test_mixed_soft_labels_pad_with_zero_rows(images: np.ndarray, labels: np.ndarray) -> None:
    mix = build_batch_mix(AugmentConfig(mixup=0.4), 3)
    shards = [make(images, labels, rank=r, world_size=2, mix=mix, rescale=1 / 255)
              for r in (0, 1)]  # fmt: skip
    *_, (last_images, last_labels) = list(shards[1])
    assert last_labels.shape == (2, 3) and last_labels[1].sum() == 0
    assert last_images.dtype == torch.float32


def test_resume_mid_epoch_yields_the_same_remaining_batches(
    images: np.ndarray, labels: np.ndarray
) -> None:
    augment = build_augment(AugmentConfig(rotation_range=30, horizontal_flip=True))
    loader = make(images, labels, seed=4, augment=augment)
    loader.set_epoch(3)
    full = [(x.clone(), y.clone()) for x, y in loader]

    interrupted = make(images, labels, seed=4, augment=augment)
    interrupted.set_epoch(3)
    for i, _ in enumerate(interrupted):
        if i == 1:
            break
    state = interrupted.state_dict()
    assert state == {"epoch": 3, "batches_done": 2}

    resumed = make(images, labels, seed=4, augment=augment)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # the training loop's usual call keeps the position
    rest = list(resumed)
    assert len(rest) == len(full) - 2
    for (x, y), (fx, fy) in zip(rest, full[2:], strict=True):
        assert torch.equal(x, fx) and torch.equal(y, fy)
    assert resumed.state_dict() == {"epoch": 3, "batches_done": 6}
    assert len(list(resumed)) == 6  # after a full pass, iterating again starts the epoch over


def test_load_state_dict_rejects_impossible_position(
    images: np.ndarray, labels: np.ndarray
) -> None:
    with pytest.raises(DataError, match="batches_done=99"):
        make(images, labels).load_state_dict({"epoch": 0, "batches_done": 99})


@pytest.mark.parametrize("prefetch", [True, False])
def test_augmented_batches_do_not_depend_on_prefetch(
    images: np.ndarray, labels: np.ndarray, prefetch: bool
) -> None:
    augment = build_augment(AugmentConfig(zoom_range=0.2, trivialaugment=True))
    reference = [x for x, _ in make(images, labels, augment=augment, prefetch=False)]
    got = [x for x, _ in make(images, labels, augment=augment, prefetch=prefetch)]
    assert all(torch.equal(a, b) for a, b in zip(got, reference, strict=True))
    other = [x for x, _ in make(images, labels, augment=augment, seed=1, prefetch=prefetch)]
    assert not any(torch.equal(a, b) for a, b in zip(other, reference, strict=True))


def test_rescale_gives_float_and_channels_last(images: np.ndarray, labels: np.ndarray) -> None:
    loader = make(images, labels, shuffle=False, rescale=1 / 255, channels_last=True)
    batch_images, _ = next(iter(loader))
    assert batch_images.dtype == torch.float32
    assert batch_images.is_contiguous(memory_format=torch.channels_last)
    expected = images[:4].transpose(0, 3, 1, 2).astype(np.float32) / 255
    assert np.allclose(batch_images.numpy(), expected)
    assert 0.0 <= batch_images.min() and batch_images.max() <= 1.0


def test_to_float() -> None:
    out = to_float(torch.tensor([0, 51, 255], dtype=torch.uint8), 1 / 255)
    assert out.dtype == torch.float32
    assert out.tolist() == pytest.approx([0.0, 0.2, 1.0])


def test_mix_gives_soft_labels(images: np.ndarray, labels: np.ndarray) -> None:
    mix = build_batch_mix(AugmentConfig(mixup=0.4, cutmix=1.0), num_classes=3)
    loader = make(images, labels, mix=mix, rescale=1 / 255)
    for batch_images, soft in loader:
        assert batch_images.dtype == torch.float32
        assert soft.shape == (len(batch_images), 3)
        assert torch.allclose(soft.sum(dim=1), torch.ones(len(soft)))


def test_reads_a_read_only_memmap(tmp_path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    path = tmp_path / "images.u8"
    writable = np.memmap(path, dtype=np.uint8, mode="w+", shape=images.shape)
    writable[:] = images
    writable.flush()
    mapped = np.memmap(path, dtype=np.uint8, mode="r", shape=images.shape)
    assert sorted(epoch_rows(make(mapped, labels))) == list(range(N))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": np.zeros(5, dtype=np.int64)}, DataError, "23 images but labels"),
        ({"indices": np.array([], dtype=np.int64)}, DataError, "select no images"),
        ({"indices": np.array([0, 23])}, DataError, r"\[0, 23\)"),
        ({"batch_size": 0}, ConfigError, "batch_size must be >= 1, received 0"),
        ({"rank": 2, "world_size": 2}, ConfigError, r"rank must be in \[0, 2\).*received 2"),
        ({"rank": -1}, ConfigError, "rank must be in"),
        ({"world_size": 0}, ConfigError, "world_size must be >= 1"),
        (
            {"mix": build_batch_mix(AugmentConfig(mixup=0.2), num_classes=3)},
            ConfigError,
            "pass rescale",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(
    images: np.ndarray,
    labels: np.ndarray,
    kwargs: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    kwargs = {"labels": labels, "batch_size": 4, **kwargs}
    with pytest.raises(error, match=match):
        BatchLoader(images=images, **kwargs)


def test_rejects_non_uint8_images(labels: np.ndarray) -> None:
    with pytest.raises(DataError, match="uint8 array"):
        BatchLoader(images=np.zeros((N, 4, 4, 3), np.float32), labels=labels, batch_size=2)
