"""The quick leak check looks for altered copies only where the hash tells pictures apart: in
photos (and the planted pictures) random pairs hash far apart, in small digits they do not."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.realdata
def test_a_close_hash_whose_pixels_do_not_line_up_is_no_leak(shared_datasets, tmp_path):
    """CIFAR-10: a test bird whose training copy hashes 2 bits away leaks; a test plane that
    hashes 6 bits from a training ship of the same layout (a dark shape on a pale sky) does
    not, since their pixels, lined up, do not correlate."""
    import shutil

    from imgclf.api.settings import make_config
    from imgclf.audit.inputs import audit_data
    from imgclf.audit.quick import quick_audit
    from imgclf.data.pipeline.hashing import hash_distance
    from imgclf.data.pipeline.prepare import prepare_data

    cifar = shared_datasets / "cifar10-jpg"
    copy, look_alike = ("test/bird/0634.jpg", "train/bird/4450.jpg"), (
        "test/airplane/0325.jpg", "train/ship/4238.jpg")  # fmt: skip
    others = [f"train/{c.name}/{p.name}" for c in sorted((cifar / "train").iterdir())
              for p in sorted(c.iterdir())[:5]]  # fmt: skip
    for name in {*copy, *look_alike, *others}:
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cifar / name, tmp_path / "data" / name)
    config = make_config(None, val_split=0, cache_dir=tmp_path / "cache")
    data = audit_data(prepare_data(tmp_path / "data", config, progress=False))
    row = {str(Path(name).relative_to(tmp_path / "data")): i for i, name in enumerate(data.names)}
    hashes = perceptual_hashes(data.images, data.rows, crops=False)
    pair = np.array([row[look_alike[0]]]), np.array([row[look_alike[1]]])
    assert hash_distance(hashes, *pair)[0] <= QUICK_DISTANCE  # the hash alone would pair them
    audit = quick_audit(data)
    leaked = {str(Path(data.names[r]).relative_to(tmp_path / "data")) for k in audit.leaks
              for r in k.rows}  # fmt: skip
    assert leaked == {copy[0]}
