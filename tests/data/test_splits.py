"""Stratified, seeded train/val/test splits; explicit splits from the source win."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.data.pipeline.splits import Splits, make_splits
from imgclf.errors import DataError

CLASSES = ["cat", "dog"]


def balanced(per_class: int, n_classes: int = 2) -> np.ndarray:
    """Labels 0,0,...,1,1,... with ``per_class`` items of each class."""
    return np.repeat(np.arange(n_classes), per_class)


def every_index(splits: Splits) -> np.ndarray:
    return np.concatenate([splits.train, splits.val, splits.test])


def test_val_split_is_stratified_per_class(seed):
    labels = balanced(10)

    splits = make_splits(labels, CLASSES, val_split=0.2, seed=seed)

    assert np.bincount(labels[splits.val], minlength=2).tolist() == [2, 2]
    assert np.bincount(labels[splits.train], minlength=2).tolist() == [8, 8]
    assert len(splits.test) == 0
    assert splits.warnings == []


def test_splits_are_disjoint_sorted_and_cover_every_item(seed):
    labels = balanced(10, n_classes=3)

    splits = make_splits(labels, ["a", "b", "c"], val_split=0.2, test_split=0.1, seed=seed)

    together = every_index(splits)
    assert len(together) == len(set(together.tolist())) == len(labels)
    assert sorted(together.tolist()) == list(range(len(labels)))
    for part in splits.as_dict().values():
        assert part.tolist() == sorted(part.tolist())
        assert part.dtype == np.int64


def test_same_seed_same_split_and_another_seed_another_split():
    labels = balanced(25)

    first = make_splits(labels, CLASSES, val_split=0.2, seed=1)
    again = make_splits(labels, CLASSES, val_split=0.2, seed=1)
    other = make_splits(labels, CLASSES, val_split=0.2, seed=2)

    assert first.val.tolist() == again.val.tolist()
    assert first.train.tolist() == again.train.tolist()
    assert first.val.tolist() != other.val.tolist()


def test_test_split_is_carved_first_then_val_from_the_rest(seed):
    labels = balanced(10)

    splits = make_splits(labels, CLASSES, val_split=0.2, test_split=0.2, seed=seed)

    # test: 20% of all 20 = 4; val: 20% of all (0.2 / 0.8 of the 16 left) = 4
    assert np.bincount(labels[splits.test]).tolist() == [2, 2]
    assert np.bincount(labels[splits.val]).tolist() == [2, 2]
    assert len(splits.train) == 12


def test_usable_mask_leaves_items_out_of_every_split(seed):
    labels = balanced(10)
    usable = np.ones(20, bool)
    usable[[0, 1, 15]] = False

    splits = make_splits(labels, CLASSES, val_split=0.2, seed=seed, usable=usable)

    together = every_index(splits)
    assert not {0, 1, 15} & set(together.tolist())
    assert sorted(together.tolist()) == np.flatnonzero(usable).tolist()


def test_explicit_splits_from_the_source_are_kept(seed):
    labels = balanced(4)
    explicit = np.array(["train", "val", "test", "train"] * 2, dtype=object)

    splits = make_splits(labels, CLASSES, explicit, val_split=0.5, test_split=0.3, seed=seed)

    assert splits.train.tolist() == [0, 3, 4, 7]
    assert splits.val.tolist() == [1, 5]
    assert splits.test.tolist() == [2, 6]


def test_val_is_carved_from_train_when_only_test_is_explicit(seed):
    """MNIST-like: the source has train and test; val comes out of train, test is untouched."""
    labels = np.concatenate([balanced(10), balanced(3)])
    explicit = np.array(["train"] * 20 + ["test"] * 6, dtype=object)

    splits = make_splits(labels, CLASSES, explicit, val_split=0.2, test_split=0.5, seed=seed)

    assert splits.test.tolist() == list(range(20, 26))
    assert len(splits.val) == 4  # 20% of the 20 training items, not of train + test
    assert set(splits.val.tolist()) <= set(range(20))
    assert np.bincount(labels[splits.val]).tolist() == [2, 2]
    assert len(splits.train) == 16


def test_zero_val_split_gives_no_val(seed):
    splits = make_splits(balanced(5), CLASSES, val_split=0.0, seed=seed)

    assert len(splits.val) == 0
    assert len(splits.train) == 10


def test_a_class_with_one_image_stays_in_train_with_a_warning(seed):
    classes = ["cat", "dog", "unicorn"]
    labels = np.concatenate([balanced(5), [2]])

    splits = make_splits(labels, classes, val_split=0.2, seed=seed)

    assert 10 in splits.train.tolist()
    assert 10 not in splits.val.tolist()
    assert len(splits.warnings) == 1
    assert "'unicorn' (1)" in splits.warnings[0]
    assert "none in val" in splits.warnings[0]
    assert "Add images" in splits.warnings[0]
    assert np.bincount(labels[splits.val], minlength=3).tolist() == [1, 1, 0]


def test_only_single_image_classes_all_stay_in_train(seed):
    splits = make_splits(np.array([0, 1]), CLASSES, val_split=0.5, seed=seed)

    assert splits.train.tolist() == [0, 1]
    assert len(splits.val) == 0
    assert "'cat' (1), 'dog' (1)" in splits.warnings[0]


def test_an_impossible_stratified_split_says_why_and_how_to_fix_it(seed):
    # 3 classes of 2 images, val 20%: ceil(0.2 * 6) = 2 val images cannot cover 3 classes
    labels = balanced(2, n_classes=3)

    with pytest.raises(DataError) as caught:
        make_splits(labels, ["a", "b", "c"], val_split=0.2, seed=seed)

    message = str(caught.value)
    assert "Cannot make a stratified val split of 20% from 6 images in 3 classes" in message
    assert "at least one image per class" in message
    assert "change val_split (0 disables it)" in message


def test_an_impossible_test_split_names_test_split(seed):
    labels = balanced(2, n_classes=3)

    with pytest.raises(DataError, match=r"stratified test split.*change test_split"):
        make_splits(labels, ["a", "b", "c"], val_split=0.0, test_split=0.2, seed=seed)


def test_no_usable_training_items_fails(seed):
    labels = balanced(3)

    with pytest.raises(DataError, match="no usable training images. Check the data report"):
        make_splits(labels, CLASSES, usable=np.zeros(6, bool), seed=seed)


def test_only_val_and_test_in_the_source_means_no_training_items(seed):
    explicit = np.array(["val", "test"] * 3, dtype=object)

    with pytest.raises(DataError, match="no usable training images"):
        make_splits(balanced(3), CLASSES, explicit, seed=seed)


def test_assignment_names_the_split_of_each_item():
    splits = Splits(train=np.array([0, 3]), val=np.array([1]), test=np.array([4]))

    assert splits.assignment(6).tolist() == ["train", "val", "", "train", "test", ""]


def test_assignment_of_a_real_split_matches_its_indices(seed):
    labels = balanced(10)
    splits = make_splits(labels, CLASSES, val_split=0.3, test_split=0.2, seed=seed)

    names = splits.assignment(len(labels))

    for name, index in splits.as_dict().items():
        assert np.flatnonzero(names == name).tolist() == index.tolist()


def test_copies_stay_on_one_side_of_every_carved_split():
    labels = np.repeat(np.arange(3), 40)
    groups = np.arange(120)
    groups[1::4] = groups[0::4]  # every pair (4k, 4k+1) is a copy
    groups[[7, 50, 90]] = 3  # a group of four across classes
    for seed in range(5):
        splits = make_splits(labels, ["a", "b", "c"], None, 0.2, 0.2, seed, groups=groups)
        side = splits.assignment(120)
        for group in np.unique(groups):
            assert len(set(side[groups == group])) == 1, (seed, group)
        assert sorted(np.concatenate([splits.train, splits.val, splits.test])) == list(range(120))
        assert set(labels[splits.test]) == {0, 1, 2}


def test_without_copies_the_groups_change_nothing():
    labels = np.repeat(np.arange(4), 25)
    plain = make_splits(labels, list("abcd"), None, 0.2, 0.1, 3)
    grouped = make_splits(labels, list("abcd"), None, 0.2, 0.1, 3, groups=np.arange(100))
    for name in ("train", "val", "test"):
        assert getattr(plain, name).tolist() == getattr(grouped, name).tolist()


def test_prepared_data_keeps_byte_copies_together(tmp_path):
    from imgclf.api.settings import make_config
    from imgclf.data.pipeline.prepare import prepare_data

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for k in range(10):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{k}.png")
            if k < 4:  # a copy under another name
                Image.fromarray(pixels).save(tmp_path / label / f"copy{k}.png")
    for seed in range(4):
        cfg = make_config(None, val_split=0.3, seed=seed, cache_dir=tmp_path / "cache")
        prepared = prepare_data(tmp_path, cfg, decode=False, progress=False)
        names = [f"{Path(p).parent.name}/{Path(p).name}" for p in prepared.source.paths]
        side = dict(zip(names, prepared.splits.assignment(28), strict=True))
        for label in ("a", "b"):
            for k in range(4):
                assert side[f"{label}/{k}.png"] == side[f"{label}/copy{k}.png"]
