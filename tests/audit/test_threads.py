"""The audit's steps that split their work over the cores give the numbers one core gives.
Under ``make test`` each xdist worker has one core, so the cores are set here."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf import cores
from imgclf.audit import properties
from imgclf.audit.labels import out_of_sample_probabilities
from imgclf.audit.properties import pixel_statistics
from imgclf.data.pipeline import hashing, parallel
from imgclf.data.pipeline.hashing import perceptual_hashes


def _on(monkeypatch: pytest.MonkeyPatch, count: int, compute):
    monkeypatch.setattr(cores, "available_cores", lambda: count)  # the label heads ask here
    monkeypatch.setattr(parallel, "available_cores", lambda: count)  # threaded_map's threads
    return compute()


def _images(n: int = 40, side: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (n, side // 4, side // 4, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)  # some structure to hash


def test_hashes_in_chunks_on_three_cores_equal_one(monkeypatch) -> None:
    monkeypatch.setattr(hashing, "_HASH_CHUNK", 7)  # several chunks, in flight together
    images, rows = _images(), np.arange(3, 40)
    one = _on(monkeypatch, 1, lambda: perceptual_hashes(images, rows))
    three = _on(monkeypatch, 3, lambda: perceptual_hashes(images, rows))
    assert np.array_equal(one.whole, three.whole) and np.array_equal(one.windows, three.windows)
    assert (one.whole[:3] == 0).all() and (one.whole[3:] != 0).any()  # other rows stay 0
    alone = perceptual_hashes(images, rows[-1:])  # each row's hash is its own, wherever it ran
    assert np.array_equal(alone.whole[39], three.whole[39])


def test_pixel_statistics_on_three_cores_equal_one(monkeypatch) -> None:
    monkeypatch.setattr(properties, "_CHUNK", 6)
    images, rows = _images(), np.arange(40)[::-1]  # in the rows' order, not the array's
    sizes = np.tile([12.0, 12.0], (40, 1))
    one = _on(monkeypatch, 1, lambda: pixel_statistics(images, rows, sizes))
    three = _on(monkeypatch, 3, lambda: pixel_statistics(images, rows, sizes))
    alone = [pixel_statistics(images, rows[k : k + 1], sizes[k : k + 1]) for k in (0, 17, 39)]
    for name in ("low", "high", "std", "sharpness"):
        assert np.array_equal(getattr(one, name), getattr(three, name)), name
        in_order = [getattr(stats, name)[0] for stats in alone]
        assert np.array_equal(getattr(three, name)[[0, 17, 39]], in_order), name


def test_label_heads_side_by_side_equal_one_after_another(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    features = np.eye(8, dtype=np.float32)[labels] + rng.normal(0, 0.4, (60, 8)).astype("f4")
    present = np.arange(3)
    one = _on(monkeypatch, 1, lambda: out_of_sample_probabilities(features, labels, present, 5, 0))
    two = _on(monkeypatch, 2, lambda: out_of_sample_probabilities(features, labels, present, 5, 0))
    assert np.array_equal(one, two)
