"""Stratified train / val / test splits with a seed; explicit splits from the source win.

A split the source already has (val/test folders, a CSV split column, MNIST's test set) is kept.
A split it lacks is carved out of the training items with scikit-learn's stratified
``train_test_split``. Classes too small to give every split an image stay in train, with a
warning that names them, instead of a stack trace.

Copies stay together: given ``groups`` (the same id for items with the same bytes), a split is
carved from one representative per group, and every copy follows its representative, so no
copy of a training image lands in val or test. Without copies the split is what it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imgclf.errors import DataError


@dataclass
class Splits:
    """Item indices of each split, and warnings about classes that could not be split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def assignment(self, n: int) -> np.ndarray:
        """The split name of each of ``n`` items ('' for items in no split)."""
        names = np.full(n, "", dtype=object)
        for name, index in self.as_dict().items():
            names[index] = name
        return names


def make_splits(
    labels: np.ndarray,
    classes: list[str],
    explicit: np.ndarray | None = None,
    val_split: float = 0.2,
    test_split: float = 0.0,
    seed: int = 0,
    usable: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> Splits:
    """Split item indices into train/val/test, stratified by label.

    Args:
        labels: integer label per item.
        classes: class names, for messages.
        explicit: split name per item ('train', 'val', 'test') from the source, or None.
        val_split: fraction of the training items for validation when there is no explicit val.
        test_split: fraction of all items for test when there is no explicit test.
        seed: the random seed; the same seed gives the same split.
        usable: boolean mask of items to use (bad files are False).
        groups: an id per item, equal for copies (None: every item on its own).
    """
    everything = np.arange(len(labels))
    usable = np.ones(len(labels), bool) if usable is None else np.asarray(usable, bool)
    if explicit is None:
        explicit = np.full(len(labels), "train", dtype=object)
    given = {name: everything[(explicit == name) & usable] for name in ("train", "val", "test")}
    if len(given["train"]) == 0:
        raise DataError("There are no usable training images. Check the data report.")
    warnings: list[str] = []
    train, test = given["train"], given["test"]
    groups = everything if groups is None else np.asarray(groups)
    carved = carved_splits(explicit, usable, val_split, test_split)
    if "test" in carved:
        train, test = _carve_groups(train, labels, groups, classes, test_split, seed, "test",
                                    warnings)  # fmt: skip
    val = given["val"]
    if "val" in carved:
        fraction = val_split / (1.0 - test_split) if len(given["test"]) == 0 else val_split
        train, val = _carve_groups(train, labels, groups, classes, min(fraction, 0.9), seed + 1,
                                   "val", warnings)  # fmt: skip
    return Splits(np.sort(train), np.sort(val), np.sort(test), warnings)


def carved_splits(
    explicit: np.ndarray | None, usable: np.ndarray, val_split: float, test_split: float
) -> set[str]:
    """The splits ``make_splits`` carves from train: val and test when asked for and the
    source gives none of its usable items to them."""
    if explicit is None:
        explicit = np.full(len(usable), "train", dtype=object)
    wanted = {"val": val_split, "test": test_split}
    return {name for name, fraction in wanted.items()
            if fraction > 0 and not np.any((explicit == name) & usable)}  # fmt: skip


def _carve_groups(
    pool: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    classes: list[str],
    fraction: float,
    seed: int,
    name: str,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """``_carve`` over one representative (the first) of each group in ``pool``; every other
    member goes where its representative went."""
    _, first = np.unique(groups[pool], return_index=True)
    representatives = pool[np.sort(first)]
    if len(representatives) == len(pool):
        return _carve(pool, labels, classes, fraction, seed, name, warnings)
    keep, out = _carve(representatives, labels, classes, fraction, seed, name, warnings)
    taken = np.isin(groups[pool], groups[out])
    return pool[~taken], pool[taken]


def _carve(
    pool: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    fraction: float,
    seed: int,
    name: str,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Take a stratified ``fraction`` of ``pool`` out as split ``name``."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels[pool], minlength=len(classes))
    tiny = [c for c in np.flatnonzero(counts) if counts[c] < 2]
    if tiny:
        names = ", ".join(f"'{classes[c]}' ({counts[c]})" for c in tiny)
        warnings.append(
            f"classes with fewer than 2 images stay in train, none in {name}: {names}. "
            "Add images to these classes for a fair evaluation."
        )
    splittable = pool[~np.isin(labels[pool], tiny)]
    if len(splittable) == 0:
        return pool, np.empty(0, dtype=np.int64)
    n_classes = len(np.unique(labels[splittable]))
    n_out = int(np.ceil(fraction * len(splittable)))
    if n_out < n_classes or len(splittable) - n_out < n_classes:
        raise DataError(
            f"Cannot make a stratified {name} split of {fraction:.0%} from {len(splittable)} "
            f"images in {n_classes} classes: each split needs at least one image per class. "
            f"Add images, or change {name}_split (0 disables it)."
        )
    keep, out = train_test_split(
        splittable, test_size=n_out, stratify=labels[splittable], random_state=seed
    )
    keep = np.concatenate([keep, pool[np.isin(labels[pool], tiny)]])
    return keep.astype(np.int64), np.asarray(out, dtype=np.int64)
