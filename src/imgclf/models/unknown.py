"""The unknown score as a part of the network: the class means, shared precision matrix and
validation reference of ``evaluate.unknown``, kept as buffers so they travel in the bundle's
weights file beside the network (model.json says they are there and their sizes).

``UnknownScore(features)`` gives each image's in-distribution share (0: stranger than every
validation image). An older bundle has none; the model then cannot abstain and says so.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class UnknownScore(nn.Module):
    """Features (N, D) -> in-distribution share (N,), from the fitted statistics."""

    def __init__(self, classes: int, features: int, reference: int) -> None:
        super().__init__()
        self.register_buffer("means", torch.zeros(classes, features))
        self.register_buffer("precision", torch.zeros(features, features))
        self.register_buffer("reference", torch.zeros(reference, dtype=torch.float64))

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> UnknownScore:
        return cls(spec["classes"], spec["features"], spec["reference"])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.place(self.scores(features))

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Minus the smallest squared Mahalanobis distance to a class mean (float64)."""
        x = features.flatten(1).double()
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)  # the fit's unit-length features
        precision, means = self.precision.double(), self.means.double()
        projected = x @ precision
        own = (projected * x).sum(dim=1)
        cross = projected @ means.T
        centre = ((means @ precision) * means).sum(dim=1)
        return -(own[:, None] - 2 * cross + centre[None, :]).min(dim=1).values

    def place(self, scores: torch.Tensor) -> torch.Tensor:
        """The share of reference scores at or below each score (searchsorted, right side),
        written as a comparison the ONNX exporters translate."""
        if len(self.reference) == 0:
            return torch.ones_like(scores)
        placed = (self.reference[None, :] <= scores[:, None]).double().sum(dim=1)
        return placed / len(self.reference)
