"""The end of training's unknown score: fit the Mahalanobis statistics on the training split's
features and place the validation split's scores as the reference (``evaluate.unknown``), keep
them in the model (so the bundle carries them and ``predict --abstain`` can answer "unknown"),
and measure the share of each scored split that the default threshold calls unknown.

Embed-once runs already hold every image's features; other runs compute them once here, for
at most MAX_FIT training images and the scored splits. A run without a validation split (or
one of fewer than 10 images) has no reference, and metrics.json says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from imgclf.evaluate.unknown import KEEP, MAX_FIT, fit_mahalanobis, why_not_fit
from imgclf.models.inference import embed_rows
from imgclf.models.network import ImageModel
from imgclf.runtime import Runtime


def fit_unknown(
    model: ImageModel,
    rows: dict[str, np.ndarray],
    labels: np.ndarray,
    images: np.ndarray,
    features: np.ndarray | None,
    runtime: Runtime,
    batch_size: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit and keep the unknown score of ``model``; metrics.json's ``unknown`` record.

    Args:
        rows: the rows of 'train', 'val' and (when present) 'test'.
        labels: every row's label; images: the decoded-image cache; features: the cached
            embeddings of an embed-once run (None: computed from the pixels).
    """
    train, val = rows["train"], rows.get("val", np.empty(0, dtype=np.int64))
    reason = why_not_fit(labels[train], labels[val])
    if reason:
        return {"skipped": reason}
    if len(train) > MAX_FIT:
        train = np.sort(np.random.default_rng(seed).choice(train, MAX_FIT, replace=False))

    def features_of(part: np.ndarray) -> np.ndarray:
        if features is not None:
            return np.asarray(features[part]).reshape(len(part), -1)
        return embed_rows(model, images, part, batch_size, runtime)

    scored = {split: features_of(part) for split, part in rows.items() if split != "train"}
    fit = fit_mahalanobis(features_of(train), labels[train], scored["val"], seed)
    threshold = round(1.0 - KEEP, 6)
    fitted = {"train": len(train), "val": len(val)}
    model.fit_unknown(fit.means, fit.precision, fit.reference, keep=KEEP, threshold=threshold,
                      fitted_on=fitted)  # fmt: skip
    shares = {}
    for split, part_features in scored.items():
        if len(part_features):
            with torch.inference_mode():
                share = model.unknown(torch.from_numpy(part_features)).cpu().numpy()
            shares[split] = float(np.mean(share < threshold))
    return {"score": "mahalanobis", "keep": KEEP, "threshold": threshold, "fitted_on": fitted,
            "unknown_share": shares}  # fmt: skip
