"""Freezing policies: trainable counts, BatchNorm modes and learning-rate groups."""

from __future__ import annotations

import pytest
import torch

from imgclf.config import ModelConfig
from imgclf.errors import ModelError
from imgclf.models.freeze import apply_policy, param_groups
from imgclf.models.network import build_model

R2_HEAD = {"pooling": "flatten", "dense": [128, 64, 32]}


def _counts(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters()) - trainable


@pytest.fixture(scope="module")
def vgg():
    """R2's VGG16 + head, built once (VGG16 takes seconds); each test re-applies a policy."""
    cfg = ModelConfig(name="vgg16", pretrained=False, head=R2_HEAD)
    model = build_model(cfg, ["hedgehog", "hamster", "poodle"], 3, (224, 224), load_weights=False)

    def with_policy(**kwargs):
        apply_policy(model, ModelConfig(name="vgg16", pretrained=False, head=R2_HEAD, **kwargs))
        return model

    return with_policy


def test_r2_vgg16_feature_extraction_counts(vgg) -> None:
    assert _counts(vgg(mode="feature_extract")) == (3_221_827, 14_714_688)


@pytest.mark.parametrize("unfreeze", [["block5_conv3"], ["features.28"], 1])
def test_r2_vgg16_finetune_block5_conv3_counts(vgg, unfreeze) -> None:
    trainable, frozen = _counts(vgg(mode="finetune", unfreeze=unfreeze))
    assert trainable == 3_221_827 + 2_359_808 == 5_581_635
    assert frozen == 14_714_688 - 2_359_808


def test_unknown_layer_name_suggests(vgg) -> None:
    with pytest.raises(ModelError, match="Did you mean 'block5_conv3'"):
        vgg(mode="finetune", unfreeze=["block5_conv4"])


@pytest.fixture(scope="module")
def lite0_pieces():
    def build(**kwargs):
        cfg = ModelConfig(name="efficientnet_lite0", **kwargs)
        return cfg, build_model(cfg, ["a", "b"], 3, (64, 64), load_weights=False)

    return build


def test_feature_extract_freezes_backbone_and_batchnorm(lite0_pieces) -> None:
    _, model = lite0_pieces(mode="feature_extract")
    assert not any(p.requires_grad for p in model.features.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    batchnorms = [m for m in model.features.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms and not any(m.training for m in batchnorms)
    before = batchnorms[0].running_mean.clone()
    model(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    assert torch.equal(before, batchnorms[0].running_mean)  # statistics really frozen


def test_finetune_last_blocks_and_bn_option(lite0_pieces) -> None:
    _, model = lite0_pieces(mode="finetune", unfreeze=1)
    trainable = {n.split(".")[1] for n, p in model.features.named_parameters() if p.requires_grad}
    assert trainable == {"blocks", "conv_head", "bn2"}
    assert not model.features.model.blocks[5][0].conv_pw.weight.requires_grad
    assert model.features.model.blocks[6][0].conv_pw.weight.requires_grad
    model.train()
    assert not model.features.model.bn2.training
    _, unfrozen_bn = lite0_pieces(mode="finetune", unfreeze=1, freeze_bn=False)
    unfrozen_bn.train()
    assert unfrozen_bn.features.model.bn2.training


def test_finetune_all_and_scratch_train_everything(lite0_pieces) -> None:
    for kwargs in ({"mode": "finetune", "unfreeze": "all"}, {"mode": "scratch"}):
        _, model = lite0_pieces(**kwargs)
        assert all(p.requires_grad for p in model.parameters())


def test_discriminative_learning_rates(lite0_pieces) -> None:
    cfg, model = lite0_pieces(mode="finetune", unfreeze=3, backbone_lr=0.1, layer_decay=0.5)
    groups = param_groups(model, cfg, lr=1e-2)
    assert groups[0]["name"] == "head" and groups[0]["lr"] == 1e-2
    assert [g["lr"] for g in groups[1:]] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    covered = sum(p.numel() for g in groups for p in g["params"])
    assert covered == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_recipe_param_groups_hold_every_parameter() -> None:
    cfg = ModelConfig(name="cnn")
    model = build_model(cfg, ["a", "b"], 1, (28, 28))
    (group,) = param_groups(model, cfg, lr=0.01)
    assert sum(p.numel() for p in group["params"]) == sum(p.numel() for p in model.parameters())


def test_token_backbone_uses_timm_pooling() -> None:
    cfg = ModelConfig(name="vit_tiny_patch16_224", pretrained=False, unfreeze=1)
    model = build_model(cfg, ["a", "b"], 3, None, load_weights=False).eval()
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 2)
    assert model.head[-1].in_features == 192
