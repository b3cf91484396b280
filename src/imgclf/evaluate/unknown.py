"""How strange an image is to a trained model: Mahalanobis scores (Lee et al., 2018) on the
features its classifier reads and on each stage of its feature extractor, summed, and turned
into a share of validation images that are as strange.

Each layer's score is minus the smallest squared Mahalanobis distance from an image's features,
scaled to unit length, to a class mean, with one covariance shared by the classes plus RIDGE on
its diagonal (well-posed when there are fewer images than dimensions). The layers are the
classifier's features and the spatial mean of the last output at each resolution of the
feature extractor (``models.unknown.find_stages``): the classifier's features tell apart photos
of other things (near: AUROC 0.9995 for a Lite0 animals model against imagenette photos), the
early stages tell apart other kinds of picture (far: the penultimate score alone gave 0.86 to
0.95 for the fast CIFAR-10 recipe against MNIST digits, depending on the seed). Each layer's
score is standardised by its mean and spread on the validation split, and the sum is the score,
the classifier's features weighted by the square root of the number of stages, so that they
count as much as all the stages together (BENCHMARKS.md, "Unknown": an unweighted sum lost on
photos of other things, the minimum and Fisher's p-value rules lost on one or the other).

A raw score means nothing to a user, so it is compared with the validation images' scores: the
``in-distribution`` value of an image is the share of validation images at least as strange
(an empirical, conformal p-value, in [0, 1]). Answering "unknown" below 0.05 keeps 95 % of
validation images by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEEP = 0.95  # the share of in-distribution validation images the default threshold keeps
REFERENCE = 1001  # validation scores kept (as quantiles) to place a new score among
MAX_FIT = 1000  # training images the statistics are fitted on (and scored images measured), at most
MAX_VAL = 2000  # validation images that standardise the layers and give the reference, at most
RIDGE = 1e-3  # added to the covariance's diagonal (unit features: about one dimension's variance)


@dataclass(frozen=True)
class Gaussian:
    """One layer's class means (K, D) and shared precision matrix (D, D)."""

    means: np.ndarray
    precision: np.ndarray


@dataclass(frozen=True)
class UnknownFit:
    """Each layer's Gaussian (the stages', then the classifier features'), each layer's score
    mean and spread on the validation split, and the sorted validation sums (the reference a
    new score is placed among)."""

    layers: list[Gaussian]
    centre: np.ndarray
    scale: np.ndarray
    reference: np.ndarray


def fit_gaussian(train: np.ndarray, labels: np.ndarray) -> Gaussian:
    """Class means and the shared precision of the unit-length ``train`` features."""
    train = unit(train)
    classes = np.unique(labels)
    means = np.stack([train[labels == c].mean(axis=0) for c in classes])
    centred = train - means[np.searchsorted(classes, labels)]
    covariance = centred.T @ centred / len(train) + RIDGE * np.eye(train.shape[1])
    return Gaussian(means.astype(np.float32), np.linalg.inv(covariance).astype(np.float32))


def fit_unknown_score(
    train: list[np.ndarray], labels: np.ndarray, val: list[np.ndarray]
) -> UnknownFit:
    """Fit each layer on its training features (the stages', then the classifier features'),
    standardise it on the validation features (the features' spread divided by the square root
    of the number of stages: their weight), and place the validation sums as the reference."""
    layers = [fit_gaussian(features, labels) for features in train]
    raw = _layer_scores(val, layers)
    centre, scale = raw.mean(axis=1), np.maximum(raw.std(axis=1), 1e-12)
    scale[-1] /= np.sqrt(max(1, len(layers) - 1))  # the features weigh as all stages together
    scores = np.sort(((raw - centre[:, None]) / scale[:, None]).sum(axis=0))
    quantiles = np.linspace(0.0, 1.0, min(REFERENCE, len(scores)))
    reference = np.quantile(scores, quantiles, method="lower") if len(scores) else scores
    return UnknownFit(layers, centre, scale, reference)


def _layer_scores(features: list[np.ndarray], layers: list[Gaussian]) -> np.ndarray:
    """(layers, N): each layer's score of each image."""
    pairs = zip(features, layers, strict=True)
    return np.stack([mahalanobis_scores(f, g.means, g.precision) for f, g in pairs])


def mahalanobis_scores(
    features: np.ndarray, means: np.ndarray, precision: np.ndarray
) -> np.ndarray:
    """Minus the smallest squared Mahalanobis distance of the unit-length features to a class
    mean (higher: more typical)."""
    x = unit(features)
    projected = x @ precision  # (N, D)
    own = np.einsum("nd,nd->n", projected, x)  # x' P x
    cross = projected @ means.T  # x' P m_c
    centre = np.einsum("cd,de,ce->c", means, precision, means)  # m_c' P m_c
    return -(own[:, None] - 2 * cross + centre[None, :]).min(axis=1)


def unit(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float64."""
    x = features.reshape(len(features), -1).astype(np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def why_not_fit(train_labels: np.ndarray, val_labels: np.ndarray) -> str:
    """Why no unknown score can be fitted ('' when it can)."""
    if len(val_labels) < 10:
        return f"the validation split has {len(val_labels)} images (10 needed to place a score)"
    counts = np.unique(train_labels, return_counts=True)[1]
    if len(counts) < 2 or counts.min() < 2:
        return "the training split needs two images of each of two classes"
    return ""
