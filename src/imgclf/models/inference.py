"""Batched inference over rows of the decoded-image cache: class probabilities, fast.

Evaluation runs in eval mode under ``torch.inference_mode`` with large batches in channels_last;
rows are read in sorted order (memory-map locality).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from imgclf.models.fold import inference_copy
from imgclf.runtime import Runtime

# Pixels per inference batch on a CPU: about 10 images at 224 px. Larger batches of large
# images spill the activations out of the CPU caches: Lite0 at 224 px embeds 65 images/s in
# batches of 8 but 26 images/s in batches of 256 on a 2-core machine.
PIXELS_PER_BATCH = 2**19


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the block, then the module's own mode again (a notebook may be training)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def inference_batch_size(requested: int, height: int, width: int) -> int:
    """``requested``, capped so a batch holds about PIXELS_PER_BATCH pixels."""
    return max(1, min(requested, PIXELS_PER_BATCH // max(1, height * width)))


def predict_rows(
    model: nn.Module,
    images: np.ndarray,
    rows: np.ndarray,
    batch_size: int = 256,
    progress: bool = False,
    runtime: Runtime | None = None,
    tta: str = "none",
    logits: bool = False,
) -> np.ndarray:
    """Softmax probabilities (len(rows), K) of ``model`` on ``images[rows]``.

    ``images`` is (N, H, W, C) pixels, or (N, D) features for a head on cached embeddings.
    ``progress`` shows a bar on a terminal (evaluation); validation each epoch shows none.
    Batches are built on the CPU and computed on ``runtime``'s device and precision.
    ``tta="flip"`` averages each image's probabilities with its mirror image's (pixels only).
    With ``logits``, each view's network outputs instead, (views, len(rows), K): what
    ``mean_softmax`` turns into the same probabilities, or into those at a temperature
    without a second pass.
    """
    if tta not in ("none", "flip") or (tta == "flip" and images.ndim != 4):
        raise ValueError(f"tta must be 'none', or 'flip' on (N, H, W, C) pixels; got {tta!r}")
    from imgclf.progressbar import progress_bar

    runtime = runtime or Runtime()
    if images.ndim == 4:
        batch_size = inference_batch_size(batch_size, *images.shape[1:3])
    outputs, network = [], model
    with eval_mode(model), torch.inference_mode():
        with progress_bar(progress, "evaluating", len(rows)) as advance:
            for start in range(0, len(rows), batch_size):
                batch = torch.from_numpy(
                    np.ascontiguousarray(images[rows[start : start + batch_size]])
                )
                if batch.ndim == 4:
                    batch = batch.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
                batch = runtime.move(batch)
                if start == 0 and batch.ndim == 4:
                    network = inference_copy(model, batch[:2])  # BatchNorm folded
                with runtime.autocast():
                    views = [network(batch).float()]
                    if tta == "flip":
                        mirrored = batch.flip(3).contiguous(memory_format=torch.channels_last)
                        views.append(network(mirrored).float())
                    outputs.append((torch.stack(views) if logits else _mean_softmax(views)).cpu())
                advance(len(batch))
    if not outputs:
        return np.zeros((1 + (tta == "flip"), 0, 0) if logits else (0, 0), dtype=np.float32)
    return torch.cat(outputs, dim=1 if logits else 0).numpy()


def mean_softmax(
    views: np.ndarray, temperature: float | None = None, dtype: torch.dtype | None = None
) -> np.ndarray:
    """The probabilities of ``predict_rows(..., logits=True)``'s views, as ``predict_rows``
    computes them, of the logits divided by ``temperature`` first when one is given, as a
    calibrated model divides them: in ``dtype``, the logits' own under autocast (bf16 rounds
    the quotient; dividing in float32 instead moved 3 of CIFAR-10's 10,000 test answers)."""
    tensors = [torch.from_numpy(np.ascontiguousarray(view)) for view in views]
    if temperature is not None:
        tensors = [(view.to(dtype or view.dtype) / temperature).float() for view in tensors]
    return _mean_softmax(tensors).numpy()


def _mean_softmax(views: list[torch.Tensor]) -> torch.Tensor:
    probs = torch.softmax(views[0], dim=1)
    if len(views) == 2:
        probs = (probs + torch.softmax(views[1], dim=1)) / 2
    return probs


def layer_rows(
    model: nn.Module,
    images: np.ndarray,
    rows: np.ndarray,
    stages: list[str],
    batch_size: int = 256,
    runtime: Runtime | None = None,
) -> list[np.ndarray]:
    """From one pass over ``images[rows]``: the spatial mean of each of ``stages`` (names in
    ``model.features``), then the features ``model.classifier`` reads, each float32 (N, D)."""
    from imgclf.models.unknown import tapped

    runtime = runtime or Runtime()
    batch_size = inference_batch_size(batch_size, *images.shape[1:3])
    outputs: list[list[torch.Tensor]] = [[] for _ in range(len(stages) + 1)]
    batches = (
        runtime.move(
            torch.from_numpy(np.ascontiguousarray(images[rows[start : start + batch_size]]))
            .permute(0, 3, 1, 2)
            .contiguous(memory_format=torch.channels_last)
        )
        for start in range(0, len(rows), batch_size)
    )
    with eval_mode(model), torch.inference_mode():
        network = model
        for index, batch in enumerate(batches):
            if index == 0:  # BatchNorm folded where it computes the same
                network = inference_copy(model, batch[:2])
            with tapped(network.features, stages) as taps, runtime.autocast():
                features = network.embed(batch)
            for i in range(len(stages)):
                outputs[i].append(taps[i].float().cpu())
            outputs[-1].append(features.flatten(1).float().cpu())
    if not len(rows):
        return [np.zeros((0, 0), dtype=np.float32) for _ in outputs]
    return [torch.cat(parts).numpy() for parts in outputs]


def loss_and_accuracy(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of probabilities against integer labels."""
    if len(labels) == 0:
        return float("nan"), float("nan")
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    return float(-np.log(picked).mean()), float((probs.argmax(1) == labels).mean())
