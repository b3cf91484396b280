"""A stem whose filters start as the whitening transform of the training images' patches.

airbench's CIFAR-10 speed records begin with such a layer: a 2x2 convolution whose filters are
the eigenvectors of the covariance of the images' 2x2 patches, each scaled by one over the
square root of its eigenvalue (so every direction of a patch reaches the next layer with unit
variance), and each paired with its negative (so a ReLU or GELU after it loses nothing). The
network then starts from decorrelated inputs instead of learning to decorrelate them. On
CIFAR-10 it was worth 1.5 points of test accuracy in one epoch, and at stride 2 (``fast_cifar``:
4x4 patches, 48 filters) it lets the blocks run at half the resolution, 17.4 MFLOP an image
instead of 39.8, to the same accuracy (BENCHMARKS.md, "A 4x4 whitened stem at stride 2").

The filters are fitted on a seeded sample of the training images before the first step; a
resumed run or a loaded bundle then overwrites them with its saved weights.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE = 5000  # training images the patch covariance is estimated from
EPS = 5e-4  # added to each eigenvalue: keeps the near-constant directions from exploding
_CHUNK = 500  # images unfolded at once (23 MB of 2x2 patches of 32x32 RGB, in float32)


class PatchWhitening(nn.Conv2d):
    """A convolution to be set by ``fit`` from images; otherwise an ordinary Conv2d (the same
    weights and bias, so a bundle saves and loads it as one)."""

    @torch.no_grad()
    def fit(self, batches) -> None:
        """Set the filters from ``batches`` of the layer's inputs (N, C, H, W), as training
        will feed it (preprocessed): the top ``out_channels / 2`` whitened directions of the
        patches and their negatives; the bias centres every output on the patches' mean."""
        count, total, outer = 0, None, None
        for images in batches:  # float32 within a chunk, summed over chunks in float64
            patches = F.unfold(images.float(), self.kernel_size, stride=self.stride)
            patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])
            chunk_sum, chunk_outer = patches.sum(0).double(), (patches.T @ patches).double()
            total = chunk_sum if total is None else total + chunk_sum
            outer = chunk_outer if outer is None else outer + chunk_outer
            count += len(patches)
        mean = total / count
        covariance = outer / count - torch.outer(mean, mean)
        values, vectors = torch.linalg.eigh(covariance)  # ascending
        top = self.out_channels // 2
        filters = (vectors.T / torch.sqrt(values.clamp(min=0)[:, None] + EPS)).flip(0)[:top]
        weight = torch.cat([filters, -filters])
        self.weight.copy_(weight.reshape(self.weight.shape).to(self.weight.dtype))
        if self.bias is not None:
            self.bias.copy_((-weight @ mean).to(self.bias.dtype))


def whiten_from_data(
    model: nn.Module, images: np.ndarray, rows: np.ndarray, seed: int, preprocess=None
) -> bool:
    """Fit every PatchWhitening layer of ``model`` (only a first layer can be one) on up to
    SAMPLE of the training ``rows`` of ``images`` (N, H, W, C uint8), drawn with ``seed`` so
    that every process of a run fits the same filters. Whether there was one to fit."""
    layers = [m for m in model.modules() if isinstance(m, PatchWhitening)]
    if not layers or len(rows) == 0:
        return bool(layers)
    chosen = np.sort(np.random.default_rng(seed).permutation(rows)[:SAMPLE])
    device = layers[0].weight.device

    def batches():
        for start in range(0, len(chosen), _CHUNK):
            pixels = torch.from_numpy(np.asarray(images[chosen[start : start + _CHUNK]]))
            x = pixels.permute(0, 3, 1, 2).to(device)
            yield preprocess(x) if preprocess is not None else x.float()

    for layer in layers:
        layer.fit(batches())
    return True
