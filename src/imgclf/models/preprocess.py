"""Preprocessing is part of the model: pixels in (uint8 or float 0..255), logits out.

The spec (input size, channels, rescale, mean, std, interpolation, crop percentage) comes from
the backbone's pretrained config or the recipe, is overridable, and is saved in the bundle, so
inference can never normalise differently from training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class PreprocessSpec:
    """How raw pixels become the network's input."""

    image_size: tuple[int, int]
    channels: int  # what the data gives (1 or 3); grayscale is repeated for RGB networks
    rescale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    fit: str = field(default="resize")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessSpec:
        values = dict(data)
        for key in ("image_size", "mean", "std"):
            values[key] = tuple(values[key])
        return cls(**values)


class Preprocess(nn.Module):
    """x * rescale, grayscale repeated when the network wants RGB, then (x - mean) / std."""

    def __init__(self, spec: PreprocessSpec, network_channels: int) -> None:
        super().__init__()
        self.rescale = spec.rescale
        self.out_channels = network_channels
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() * self.rescale
        if x.shape[1] == 1 and self.out_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std
