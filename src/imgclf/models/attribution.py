"""What the model looked at: Grad-CAM (Selvaraju et al., 2017) through captum's LayerGradCam,
on the last spatial feature map of any imgclf network, upsampled to the input and drawn over
the image.

The target layer is found, not configured: a forward pass with hooks on every module of the
network's feature extractor keeps the last one whose output is a spatial map (N, C, H, W with
H or W above 1), which is the last convolutional stage of a recipe, a custom stack or a timm
CNN. A vision transformer's blocks give tokens (N, 1 + h * w, C) instead: the last block's
tokens less the class token are reshaped to an h x w map first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from imgclf.errors import ModelError
from imgclf.models.extras import EXPLAIN
from imgclf.models.hooks import output_shapes

BATCH = 8  # images per backward pass: Lite0 at 224 px keeps its activations in the caches


@dataclass(frozen=True)
class Target:
    """The module whose output Grad-CAM weighs, and how its output becomes a map."""

    name: str
    module: nn.Module
    tokens: bool = False  # a transformer block: (N, 1 + h * w, C) tokens, reshaped


def find_target(model: nn.Module, example: torch.Tensor) -> Target:
    """The last module of ``model.features`` with a spatial (or token-grid) output."""
    found = []
    for name, module, shape in output_shapes(model.features, lambda: model.eval()(example[:1])):
        if len(shape) == 4 and max(shape[2:]) > 1:
            found.append((name, module, False))
        elif len(shape) == 3 and _is_grid(shape[1]):
            found.append((name, module, True))
    if not found:
        raise ModelError(
            "This network has no spatial feature map to explain (an MLP reads the pixels as "
            "one vector): Grad-CAM needs a convolutional network or a transformer."
        )
    name, module, tokens = found[-1]
    return Target(name, module, tokens)


def _is_grid(tokens: int) -> bool:
    side = math.isqrt(tokens - 1)
    return tokens > 1 and side * side == tokens - 1


def class_activation_maps(
    model: nn.Module, x: torch.Tensor, classes: torch.Tensor, target: Target | None = None
) -> np.ndarray:
    """Grad-CAM maps (N, H, W) in [0, 1] at the input's size, for ``classes`` (N,) of the
    pixels ``x`` (N, C, H, W, as the network takes them)."""
    EXPLAIN.require("Explanations (--explain)")
    from captum.attr import LayerAttribution, LayerGradCam

    tensors = [*model.parameters(), *model.buffers()]
    x = x.to(tensors[0].device if tensors else "cpu")
    target = target or find_target(model, x)
    model.eval()
    if target.tokens:
        maps = _token_cam(model, target, x, classes)
    else:
        cam = LayerGradCam(model, target.module)
        inputs = x.float().requires_grad_(True)  # a frozen backbone still passes gradients on
        maps = cam.attribute(inputs, target=classes, relu_attributions=True).detach()
    maps = LayerAttribution.interpolate(maps, tuple(x.shape[2:]), interpolate_mode="bilinear")
    maps = maps[:, 0].clamp_min(0).cpu().numpy()
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, maps / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def _token_cam(model: nn.Module, target: Target, x: torch.Tensor, classes: torch.Tensor):
    """Grad-CAM on transformer tokens: gradient-weighted tokens (class token left out), summed
    over channels, on the h x w grid."""
    kept: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output) -> None:
        output.retain_grad()
        kept["tokens"] = output

    handle = target.module.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(x.float().requires_grad_(True))
            chosen = logits.gather(1, classes.view(-1, 1)).sum()
            chosen.backward()
    finally:
        handle.remove()
    tokens, grads = kept["tokens"][:, 1:], kept["tokens"].grad[:, 1:]
    side = math.isqrt(tokens.shape[1])
    weights = grads.mean(dim=1, keepdim=True)  # per channel, over the grid
    cam = torch.relu((weights * tokens).sum(dim=2)).view(len(x), 1, side, side)
    return cam.detach()


def overlays(
    model: nn.Module, images: np.ndarray, classes: np.ndarray, target: Target | None = None
) -> np.ndarray:
    """Each image (N, H, W, C uint8, as the network takes them) with the map of its class in
    ``classes`` drawn over it (N, H, W, 3), BATCH images per backward pass."""
    if not len(images):
        return np.zeros((0, *images.shape[1:3], 3), np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    target = target or find_target(model, x[:1])
    drawn = []
    for start in range(0, len(images), BATCH):
        picked = torch.from_numpy(np.asarray(classes[start : start + BATCH], dtype=np.int64))
        maps = class_activation_maps(model, x[start : start + BATCH], picked, target)
        drawn += [overlay(i, m) for i, m in zip(images[start : start + BATCH], maps, strict=True)]
    return np.stack(drawn)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``image`` (H, W, C) uint8 with ``cam`` (H, W) in [0, 1] drawn over it (turbo colours),
    as (H, W, 3) uint8."""
    from matplotlib import colormaps

    base = image if image.shape[-1] == 3 else np.repeat(image[..., :1], 3, axis=-1)
    heat = colormaps["turbo"](cam)[..., :3] * 255
    return np.clip((1 - alpha) * base + alpha * heat, 0, 255).astype(np.uint8)
