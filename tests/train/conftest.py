"""Tiny training data: 3 classes of 8x8 grey images whose class is a bright block's position."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.train.parts import TrainData


def make_blocks(n_per_class: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, (row, col) in enumerate([(0, 0), (0, 4), (4, 2)]):
        for _ in range(n_per_class):
            image = rng.integers(0, 60, (8, 8, 1), dtype=np.uint8)
            image[row : row + 4, col : col + 4] += 150
            images.append(image)
            labels.append(label)
    return np.stack(images), np.array(labels)


@pytest.fixture
def blocks() -> TrainData:
    images, labels = make_blocks()
    order = np.random.default_rng(1).permutation(len(labels))
    return TrainData(
        images=images,
        labels=labels,
        train=np.sort(order[:90]),
        val=np.sort(order[90:]),
        classes=["top-left", "top-right", "bottom"],
    )
