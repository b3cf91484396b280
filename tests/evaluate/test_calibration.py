"""Temperature scaling: the fit finds the temperature that made probabilities over-confident,
the ECE means what it says, and a rescale never changes the predicted class."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.evaluate.calibration import (
    ece,
    fit_temperature,
    nll,
    reliability,
    rescale,
    why_not_calibrate,
)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def calibrated_sample(n: int = 4000, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, k))
    labels = np.array([rng.choice(k, p=p) for p in softmax(logits)])
    return logits, labels


@pytest.mark.parametrize("sharpened", [0.5, 2.5])
def test_the_fit_undoes_a_known_temperature(sharpened):
    logits, labels = calibrated_sample()
    off = softmax(logits * sharpened)  # over-confident for 2.5, under-confident for 0.5
    temperature = fit_temperature(off, labels)
    assert temperature == pytest.approx(sharpened, rel=0.08)
    fixed = rescale(off, temperature)
    assert ece(fixed, labels) < 0.02 < ece(off, labels)
    assert nll(fixed, labels) < nll(off, labels)


def test_a_rescale_keeps_every_predicted_class_and_t_1_changes_nothing():
    logits, _ = calibrated_sample(n=200)
    probs = softmax(logits).astype(np.float32)
    assert np.allclose(rescale(probs, 1.0), probs, atol=1e-6)
    for t in (0.3, 4.0):
        assert (rescale(probs, t).argmax(1) == probs.argmax(1)).all()
        assert np.allclose(rescale(probs, t).sum(1), 1.0, atol=1e-5)


def test_a_probability_float32_rounded_to_zero_does_not_break_the_fit():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.2, 0.8]], np.float32)
    temperature = fit_temperature(probs, np.array([0, 1, 1, 1]))
    assert np.isfinite(temperature) and temperature > 1  # a confident mistake cools it


def test_the_ece_is_the_weighted_gap_between_accuracy_and_confidence():
    # two bins: 0.95 confidence with 1 of 2 right, 0.65 with 2 of 2 right
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.65, 0.35], [0.35, 0.65]])
    labels = np.array([0, 1, 0, 1])
    table = reliability(probs, labels)
    assert table.count.sum() == 4 and (table.count > 0).sum() == 2
    assert ece(probs, labels) == pytest.approx(0.5 * abs(0.5 - 0.95) + 0.5 * abs(1.0 - 0.65))


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ([], "the validation split has 0 images"),
        ([1], "the validation split has 1 image"),
        ([2, 2, 2], "the validation split holds one class"),
        ([0, 1], ""),
    ],
)
def test_a_split_too_small_to_fit_on_says_why(labels, why):
    assert why_not_calibrate(np.array(labels, dtype=np.int64)) == why
