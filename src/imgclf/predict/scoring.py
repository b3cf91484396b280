"""Scoring batches of decoded images: probabilities on torch or ONNX Runtime (``scorer``), and,
when abstaining, each image's in-distribution share from the same pass (``answerer``); the
checks of ``--abstain`` and ``--sets`` and the prediction sets themselves. Prediction and the
server compute through these functions."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from imgclf.errors import ConfigError
from imgclf.models.conformal import sets as conformal_sets
from imgclf.models.fold import inference_copy
from imgclf.models.network import ImageModel
from imgclf.runtime import Runtime

Answer = tuple[np.ndarray, np.ndarray | None]  # probabilities, in-distribution shares or None


def scorer(
    model: ImageModel, tta: str = "none", runtime: Runtime | None = None, onnx=None
) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 (B, H, W, C) batch -> probabilities, averaged over the TTA views: the model on
    the runtime (in eval mode: the caller's ``eval_mode``), or the exported graph on ONNX
    Runtime. Prediction and the server compute through this one function."""
    runtime = runtime or Runtime()
    if onnx is None:
        return partial(_forward, _Folded(model), tta=tta, runtime=runtime)

    def run(images: np.ndarray) -> np.ndarray:
        probs = onnx(images)
        if tta == "flip":
            probs = (probs + onnx(np.ascontiguousarray(images[:, :, ::-1]))) / 2
        return probs

    return run


def abstention(model: ImageModel, abstain: str | float | None, onnx=None) -> float | None:
    """The in-distribution share below which an image is answered "unknown" (None: never),
    or one ConfigError line: a bad value, a model without an unknown score, an exported graph
    without the in_distribution output."""
    if abstain is None:
        return None
    text = str(abstain).strip().lower()
    if text != "auto":
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0.0 < value < 1.0:
            raise ConfigError(
                f"--abstain {abstain}: give auto (the model's threshold) or a share between 0 "
                "and 1, e.g. 0.05 to answer unknown for images stranger than 95 % of the "
                "validation images."
            )
    unknown = model.spec.get("unknown")
    if not unknown:
        raise ConfigError(
            "--abstain needs the model's unknown score, and this model has none (trained "
            "without a validation split, with train.unknown false, or by an older imgclf). "
            "Train it again with a validation split."
        )
    if onnx is not None and not getattr(onnx, "abstains", False):
        raise ConfigError(
            "--abstain: this exported graph has no in_distribution output (exported before the "
            "model had an unknown score, or by an older imgclf): export it again, or predict "
            "with --backend torch."
        )
    return float(unknown["threshold"]) if text == "auto" else value


def set_coverage(model: ImageModel, coverage: float | None) -> float | None:
    """``coverage`` checked (None: no sets), or one ConfigError line: a value outside (0, 1), a
    model without conformal scores."""
    if coverage is None:
        return None
    try:
        value = float(coverage)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise ConfigError(
            f"--sets {coverage}: give a coverage between 0 and 1, e.g. 0.9 for sets that hold "
            "the true class 9 times in 10."
        )
    if model.conformal is None:
        raise ConfigError(
            "--sets needs the model's conformal scores, and this model has none (trained "
            "without a validation split, or by an older imgclf). Train it again with one."
        )
    return value


def prediction_sets(
    model: ImageModel, probs: np.ndarray, coverage: float | None
) -> np.ndarray | None:
    """Each image's prediction set at ``coverage`` (None: no sets asked for)."""
    if coverage is None:
        return None
    return conformal_sets(probs, model.conformal.scores.cpu().numpy(), coverage)


def forward_for(
    model: ImageModel, tta: str, runtime: Runtime, onnx, threshold: float | None
) -> Callable[[np.ndarray], Answer]:
    """uint8 batch -> (probabilities, shares): the shares only when abstaining."""
    if threshold is not None:
        return answerer(model, tta, runtime, onnx=onnx)
    score = scorer(model, tta, runtime, onnx)
    return lambda images: (score(images), None)


def answerer(
    model: ImageModel, tta: str = "none", runtime: Runtime | None = None, joined=False, onnx=None
):
    """uint8 (B, H, W, C) batch -> (probabilities, in-distribution shares), on torch or on an
    exported graph that abstains; with ``joined``, one (B, K + 1) array, the shares last (what
    the server's worker batches). The shares are the first view's, as on torch."""
    if onnx is None:
        answer = partial(
            _forward, _Folded(model), tta=tta, runtime=runtime or Runtime(), shares=True
        )
    else:

        def answer(images: np.ndarray) -> Answer:
            probs, share = onnx.answer(images)
            if tta == "flip":
                probs = (probs + onnx(np.ascontiguousarray(images[:, :, ::-1]))) / 2
            return probs, share

    if not joined:
        return answer

    def joined_answer(images: np.ndarray) -> np.ndarray:
        probs, share = answer(images)
        return np.concatenate([probs, share[:, None]], axis=1)

    return joined_answer


class _Folded:
    """The model with its BatchNorm folded into the convolutions (``models/fold.py``) where
    that computes the same, made at the first batch: what predict and serve run on torch."""

    def __init__(self, model: ImageModel) -> None:
        self.model, self.network = model, None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._on(x)(x)

    def answer(self, x: torch.Tensor):
        return self._on(x).answer(x)

    def _on(self, x: torch.Tensor) -> ImageModel:
        if self.network is None:
            self.network = inference_copy(self.model, x[:2])
        return self.network


@torch.inference_mode()
def _forward(
    model: ImageModel | _Folded,
    images: np.ndarray,
    tta: str,
    runtime: Runtime,
    shares: bool = False,
):
    """Softmax probabilities of a (B, H, W, C) uint8 batch, averaged over the TTA views, and
    with ``shares`` the in-distribution shares of the images (from the first view's pass)."""
    x = runtime.move(torch.from_numpy(images)).permute(0, 3, 1, 2)
    x = x.contiguous(memory_format=torch.channels_last)
    with runtime.autocast():
        logits, share = model.answer(x) if shares else (model(x), None)
        probs = torch.softmax(logits.float(), dim=1)
        if tta == "flip":
            mirrored = x.flip(3).contiguous(memory_format=torch.channels_last)
            probs = (probs + torch.softmax(model(mirrored).float(), dim=1)) / 2
    probs = probs.float().cpu().numpy()
    return (probs, share.float().cpu().numpy()) if shares else probs
