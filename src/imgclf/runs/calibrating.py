"""The end of training's calibration: fit a temperature on the validation split's
probabilities, put it in the model (so the bundle, predict, export and serve all use it) and
measure the expected calibration error and NLL of every scored split before and after; then
keep the validation split's conformity scores for prediction sets (``fit_sets``).

A run without a validation split, or with one too small to fit on (one image, one class), is
not calibrated, and metrics.json says why; so does ``train.calibrate: false``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.evaluate.calibration import (
    BINS,
    Reliability,
    ece,
    fit_temperature,
    nll,
    reliability,
    rescale,
    why_not_calibrate,
)
from imgclf.models.conformal import coverage_and_size, scores_of, sets
from imgclf.models.network import ImageModel


@dataclass
class Calibrated:
    """metrics.json's ``calibration``, the splits' probabilities after it, and each split's
    reliability before and after (what the diagram draws)."""

    record: dict[str, Any]
    probs: dict[str, np.ndarray]
    reliability: dict[str, tuple[Reliability, Reliability]] = field(default_factory=dict)

    @property
    def temperature(self) -> float | None:
        return self.record.get("temperature")

    def sentence(self) -> str:
        return calibration_sentence(self.record)

    def measure(self, probs: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> None:
        """Take ``probs`` as the probabilities after calibration and measure them (a run with
        flip TTA scores again: the mean of two calibrated softmaxes is not the rescaled mean)."""
        self.probs = probs
        for split, after in probs.items():
            table = reliability(after, labels[split])
            self.reliability[split] = (self.reliability[split][0], table)
            measured = self.record["splits"][split]
            measured.update(ece_after=table.ece, nll_after=nll(after, labels[split]))


def calibration_sentence(record: dict[str, Any]) -> str:
    """One line from metrics.json's ``calibration``: the temperature and what it did to the
    ECE (on test when the run has one: val fitted it), or why the run was not calibrated."""
    if record.get("temperature") is None:
        return f"calibration: skipped ({record.get('skipped', 'not recorded')})"
    shown = "test" if "test" in record["splits"] else "val"
    measured = record["splits"][shown]
    return (
        f"calibration: temperature {record['temperature']:.3f} fitted on val "
        f"({record['fitted_on_images']} images); {shown} ECE "
        f"{100 * measured['ece_before']:.1f}% -> {100 * measured['ece_after']:.1f}%"
    )


def calibrate(
    model: ImageModel,
    probs: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    enabled: bool = True,
) -> Calibrated:
    """Fit on ``probs["val"]`` and calibrate ``model``; ``probs`` and ``labels`` per split."""
    reason = "" if enabled else "train.calibrate is false"
    if enabled:
        reason = (
            why_not_calibrate(labels["val"])
            if "val" in probs
            else "the run has no validation split"
        )
    if reason:
        return Calibrated({"skipped": reason}, probs)
    temperature = fit_temperature(probs["val"], labels["val"])
    splits = {
        split: {"ece_before": ece(p, labels[split]), "nll_before": nll(p, labels[split])}
        for split, p in probs.items()
    }
    record = {
        "temperature": temperature,
        "method": "temperature scaling (NLL on val)",
        "fitted_on_images": len(labels["val"]),
        "bins": BINS,
        "splits": splits,
    }
    before = {split: reliability(p, labels[split]) for split, p in probs.items()}
    calibrated = Calibrated(record, probs, {split: (t, t) for split, t in before.items()})
    calibrated.measure({split: rescale(p, temperature) for split, p in probs.items()}, labels)
    model.calibrate(temperature, fitted_on="val", images=len(labels["val"]))
    return calibrated


SET_COVERAGE = 0.9  # the coverage metrics.json and the report measure the sets at
MIN_SET_IMAGES = 10


def fit_sets(
    model: ImageModel, probs: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Keep the validation split's conformity scores (of the calibrated probabilities) in ``model``;
    metrics.json's ``sets``: the coverage and mean size of each other split's sets at 90 %."""
    if "val" not in probs:
        return {"skipped": "the run has no validation split"}
    if len(labels["val"]) < MIN_SET_IMAGES:
        n = len(labels["val"])
        return {"skipped": f"the validation split has {n} images ({MIN_SET_IMAGES} needed)"}
    scores = scores_of(probs["val"], labels["val"])
    model.fit_sets(scores, method="lac", fitted_on="val")
    measured = {}
    for split, p in probs.items():
        if split != "val":
            covered, size = coverage_and_size(sets(p, scores, SET_COVERAGE), labels[split])
            measured[split] = {"coverage": covered, "mean_size": size}
    return {"method": "lac", "fitted_on_images": len(scores), "coverage_target": SET_COVERAGE,
            "splits": measured}  # fmt: skip


def sets_sentence(record: dict[str, Any]) -> str:
    """One line from metrics.json's ``sets``: the coverage and mean size on test (or why not)."""
    if "skipped" in record:
        return f"prediction sets: none ({record['skipped']})"
    if "test" not in record["splits"]:
        return f"prediction sets: fitted on val ({record['fitted_on_images']} images)"
    test = record["splits"]["test"]
    return (
        f"prediction sets at {record['coverage_target']:.0%}: test coverage "
        f"{test['coverage']:.3f}, mean size {test['mean_size']:.2f} classes"
    )
