"""The unknown score as a part of the network: each layer's class means and shared precision
matrix, their validation mean and spread, and the validation reference of ``evaluate.unknown``,
kept as buffers so they travel in the bundle's weights file beside the network (model.json says
they are there, which stages are tapped and their sizes).

``UnknownScore(features, taps)`` gives each image's in-distribution share (0: stranger than
every validation image), from the classifier's features and the spatial means of the stages
that ``tapped`` collects during the same forward pass. A bundle from before the stages has the
classifier's features alone (and no mean and spread to standardise by), and still answers as it
did; an older one has no score: the model then cannot abstain and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from imgclf.models.hooks import CONTAINERS, output_shapes

_NOT_OUTPUTS = (  # what other layers read after a nonlinearity: the stage is what follows them
    nn.modules.conv._ConvNd,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
)


def find_stages(features: nn.Module, example: torch.Tensor) -> list[str]:
    """The stages of a feature extractor: at each spatial resolution of its maps, the outermost
    module (fewest dots in its name) that finishes last there: a block after its residual sum,
    an activation after its convolution, not a sub-layer of the next block. Named within
    ``features``, in the order they run; no spatial map (an MLP, a transformer's tokens): no
    stages. ``example``: pixels as ``features`` takes them."""
    outputs = output_shapes(features, lambda: features.eval()(example[:1]),
                            skip=CONTAINERS + _NOT_OUTPUTS)  # fmt: skip
    seen = [(shape[2:], name.count("."), name) for name, _, shape in outputs
            if len(shape) == 4 and shape[2] * shape[3] > 1]  # fmt: skip
    chosen: dict[tuple[int, int], tuple[int, int, str]] = {}
    for order, (size, depth, name) in enumerate(seen):
        if size not in chosen or depth <= chosen[size][0]:
            chosen[size] = (depth, order, name)
    return [name for _, _, name in sorted(chosen.values(), key=lambda item: item[1])]


def model_stages(model, images) -> list[str]:
    """``find_stages`` of an ImageModel's features, found on the first of ``images`` (N, H, W,
    C uint8, numpy): what the unknown score taps, and what the embed-once pass keeps for it."""
    example = torch.from_numpy(images[:1].copy()).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        pixels = example.to(next(model.parameters()).device)
        return find_stages(model.features, model.preprocess(pixels))


@contextmanager
def tapped(features: nn.Module, stages: list[str]) -> Iterator[dict[int, torch.Tensor]]:
    """While open, each forward pass of ``features`` leaves the spatial mean (N, C) of stage
    i's output at key i of the yielded dict."""
    taps: dict[int, torch.Tensor] = {}
    modules = dict(features.named_modules())

    def hook(index: int):
        def keep(_module, _inputs, output) -> None:
            taps[index] = output.float().mean(dim=(2, 3))

        return keep

    handles = [modules[name].register_forward_hook(hook(i)) for i, name in enumerate(stages)]
    try:
        yield taps
    finally:
        for handle in handles:
            handle.remove()


class UnknownScore(nn.Module):
    """Features (N, D) and stage taps -> in-distribution share (N,), from the fitted
    statistics. ``stages`` names the tapped modules and their widths; ``standardised`` is
    False for a bundle from before the stages (its score is the features' alone)."""

    def __init__(
        self,
        classes: int,
        features: int,
        reference: int,
        stages: list[tuple[str, int]] = (),
        standardised: bool = True,
    ) -> None:
        super().__init__()
        self.stages = [name for name, _ in stages]
        for i, (_, width) in enumerate(stages):
            self.register_buffer(f"stage{i}_means", torch.zeros(classes, width))
            self.register_buffer(f"stage{i}_precision", torch.zeros(width, width))
        self.register_buffer("means", torch.zeros(classes, features))
        self.register_buffer("precision", torch.zeros(features, features))
        self.standardised = standardised
        if standardised:
            self.register_buffer("centre", torch.zeros(len(stages) + 1, dtype=torch.float64))
            self.register_buffer("scale", torch.ones(len(stages) + 1, dtype=torch.float64))
        self.register_buffer("reference", torch.zeros(reference, dtype=torch.float64))

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> UnknownScore:
        stages = [(stage["module"], stage["channels"]) for stage in spec.get("stages", [])]
        return cls(spec["classes"], spec["features"], spec["reference"], stages,
                   standardised="stages" in spec)  # fmt: skip

    def forward(self, features: torch.Tensor, taps: dict[int, torch.Tensor]) -> torch.Tensor:
        return self.place(self.scores(features, taps))

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's (means, precision): the stages', then the features'."""
        stages = [(getattr(self, f"stage{i}_means"), getattr(self, f"stage{i}_precision"))
                  for i in range(len(self.stages))]  # fmt: skip
        return [*stages, (self.means, self.precision)]

    def scores(self, features: torch.Tensor, taps: dict[int, torch.Tensor]) -> torch.Tensor:
        """The raw score (float64, higher: more typical): the standardised layers' sum."""
        inputs = [taps[i] for i in range(len(self.stages))] + [features]
        raw = [_mahalanobis(x, *layer) for x, layer in zip(inputs, self.layers(), strict=True)]
        if not self.standardised:
            return raw[-1]
        return ((torch.stack(raw, dim=1) - self.centre) / self.scale).sum(dim=1)

    def place(self, scores: torch.Tensor) -> torch.Tensor:
        """The share of reference scores at or below each score (searchsorted, right side),
        written as a comparison the ONNX exporters translate."""
        if len(self.reference) == 0:
            return torch.ones_like(scores)
        placed = (self.reference[None, :] <= scores[:, None]).double().sum(dim=1)
        return placed / len(self.reference)


def _mahalanobis(
    features: torch.Tensor, means: torch.Tensor, precision: torch.Tensor
) -> torch.Tensor:
    """Minus the smallest squared Mahalanobis distance of the unit-length features to a class
    mean (float64)."""
    x = features.flatten(1).double()
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)  # the fit's unit-length features
    precision, means = precision.double(), means.double()
    projected = x @ precision
    own = (projected * x).sum(dim=1)
    cross = projected @ means.T
    centre = ((means @ precision) * means).sum(dim=1)
    return -(own[:, None] - 2 * cross + centre[None, :]).min(dim=1).values
