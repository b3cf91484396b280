"""Freezing policies and parameter groups for discriminative learning rates.

- ``feature_extract``: the whole backbone frozen, BatchNorm statistics frozen; only the head
  trains.
- ``finetune``: the backbone frozen except ``unfreeze`` (the last N blocks in timm's own block
  grouping, a list of module names (Keras names of VGG16/InceptionV3 accepted), or ``all``);
  BatchNorm statistics frozen unless ``freeze_bn: false``.
- ``scratch``: everything trains (no pretrained weights are loaded).
Recipes and custom stacks always train all their layers.
"""

from __future__ import annotations

from torch import nn

from imgclf.config import ModelConfig
from imgclf.errors import ModelError, did_you_mean

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def apply_policy(model: nn.Module, cfg: ModelConfig) -> None:
    """Set ``requires_grad`` and the frozen-BatchNorm list of ``model`` for ``cfg``."""
    model.requires_grad_(True)
    model.frozen_bn = []
    if not model.has_backbone or cfg.mode == "scratch":
        return
    backbone = model.features
    backbone.requires_grad_(False)
    if cfg.mode == "finetune":
        for prefix in unfrozen_prefixes(backbone, cfg):
            _module(backbone.model, prefix, cfg.name).requires_grad_(True)
    if cfg.mode == "feature_extract" or cfg.freeze_bn:
        model.frozen_bn = [
            name for name, module in model.named_modules()
            if isinstance(module, _BATCHNORM) and name.startswith("features.")
        ]  # fmt: skip
    model.train(model.training)


def unfrozen_prefixes(backbone: nn.Module, cfg: ModelConfig) -> list[str]:
    """Module names (inside the timm model) that finetune unfreezes."""
    from imgclf.models.backbones import resolve_module_name

    if cfg.unfreeze == "all":
        return [""]
    if isinstance(cfg.unfreeze, list):
        return [resolve_module_name(cfg.name, name) for name in cfg.unfreeze]
    groups = block_groups(backbone.model)
    return (
        [name for group in groups[len(groups) - cfg.unfreeze :] for name in group]
        if cfg.unfreeze
        else []
    )


def block_groups(model: nn.Module) -> list[list[str]]:
    """The backbone's blocks in order (timm's coarse grouping), as lists of module names."""
    from timm.models import group_modules

    groups = group_modules(model, model.group_matcher(coarse=True))
    return [names for _, names in sorted(groups.items()) if names]


def param_groups(model: nn.Module, cfg: ModelConfig, lr: float) -> list[dict]:
    """Optimizer groups: the head at ``lr``, the trainable backbone at ``lr * backbone_lr``,
    decaying by ``layer_decay`` per block from the top when set."""
    head = [p for p in model.head.parameters() if p.requires_grad]
    groups = [{"params": head, "lr": lr, "name": "head"}]
    if not model.has_backbone:
        trainable = [p for p in model.features.parameters() if p.requires_grad]
        groups[0]["params"] = trainable + head
        return groups
    blocks = block_groups(model.features.model)
    named = dict(model.features.model.named_parameters())
    for depth, names in enumerate(reversed(blocks)):
        params = [p for n, p in named.items() if p.requires_grad and _in_any(n, names)]
        if params:
            scale = cfg.backbone_lr * (cfg.layer_decay or 1.0) ** depth
            groups.append(
                {"params": params, "lr": lr * scale, "name": f"block-{len(blocks) - 1 - depth}"}
            )
    return groups


def _in_any(param_name: str, modules: list[str]) -> bool:
    return any(param_name == m or param_name.startswith(m + ".") for m in modules)


def _module(model: nn.Module, name: str, backbone_name: str) -> nn.Module:
    if name == "":
        return model
    modules = dict(model.named_modules())
    if name not in modules:
        from imgclf.models.backbones import KERAS_LAYER_NAMES, timm_name

        known = [n for n in modules if n] + list(
            KERAS_LAYER_NAMES.get(timm_name(backbone_name), {})
        )
        raise ModelError(
            f"unfreeze names a layer '{name}' that {backbone_name} does not have."
            f"{did_you_mean(name, known)} See `imgclf summary {backbone_name} --depth 2` for names."
        )
    return modules[name]
