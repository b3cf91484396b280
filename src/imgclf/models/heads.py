"""Heads: pooling, then dense layers, then the class layer (logits; softmax is in the loss).

R1's head is ``pooling: avg, dense: [256, 128, 64]``; R2's is ``pooling: flatten,
dense: [128, 64, 32]``.
"""

from __future__ import annotations

from torch import nn

from imgclf.config import HeadConfig
from imgclf.errors import ModelError
from imgclf.models.layers import BatchDropout, activation

GLOBAL_POOLINGS = ("avg", "max")


def global_pooling(kind: str) -> list[nn.Module]:
    """A head's leading layers for global ``kind`` pooling (avg or max) of a (C, H, W) map."""
    pool = nn.AdaptiveAvgPool2d(1) if kind == "avg" else nn.AdaptiveMaxPool2d(1)
    return [pool, nn.Flatten()]


def build_head(cfg: HeadConfig, feature_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """The head for features of ``feature_shape`` ((C, H, W) map or (F,) vector)."""
    modules: list[nn.Module] = []
    if len(feature_shape) == 3:
        channels, height, width = feature_shape
        if cfg.pooling in GLOBAL_POOLINGS:
            modules += global_pooling(cfg.pooling)
            width_in = channels
        elif cfg.pooling == "flatten":
            modules.append(nn.Flatten())
            width_in = channels * height * width
        else:
            raise ModelError(
                f"head pooling 'none' needs vector features, but the backbone gives a "
                f"{channels}x{height}x{width} map. Use pooling avg, max or flatten."
            )
    else:
        width_in = feature_shape[0]
    for units in cfg.dense:
        if cfg.dropout:
            modules.append(BatchDropout(cfg.dropout))
        modules.append(nn.Linear(width_in, units))
        act = activation(cfg.activation)
        modules += [act] if act else []
        width_in = units
    if cfg.dropout:
        modules.append(BatchDropout(cfg.dropout))
    modules.append(nn.Linear(width_in, num_classes))
    return nn.Sequential(*modules)
