"""The unknown score: Mahalanobis distances of unit-length features to class means under a
shared covariance, placed among the validation images' scores; the model's torch module gives
the numpy numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imgclf.evaluate.unknown import (
    fit_mahalanobis,
    in_distribution,
    mahalanobis_scores,
    unit,
    why_not_fit,
)
from imgclf.models.unknown import UnknownScore


def classes_and_strangers(seed: int = 0):
    """Three Gaussian classes in 16 dimensions (train, val) and points far from all of them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, 16))

    def draw(n):
        labels = np.arange(n) % 3
        return centres[labels] + rng.normal(0, 1, (n, 16)), labels

    (train, labels), (val, _) = draw(600), draw(300)
    strangers = rng.normal(0, 1, (50, 16)) + 12 * rng.choice([-1, 1], (50, 16))
    return train, labels, val, strangers


def test_strangers_fall_below_the_threshold_and_val_keeps_95_percent():
    train, labels, val, strangers = classes_and_strangers()
    fit = fit_mahalanobis(train, labels, val)
    own = in_distribution(mahalanobis_scores(val, fit.means, fit.precision), fit.reference)
    far = in_distribution(mahalanobis_scores(strangers, fit.means, fit.precision), fit.reference)
    assert np.mean(own < 0.05) == pytest.approx(0.05, abs=0.01)
    assert (far < 0.05).all() and (far == 0).all()


def test_the_models_module_gives_the_numpy_shares():
    train, labels, val, strangers = classes_and_strangers(1)
    fit = fit_mahalanobis(train, labels, val)
    module = UnknownScore(3, 16, len(fit.reference))
    module.means.copy_(torch.from_numpy(fit.means))
    module.precision.copy_(torch.from_numpy(fit.precision))
    module.reference.copy_(torch.from_numpy(fit.reference))
    points = np.concatenate([val[:20], strangers[:5]]).astype(np.float32)
    expected = in_distribution(mahalanobis_scores(points, fit.means, fit.precision), fit.reference)
    got = module(torch.from_numpy(points)).numpy()
    assert np.abs(got - expected).max() <= 1 / len(fit.reference) + 1e-9  # one step: rounding


def test_a_mean_and_a_shared_covariance_per_class():
    train, labels, val, _ = classes_and_strangers(2)
    fit = fit_mahalanobis(train, labels, val)
    scaled = unit(train)  # the class means of the unit-length features
    assert np.allclose(fit.means, [scaled[labels == c].mean(0) for c in range(3)], atol=1e-5)
    assert fit.precision.shape == (16, 16) and np.allclose(fit.precision, fit.precision.T)
    assert (np.diff(fit.reference) >= 0).all()


@pytest.mark.parametrize(
    ("train", "val", "why"),
    [
        ([0, 1] * 10, [0] * 9, "the validation split has 9 images (10 needed to place a score)"),
        ([0] * 20, [0] * 10, "the training split needs two images of each of two classes"),
        ([0, 1, 1], [0] * 10, "the training split needs two images of each of two classes"),
        ([0, 1] * 10, [0] * 10, ""),
    ],
)
def test_too_little_data_says_why(train, val, why):
    assert why_not_fit(np.array(train), np.array(val)) == why
