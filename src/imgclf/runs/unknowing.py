"""The end of training's unknown score: one pass with taps over at most MAX_FIT training
images, the validation split (at most MAX_VAL images) and at most MAX_FIT images of each other
scored split gives each layer's features (the stages of ``models.unknown.find_stages``, then
the classifier's); ``evaluate.unknown`` fits them, standardises them on validation and places
the validation sums as the reference; the model keeps it all (so the bundle carries it and
``predict --abstain`` can answer "unknown"), and the share of each scored split that the
default threshold calls unknown is measured.

A frozen backbone's pooled features are the embeddings, and the embed-once pass keeps every
row's stage means beside them, so the run, and the next one on the same images (a sweep's
trials, whatever their head), read them instead of passing the images through the backbone
again.

A run without a validation split (or one of fewer than 10 images) has no reference, and
metrics.json says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from imgclf.evaluate.unknown import KEEP, MAX_FIT, MAX_VAL, fit_unknown_score, why_not_fit
from imgclf.models.features.embeddings import Embeddings
from imgclf.models.inference import layer_rows
from imgclf.models.network import ImageModel
from imgclf.models.unknown import model_stages
from imgclf.runtime import Runtime


def fit_unknown(
    model: ImageModel,
    rows: dict[str, np.ndarray],
    labels: np.ndarray,
    images: np.ndarray,
    runtime: Runtime,
    batch_size: int,
    seed: int = 0,
    embedded: Embeddings | None = None,
) -> dict[str, Any]:
    """Fit and keep the unknown score of ``model``; metrics.json's ``unknown`` record.

    Args:
        rows: the rows of 'train', 'val' and (when present) 'test'.
        labels: every row's label; images: the decoded-image cache.
        embedded: for a frozen backbone, the embed-once pass: every row's features the
            classifier reads and the stages' means (None, or stages damaged on disk: one pass
            over the drawn rows computes them).
    """
    train, val = rows["train"], rows.get("val", np.empty(0, dtype=np.int64))
    reason = why_not_fit(labels[train], labels[val])
    if reason:
        return {"skipped": reason}
    rng = np.random.default_rng(seed)
    drawn = {split: _at_most(part, MAX_VAL if split == "val" else MAX_FIT, rng)
             for split, part in rows.items()}  # fmt: skip
    stages = model_stages(model, images[drawn["train"][:1]])

    def read(part: np.ndarray) -> list[np.ndarray]:
        if embedded is None or embedded.stages is None or embedded.stage_names != stages:
            return layer_rows(model, images, part, stages, batch_size, runtime)
        kept = [np.asarray(stage[part]) for stage in embedded.stages]
        return [*kept, np.asarray(embedded.clean[part], dtype=np.float32)]

    layers = {split: read(part) for split, part in drawn.items()}
    fit = fit_unknown_score(layers["train"], labels[drawn["train"]], layers["val"])
    threshold = round(1.0 - KEEP, 6)
    fitted = {split: len(part) for split, part in drawn.items() if split in ("train", "val")}
    model.fit_unknown(stages, fit, keep=KEEP, threshold=threshold, fitted_on=fitted)
    shares, measured = {}, {}
    for split, features in layers.items():
        if split != "train" and len(drawn[split]):
            share = _shares(model, features)
            shares[split], measured[split] = float(np.mean(share < threshold)), len(share)
    return {"score": "mahalanobis", "stages": stages, "keep": KEEP, "threshold": threshold,
            "fitted_on": fitted, "unknown_share": shares, "measured_on": measured}  # fmt: skip


def _at_most(part: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(part, limit, replace=False)) if len(part) > limit else part


def _shares(model: ImageModel, features: list[np.ndarray]) -> np.ndarray:
    """The in-distribution shares of images from their layers' features, as the model gives."""
    device = next(model.unknown.buffers()).device
    tensors = [torch.from_numpy(f).to(device) for f in features]
    with torch.inference_mode():
        taps = dict(enumerate(tensors[:-1]))
        return model.unknown(tensors[-1], taps).cpu().numpy()
