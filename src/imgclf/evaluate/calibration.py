"""Temperature scaling (Guo et al., 2017): one number T fitted on the validation split so that
softmax(logits / T) is calibrated, and the measures that show it: the expected calibration
error (ECE, 15 equal-width bins of top-label confidence), the negative log-likelihood and the
reliability table a diagram is drawn from.

It works on probabilities, not logits: log p differs from the logits by one constant per
image, which a softmax ignores, so softmax(log p / T) = softmax(logits / T). Dividing by T > 0
never changes which class is likeliest, so accuracy, the confusion matrix and the mistakes stay
as they were; only the confidences move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 15
TINY = 1e-30  # a probability that float32 rounded to 0 (its log would be -inf)
T_RANGE = (0.05, 20.0)  # far beyond what a trained network needs either way


def rescale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log probs / temperature), row by row, as float32."""
    z = np.log(np.clip(probs.astype(np.float64), TINY, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    picked = probs[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.log(np.clip(picked, TINY, 1.0)).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T that minimises the NLL of ``rescale(probs, T)`` (bounded search on log T)."""
    from scipy.optimize import minimize_scalar

    log_p = np.log(np.clip(probs.astype(np.float64), TINY, 1.0))
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        z = log_p / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float((np.log(np.exp(z).sum(axis=1)) - z[rows, labels]).mean())

    low, high = np.log(T_RANGE)
    found = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: images, mean confidence and accuracy (empty bins: count 0, NaNs)."""

    edges: np.ndarray  # (BINS + 1,)
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """Sum over bins of |accuracy - confidence| weighted by the bin's share of images."""
        used = self.count > 0
        share = self.count[used] / self.count.sum()
        return float((share * np.abs(self.accuracy[used] - self.confidence[used])).sum())


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Reliability:
    """The reliability table of top-label confidence in ``bins`` equal-width bins."""
    confidence = probs.max(axis=1).astype(np.float64)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(which, confidence, minlength=bins) / count
        accuracy = np.bincount(which, correct, minlength=bins) / count
    return Reliability(edges, count, mean_conf, accuracy)


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """The expected calibration error of ``probs`` (0-1)."""
    return reliability(probs, labels, bins).ece


def why_not_calibrate(labels: np.ndarray) -> str:
    """Why a validation split cannot fit a temperature ('' when it can)."""
    if len(labels) < 2:
        return f"the validation split has {len(labels)} image{'s' if len(labels) != 1 else ''}"
    if len(np.unique(labels)) < 2:
        return "the validation split holds one class"
    return ""
