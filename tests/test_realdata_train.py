"""Real data, CI only: the R5 deep_cnn recipe on a 10,000-image MNIST subset reaches 0.97."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgclf.classifier import ImageClassifier
from imgclf.data.formats.builtin import load_builtin

pytestmark = pytest.mark.realdata


def test_r5_deep_cnn_on_a_mnist_subset(shared_datasets: Path, tmp_path: Path) -> None:
    mnist = load_builtin("mnist", shared_datasets)
    train = np.flatnonzero(mnist.splits == "train")[:8000]
    test = np.flatnonzero(mnist.splits == "test")[:2000]
    subset = mnist.subset(np.concatenate([train, test]))
    classifier = ImageClassifier(
        model="deep_cnn",
        epochs=6,
        batch_size=64,
        lr=2e-3,
        schedule="onecycle",
        val_split=0.1,
        quiet=True,
        project=tmp_path,
    ).fit(subset)
    assert classifier.metrics_["test"]["n_images"] == 2000
    assert classifier.metrics_["test"]["accuracy"] >= 0.97
