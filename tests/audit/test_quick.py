"""The quick leak check looks for altered copies only where the hash tells pictures apart: in
photos (and the planted pictures) random pairs hash far apart, in small digits they do not."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.audit.quick import QUICK_DISTANCE
from imgclf.data.pipeline.hashing import chance_distance, perceptual_hashes


def test_digits_hash_alike_and_generated_pictures_do_not():
    from sklearn.datasets import load_digits

    digits = (load_digits().images * 16).clip(0, 255).astype(np.uint8)[..., None]
    rows = np.arange(len(digits))
    assert chance_distance(perceptual_hashes(digits, rows, crops=False), rows) < 3 * QUICK_DISTANCE


def test_planted_pictures_are_told_apart(planted_audit):
    data = planted_audit.data
    hashes = perceptual_hashes(data.images, data.rows, crops=False)
    assert chance_distance(hashes, data.rows) >= 3 * QUICK_DISTANCE


def test_too_few_pictures_to_pair_count_as_told_apart():
    images = np.zeros((1, 8, 8, 1), np.uint8)
    rows = np.arange(1)
    assert chance_distance(perceptual_hashes(images, rows, crops=False), rows) == 64


def test_the_quick_check_keeps_what_it_found_for_the_same_images_and_splits(
    planted_audit, tmp_path, monkeypatch
):
    """A sweep's trials and ``imgclf evaluate`` read the hashes and pairs the first check kept;
    other splits are checked afresh."""
    import dataclasses

    from imgclf.audit import quick
    from imgclf.audit.memo import Memo

    data = planted_audit.data
    first = quick.quick_audit(data, Memo(tmp_path))
    assert first.leaks and list(tmp_path.glob("quick-leaks-*.npz"))

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(quick, "perceptual_hashes", no_hashing)
    again = quick.quick_audit(data, Memo(tmp_path))
    assert [(leak.split, leak.rows) for leak in again.leaks] == [
        (leak.split, leak.rows) for leak in first.leaks
    ]
    moved = dataclasses.replace(data, split=np.where(data.split == "test", "train", data.split))
    with pytest.raises(AssertionError, match="hashed again"):
        quick.quick_audit(moved, Memo(tmp_path))
