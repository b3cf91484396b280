"""The unknown score: Mahalanobis distances of unit-length features to class means under a
shared covariance, per layer, standardised on validation and summed, placed among the
validation images' scores; the model's torch module gives the numpy numbers, and finds the
stages of a network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from imgclf.evaluate.unknown import (
    UnknownFit,
    fit_unknown_score,
    mahalanobis_scores,
    unit,
    why_not_fit,
)
from imgclf.models.unknown import UnknownScore, find_stages, tapped


def unknown_scores(features: list[np.ndarray], fit: UnknownFit) -> np.ndarray:
    """The score in numpy, as the docs define it: each layer's Mahalanobis score,
    standardised by the fit, summed."""
    pairs = zip(features, fit.layers, strict=True)
    raw = np.stack([mahalanobis_scores(f, g.means, g.precision) for f, g in pairs])
    return ((raw - fit.centre[:, None]) / fit.scale[:, None]).sum(axis=0)


def in_distribution(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The share of the sorted reference at or below each score."""
    return np.searchsorted(reference, scores, side="right") / len(reference)


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
    fit = fit_unknown_score([train], labels, [val])
    own = in_distribution(unknown_scores([val], fit), fit.reference)
    far = in_distribution(unknown_scores([strangers], fit), fit.reference)
    assert np.mean(own < 0.05) == pytest.approx(0.05, abs=0.01)
    assert (far < 0.05).all() and (far == 0).all()


def test_a_layer_that_sees_the_strangers_catches_them_in_the_sum():
    """Two layers: strangers look ordinary in the first and strange in the second only."""
    train, labels, val, strangers = classes_and_strangers(3)
    rng = np.random.default_rng(3)
    typical = [train + rng.normal(0, 0.1, train.shape), val, val[:50] + 0.01]
    fit = fit_unknown_score([typical[0], train], labels, [typical[1], val])
    shares = in_distribution(unknown_scores([typical[2], strangers], fit), fit.reference)
    assert (shares < 0.05).mean() >= 0.9
    assert fit.centre.shape == fit.scale.shape == (2,)


def test_the_models_module_gives_the_numpy_shares():
    train, labels, val, strangers = classes_and_strangers(1)
    stage = np.abs(train[:, :8])  # a second layer: the module sums it with the features
    fit = fit_unknown_score([stage, train], labels, [np.abs(val[:, :8]), val])
    module = UnknownScore(3, 16, len(fit.reference), [("s", 8)])
    for (means, precision), layer in zip(module.layers(), fit.layers, strict=True):
        means.copy_(torch.from_numpy(layer.means))
        precision.copy_(torch.from_numpy(layer.precision))
    module.centre.copy_(torch.from_numpy(fit.centre))
    module.scale.copy_(torch.from_numpy(fit.scale))
    module.reference.copy_(torch.from_numpy(fit.reference))
    points = np.concatenate([val[:20], strangers[:5]]).astype(np.float32)
    staged = np.abs(points[:, :8])
    expected = in_distribution(unknown_scores([staged, points], fit), fit.reference)
    got = module(torch.from_numpy(points), {0: torch.from_numpy(staged)}).numpy()
    assert np.abs(got - expected).max() <= 1 / len(fit.reference) + 1e-9  # one step: rounding


def test_a_mean_and_a_shared_covariance_per_class():
    train, labels, val, _ = classes_and_strangers(2)
    (layer,) = fit_unknown_score([train], labels, [val]).layers
    scaled = unit(train)  # the class means of the unit-length features
    assert np.allclose(layer.means, [scaled[labels == c].mean(0) for c in range(3)], atol=1e-5)
    assert layer.precision.shape == (16, 16) and np.allclose(layer.precision, layer.precision.T)


def test_the_stages_are_the_last_outputs_at_each_resolution():
    block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    features = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),  # 8 x 8: the ReLU (1)
        nn.MaxPool2d(2), block,  # 4 x 4: the block's ReLU (3.1), not the conv before it
        nn.MaxPool2d(2), nn.Conv2d(4, 4, 1),  # 2 x 2: only a conv: no stage
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip
    assert find_stages(features, torch.zeros(1, 3, 8, 8)) == ["1", "3.1"]
    with torch.inference_mode(), tapped(features, ["1", "3.1"]) as taps:
        features(torch.ones(2, 3, 8, 8))
    assert taps[0].shape == (2, 4) and taps[1].shape == (2, 4)
    assert (
        find_stages(nn.Sequential(nn.Flatten(), nn.Linear(192, 4)), torch.zeros(1, 3, 8, 8)) == []
    )


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


def test_a_bundle_from_before_the_stages_scores_its_features_alone():
    train, labels, val, strangers = classes_and_strangers(4)
    fit = fit_unknown_score([train], labels, [val])
    spec = {"classes": 3, "features": 16, "reference": len(fit.reference)}  # no "stages"
    module = UnknownScore.from_spec(spec)
    assert module.stages == [] and "centre" not in dict(module.named_buffers())
    (layer,) = fit.layers
    module.means.copy_(torch.from_numpy(layer.means))
    module.precision.copy_(torch.from_numpy(layer.precision))
    points = torch.from_numpy(strangers[:5].astype(np.float32))
    raw = module.scores(points, {}).numpy()
    standardised = unknown_scores([strangers[:5]], fit)
    assert np.allclose((raw - fit.centre[0]) / fit.scale[0], standardised)
