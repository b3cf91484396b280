"""Any timm model as a backbone: created headless, weights resolved, preprocessing read off.

``efficientnet_lite0`` means timm's ``tf_efficientnet_lite0`` with the offline ImageNet weights
(see weights.py). Keras layer names of the tutorials' two bases (VGG16, InceptionV3) are
accepted wherever a module name is expected; KERAS_LAYER_NAMES documents the mapping.
"""

from __future__ import annotations

import torch
from torch import nn

from imgclf.config import ModelConfig
from imgclf.errors import ModelError, did_you_mean
from imgclf.models.weights import (
    LITE0_TIMM_NAME,
    OFFLINE_LITE0,
    hub_error,
    lite0_state_dict,
    load_into,
    map_in_order,
    read_state_dict,
)

# Keras application layer name -> timm module name (VGG16 conv/pool layers; InceptionV3 blocks).
KERAS_LAYER_NAMES: dict[str, dict[str, str]] = {
    "vgg16": {
        f"block{block}_{layer}": f"features.{index}"
        for block, layers in enumerate(
            [
                [("conv1", 0), ("conv2", 2), ("pool", 4)],
                [("conv1", 5), ("conv2", 7), ("pool", 9)],
                [("conv1", 10), ("conv2", 12), ("conv3", 14), ("pool", 16)],
                [("conv1", 17), ("conv2", 19), ("conv3", 21), ("pool", 23)],
                [("conv1", 24), ("conv2", 26), ("conv3", 28), ("pool", 30)],
            ],
            start=1,
        )
        for layer, index in layers
    },
    "inception_v3": {
        f"mixed{i}": name
        for i, name in enumerate(
            [
                "Mixed_5b",
                "Mixed_5c",
                "Mixed_5d",
                "Mixed_6a",
                "Mixed_6b",
                "Mixed_6c",
                "Mixed_6d",
                "Mixed_6e",
                "Mixed_7a",
                "Mixed_7b",
                "Mixed_7c",
            ]
        )  # fmt: skip
    },
}


def timm_name(name: str) -> str:
    """The timm architecture behind an imgclf model name."""
    return LITE0_TIMM_NAME if name == OFFLINE_LITE0 else name


class Backbone(nn.Module):
    """A headless timm model: ``forward`` returns its feature map (our head pools it), or for
    token models (ViT & co) the vector of timm's own pooling (class token or mean)."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.model.forward_features(x)
        if features.ndim != 4:
            features = self.model.forward_head(features, pre_logits=True)
        return features


def create_backbone(cfg: ModelConfig, load_weights: bool = True) -> Backbone:
    """Build the timm backbone of ``cfg`` and load its weights as ``cfg`` asks."""
    import timm

    arch = _known_arch(cfg.name)
    model = timm.create_model(arch, pretrained=False, num_classes=0)  # keeps timm's pooling
    if _has_params(getattr(model, "pre_logits", None)):
        model.pre_logits = (
            nn.Identity()
        )  # VGG's fc6/fc7 as convs: Keras's include_top=False drops them
    if load_weights:
        _load_weights(model, cfg, arch)
    return Backbone(model, cfg.name)


def backbone_preprocess(cfg: ModelConfig) -> dict:
    """input size, mean, std, interpolation and crop_pct from the backbone's pretrained config
    (read from timm's registry: no network is built for it)."""
    from timm.models import get_pretrained_cfg

    found = get_pretrained_cfg(_known_arch(cfg.name))
    pretrained = found.to_dict() if found is not None else {}
    values = {
        "input_size": tuple(pretrained.get("input_size", (3, 224, 224))[1:]),
        "mean": tuple(pretrained.get("mean", (0.485, 0.456, 0.406))),
        "std": tuple(pretrained.get("std", (0.229, 0.224, 0.225))),
        "interpolation": pretrained.get("interpolation", "bilinear"),
        "crop_pct": float(pretrained.get("crop_pct", 1.0)),
    }
    overrides = cfg.preprocess.model_dump(exclude_none=True)
    return {**values, **overrides}


def resolve_module_name(backbone_name: str, name: str) -> str:
    """A timm module name for ``name``, translating the Keras names of VGG16 / InceptionV3."""
    return KERAS_LAYER_NAMES.get(timm_name(backbone_name), {}).get(name, name)


def _load_weights(model: nn.Module, cfg: ModelConfig, arch: str) -> None:
    if cfg.weights is not None:
        load_into(model, read_state_dict(cfg.weights), str(cfg.weights))
    elif not cfg.pretrained or cfg.mode == "scratch":
        return
    elif cfg.name == OFFLINE_LITE0:
        load_into(model, map_in_order(lite0_state_dict(), model), "efficientnet-lite0 package")
    else:
        _load_from_hub(model, arch)


def _load_from_hub(model: nn.Module, arch: str) -> None:
    import timm

    try:
        pretrained = timm.create_model(arch, pretrained=True, num_classes=0)
    except Exception as exc:  # network, hub and missing-weights errors come in many types
        raise hub_error(arch, exc) from None
    load_into(model, pretrained.state_dict(), f"the hub ({arch})")


def _known_arch(name: str) -> str:
    import timm

    arch = timm_name(name)
    if not timm.is_model(arch):
        raise ModelError(_unknown_model_message(name))
    return arch


def _has_params(module: nn.Module | None) -> bool:
    return module is not None and any(True for _ in module.parameters())


def _unknown_model_message(name: str) -> str:
    import timm

    from imgclf.models.recipes import list_recipes

    candidates = [*list_recipes(), OFFLINE_LITE0, *timm.list_models()]
    return (
        f"Unknown model '{name}'.{did_you_mean(name, candidates)} Use a recipe "
        f"({', '.join(list_recipes())}), 'custom' with layers, or a timm model name "
        "(see timm.list_models())."
    )
