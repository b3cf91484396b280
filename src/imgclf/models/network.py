"""ImageModel: preprocessing + features + head, described by a spec that rebuilds it.

``build_model`` turns a ModelConfig plus the data's shape and classes into an ImageModel with
its freezing policy applied. The spec (``model.spec``) is what the bundle stores as JSON: with
it and the weights, the same network is rebuilt without pickles or downloads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from imgclf._version import __version__
from imgclf.config import ModelConfig
from imgclf.errors import ModelError
from imgclf.models.backbones import backbone_preprocess, create_backbone
from imgclf.models.conformal import ConformalScores
from imgclf.models.freeze import apply_policy
from imgclf.models.heads import build_head
from imgclf.models.inference import eval_mode
from imgclf.models.layers import MapTooSmall, build_stack, smallest_input
from imgclf.models.preprocess import Preprocess, PreprocessSpec
from imgclf.models.recipes import is_recipe, recipe_layers
from imgclf.models.unknown import UnknownScore, tapped

SPEC_FORMAT = 1


class ImageModel(nn.Module):
    """Pixels (N, C, H, W, uint8 or float 0..255) in, class logits out."""

    def __init__(
        self,
        preprocess: Preprocess,
        features: nn.Module,
        head: nn.Module,
        spec: dict[str, Any],
    ) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.features = features
        self.head = head
        self.spec = spec
        self.frozen_bn: list[str] = []
        calibration = spec.get("calibration") or {}
        self.temperature: float | None = calibration.get("temperature")  # logits / T
        unknown = spec.get("unknown")
        self.unknown = UnknownScore.from_spec(unknown) if unknown else None
        conformal = spec.get("sets")
        self.conformal = ConformalScores(conformal["scores"]) if conformal else None

    @property
    def classes(self) -> list[str]:
        return list(self.spec["classes"])

    @property
    def preprocess_spec(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.spec["preprocess"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(self.preprocess(x)))
        return logits if self.temperature is None else logits / self.temperature

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The temperature fitted after training and how it was measured (None: uncalibrated,
        e.g. a bundle from before calibration, or a run without a validation split)."""
        return self.spec.get("calibration")

    def calibrate(self, temperature: float, **measured: Any) -> None:
        """Divide the logits by ``temperature`` from now on (in ``forward`` and ``classifier``,
        so every path that runs the network, ONNX included, gives calibrated probabilities),
        and record it with ``measured`` (what it was fitted on) in the spec the bundle saves."""
        if not temperature > 0:
            raise ValueError(f"a temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.spec["calibration"] = {"temperature": float(temperature), **measured}

    def fit_unknown(self, stages: list[str], fit: Any, **measured: Any) -> None:
        """Keep the unknown score's statistics (``evaluate.unknown.UnknownFit``: each layer's
        class means and shared precision, the stages' then the features', their validation
        mean and spread, the sorted validation scores) as buffers, tapping ``stages`` (names in
        ``self.features``), and say so in the spec, with ``measured`` (what they were fitted
        on)."""
        *staged, last = fit.layers
        pairs = zip(stages, staged, strict=True)
        widths = [(name, int(layer.means.shape[1])) for name, layer in pairs]
        module = UnknownScore(len(last.means), last.means.shape[1], len(fit.reference), widths)
        for (means, precision), layer in zip(module.layers(), fit.layers, strict=True):
            means.copy_(torch.from_numpy(layer.means))
            precision.copy_(torch.from_numpy(layer.precision))
        module.centre.copy_(torch.from_numpy(np.asarray(fit.centre, dtype=np.float64)))
        module.scale.copy_(torch.from_numpy(np.asarray(fit.scale, dtype=np.float64)))
        module.reference.copy_(torch.from_numpy(np.asarray(fit.reference, dtype=np.float64)))
        self.unknown = module.to(next(self.head.parameters()).device)
        self.spec["unknown"] = {
            "score": "mahalanobis", "classes": len(last.means),
            "features": int(last.means.shape[1]), "reference": len(fit.reference),
            "stages": [{"module": name, "channels": width} for name, width in widths],
            **measured,
        }  # fmt: skip

    def fit_sets(self, scores: np.ndarray, **measured: Any) -> None:
        """Keep the validation split's conformity scores (``evaluate.conformal``) as a buffer,
        and say so in the spec with ``measured`` (the method, what they were fitted on)."""
        module = ConformalScores(len(scores))
        module.scores.copy_(torch.from_numpy(np.sort(np.asarray(scores, dtype=np.float64))))
        self.conformal = module.to(next(self.head.parameters()).device)
        self.spec["sets"] = {"scores": len(scores), **measured}

    def answer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, each image's in-distribution share, or None without an unknown score),
        from one pass: the score reads the classifier's features and the stages it taps."""
        logits, scores = self.unknown_scores(x)
        return logits, (None if scores is None else self.unknown.place(scores))

    def unknown_scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, each image's raw unknown score before it is placed among the validation
        scores, or None without an unknown score), from one pass."""
        if self.unknown is None:
            return self.classifier(self.embed(x)), None
        with tapped(self.features, self.unknown.stages) as taps:
            features = self.embed(x)
        return self.classifier(features), self.unknown.scores(features, taps)

    @property
    def has_backbone(self) -> bool:
        """A timm backbone + head (pretrained-style), not a recipe or custom layer stack."""
        return hasattr(self.features, "model")

    @property
    def pooling(self) -> nn.Sequential:
        """The head's leading layers without weights or randomness (pooling, flatten)."""
        return self.head[: _fixed_prefix(self.head)]

    @property
    def classifier(self) -> nn.Sequential:
        """The head after its pooling: the part that trains on cached embeddings (with the
        calibration's temperature last, once there is one)."""
        layers = self.head[_fixed_prefix(self.head) :]
        return layers if self.temperature is None else layers.append(Temperature(self.temperature))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels to the pooled features the classifier reads (what feature extraction caches)."""
        return self.pooling(self.features(self.preprocess(x)))

    def train(self, mode: bool = True) -> ImageModel:
        """Like nn.Module.train, but frozen BatchNorm layers stay in eval mode."""
        super().train(mode)
        modules = dict(self.named_modules())
        for name in self.frozen_bn:
            modules[name].eval()
        return self

    def summary(self, depth: int = 1, print_table: bool | None = None):
        """The Keras-style table of layers, output shapes and parameter counts, printed
        (``print_table`` None: except in a notebook, where the returned summary shows itself)."""
        from imgclf import notebook
        from imgclf.models.summary import model_summary

        result = model_summary(self, depth=depth)
        if print_table or (print_table is None and not notebook.in_notebook()):
            result.print()
        return result


class Temperature(nn.Module):
    """Logits / T, the calibration's temperature, as a layer (``ImageModel.classifier``'s
    last). It holds no tensor: the bundle's weights are the same with or without it."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = float(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.value

    def extra_repr(self) -> str:
        return f"{self.value:.4g}"


def _fixed_prefix(head: nn.Sequential) -> int:
    """How many leading head modules hold no parameters and behave the same in training."""
    for index, module in enumerate(head):
        if any(True for _ in module.parameters()) or isinstance(module, nn.Dropout):
            return index
    return len(head)


def build_model(
    cfg: ModelConfig,
    classes: list[str],
    channels: int,
    image_size: tuple[int, int] | None = None,
    rescale: float = 1 / 255,
    fit: str = "resize",
    load_weights: bool = True,
) -> ImageModel:
    """Build the network ``cfg`` describes for data with ``channels`` and ``classes``.

    Args:
        image_size: (H, W) the data is fitted to; None takes the backbone's pretrained size.
        load_weights: False builds the architecture only (summary, loading a bundle).
    """
    if len(classes) < 2:
        raise ModelError(f"A classifier needs at least 2 classes, received {len(classes)}.")
    spec = _spec(cfg, classes, channels, image_size, rescale, fit)
    return model_from_spec(spec, load_weights=load_weights)


def _stack_for(name: str, layers, shape: tuple[int, int, int], num_classes: int) -> nn.Sequential:
    """The layer stack, or an error that names the image size the layers need."""
    try:
        return build_stack(layers, shape, num_classes)[0]
    except MapTooSmall as err:
        size = smallest_input(layers, shape[0])
        if size is None:
            raise
        raise MapTooSmall(
            f"model '{name}' needs images of at least {size}x{size} px, received "
            f"{shape[1]}x{shape[2]} ({err.where}): pass --image-size {size} or more "
            "(image_size in Python and YAML).",
            err.where,
        ) from None


def model_from_spec(spec: dict[str, Any], load_weights: bool = False) -> ImageModel:
    """Rebuild an ImageModel from its spec (weights are loaded separately by the bundle)."""
    cfg = ModelConfig.model_validate(spec["model"])
    pre = PreprocessSpec.from_dict(spec["preprocess"])
    height, width = pre.image_size
    num_classes = len(spec["classes"])
    if cfg.name == "custom" or is_recipe(cfg.name):
        layers = cfg.layers if cfg.name == "custom" else recipe_layers(cfg.name)
        stack = _stack_for(cfg.name, layers, (pre.channels, height, width), num_classes)
        features, head = stack[:-1], nn.Sequential(stack[-1])
        preprocess = Preprocess(pre, network_channels=pre.channels)
    else:
        features = create_backbone(cfg, load_weights=load_weights)
        preprocess = Preprocess(pre, network_channels=3)
        shape = _feature_shape(features, height, width)
        head = build_head(cfg.head, shape, num_classes)
    model = ImageModel(preprocess, features, head, spec)
    apply_policy(model, cfg)
    return model.to(memory_format=torch.channels_last)


def _spec(cfg, classes, channels, image_size, rescale, fit) -> dict[str, Any]:
    if cfg.name == "custom" or is_recipe(cfg.name):
        if image_size is None:
            raise ModelError(
                f"Recipe '{cfg.name}' needs the image size of the data, received image_size=None "
                "(only timm backbones have a default size). Pass image_size=(height, width)."
            )
        values = {"image_size": image_size, "mean": (0.0,), "std": (1.0,)}
        values.update(cfg.preprocess.model_dump(exclude_none=True))
    else:
        values = backbone_preprocess(cfg)
        values["image_size"] = image_size or values.pop("input_size")
        values.pop("input_size", None)
    pre = PreprocessSpec(channels=channels, rescale=rescale, fit=fit, **values)
    return {
        "format": SPEC_FORMAT,
        "imgclf_version": __version__,
        "model": cfg.model_dump(mode="json"),
        "classes": list(classes),
        "preprocess": pre.to_dict(),
    }


@torch.inference_mode()
def _feature_shape(features: nn.Module, height: int, width: int) -> tuple[int, ...]:
    try:
        with eval_mode(features):
            out = features(torch.zeros(1, 3, height, width))
    except RuntimeError as exc:
        raise ModelError(
            f"The backbone cannot run on {height}x{width} images ({exc}). Use a larger image_size."
        ) from None
    return tuple(out.shape[1:])
