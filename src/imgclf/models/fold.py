"""BatchNorm folded into the convolution before it, for a frozen part of a network.

In eval mode a BatchNorm layer is a fixed affine map per channel, so after a convolution it
can be folded into that convolution's weights and bias, as ONNX Runtime and other deployment
runtimes do; the folded part skips a pass over every activation map. On a CPU that pass costs
about as much as the convolutions of a mobile network (EfficientNet-Lite0: a third of a
forward pass). Only a copy is folded: the model, its weights and its checkpoints keep their
layers, and the copy is only right while the part it copies stays frozen.

Pairs are a convolution and the BatchNorm registered right after it in the same module, which
is how timm and torchvision build their blocks; a caller checks the folded copy against the
original (``same_outputs``), since registration order is not always the order of the forward.
"""

from __future__ import annotations

import copy
import sys

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(module: nn.Module) -> tuple[nn.Module, int]:
    """(an eval-mode copy of ``module`` with every conv -> BatchNorm pair folded, the number of
    pairs folded); the copy's parameters do not require gradients."""
    folded = copy.deepcopy(module).eval().requires_grad_(False)
    pairs = list(_pairs(folded))
    for parent, first, second in pairs:
        conv, norm = parent._modules[first], parent._modules[second]
        parent._modules[first] = fuse_conv_bn_eval(conv, norm)
        parent._modules[second] = _after(norm)
    return folded, len(pairs)


def inference_copy(model: nn.Module, probe: torch.Tensor) -> nn.Module:
    """``model`` (in eval mode, as it is now) folded for inference where it has pairs to fold
    and the folded copy gives its outputs on ``probe``, else ``model`` itself."""
    if next(_pairs(model), None) is None:
        return model
    folded, _ = fold_batchnorm(model)
    with torch.no_grad(), torch.autocast(probe.device.type, enabled=False):
        return folded if same_outputs(folded(probe), model(probe)) else model


def _pairs(module: nn.Module):
    """(parent, conv's name, BatchNorm's name) for each pair of ``module`` that folds."""
    for parent in module.modules():
        names = list(parent._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, norm = parent._modules[first], parent._modules[second]
            if isinstance(conv, nn.Conv2d) and _after(norm) is not None:
                yield parent, first, second


def _after(norm: nn.Module | None) -> nn.Module | None:
    """What is left of ``norm`` once folded (None: not a BatchNorm that folds, as one without
    running statistics): nothing for a plain BatchNorm2d, its dropout and activation for timm's
    BatchNormAct2d."""
    if not getattr(norm, "track_running_stats", False):
        return None
    if type(norm) is nn.BatchNorm2d:
        return nn.Identity()
    timm_layers = sys.modules.get("timm.layers")  # (no timm model without it imported)
    if timm_layers is not None and type(norm) is timm_layers.BatchNormAct2d:
        return nn.Sequential(norm.drop, norm.act)
    return None


def same_outputs(folded: torch.Tensor, original: torch.Tensor) -> bool:
    """Whether a folded part's output equals the original's up to float rounding (the folded
    weights round differently: relative to the output's scale, 1e-4)."""
    scale = float(original.abs().max()) or 1.0
    return original.shape == folded.shape and bool(
        torch.allclose(folded, original, rtol=1e-4, atol=1e-4 * scale)
    )
