"""Prediction sets: split conformal with LAC scores covers the true class as often as asked on
data like the validation split, sets are never empty, and too few scores give every class."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.models.conformal import coverage_and_size, scores_of, sets, threshold


def calibrated(n: int, k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, (n, k))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in probs])
    return probs, labels


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_the_sets_cover_as_often_as_asked(coverage):
    val_probs, val_labels = calibrated(3000, seed=1)
    test_probs, test_labels = calibrated(6000, seed=2)
    members = sets(test_probs, scores_of(val_probs, val_labels), coverage)
    covered, size = coverage_and_size(members, test_labels)
    assert covered == pytest.approx(coverage, abs=0.02)
    assert 1.0 <= size < 10 and members.any(axis=1).all()


def test_higher_coverage_means_larger_sets_and_the_top_class_is_always_in():
    probs, labels = calibrated(2000, seed=3)
    scores = scores_of(probs, labels)
    small, large = sets(probs, scores, 0.5), sets(probs, scores, 0.99)
    assert (small <= large).all() and small.sum() < large.sum()
    assert small[np.arange(len(probs)), probs.argmax(1)].all()


def test_too_few_scores_for_the_coverage_give_every_class():
    probs, labels = calibrated(5, seed=4)
    assert threshold(scores_of(probs, labels), 0.9) == 1.0  # rank 6 of 5 scores
    assert sets(probs, scores_of(probs, labels), 0.9).all()
