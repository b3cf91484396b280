"""Recipes match the tutorials' Keras parameter counts; custom stacks validate every layer."""

from __future__ import annotations

import re

import pytest
import torch

from imgclf.config import ModelConfig
from imgclf.config_loader import build_config
from imgclf.errors import ConfigError, ModelError
from imgclf.models.layers import build_stack
from imgclf.models.network import build_model
from imgclf.models.recipes import list_recipes, recipe_layers, register_recipe

KERAS_COUNTS = [  # recipe, input (C, H, W), classes, the tutorial's Keras parameter count
    ("mlp", (1, 28, 28), 10, 335_114),
    ("cnn", (1, 28, 28), 10, 217_194),
    ("deep_cnn", (1, 28, 28), 10, 329_962),
    ("small_cnn", (3, 32, 32), 10, 122_570),
    ("animal_cnn", (3, 224, 224), 3, 2_283_779),
]


@pytest.mark.parametrize(("name", "shape", "classes", "expected"), KERAS_COUNTS)
def test_recipe_parameter_counts_equal_the_tutorials(name, shape, classes, expected) -> None:
    net, _ = build_stack(recipe_layers(name), shape, classes)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_recipe_model_runs_on_uint8_pixels() -> None:
    model = build_model(ModelConfig(name="small_cnn"), list("abc"), 3, (32, 32)).eval()
    logits = model(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    assert logits.shape == (2, 3)
    assert model.preprocess_spec.mean == (0.0,) and model.preprocess_spec.rescale == 1 / 255


def test_deep_cnn_has_the_three_dropouts() -> None:
    net, _ = build_stack(recipe_layers("deep_cnn"), (1, 28, 28), 10)
    assert [m.p for m in net if isinstance(m, torch.nn.Dropout)] == [0.25, 0.25, 0.5]


def test_recipes_are_listed_and_unknown_names_suggest() -> None:
    assert {"mlp", "cnn", "deep_cnn", "small_cnn", "animal_cnn"} <= set(list_recipes())
    with pytest.raises(ModelError, match="Did you mean 'deep_cnn'"):
        recipe_layers("deep_cn")
    with pytest.raises(ValueError, match="already registered"):
        register_recipe("cnn")(lambda: [])


def test_custom_stack_from_yaml_like_config() -> None:
    cfg = build_config(
        {
            "model": {
                "name": "custom",
                "layers": [
                    {"type": "conv", "filters": 8, "padding": "same"},
                    {"type": "batchnorm"},
                    {"type": "maxpool"},
                    {"type": "global_avgpool"},
                    {"type": "dropout", "rate": 0.2},
                    {"type": "dense", "units": 16, "activation": "gelu"},
                ],
            }
        }
    )
    model = build_model(cfg.model, ["x", "y"], 1, (8, 8)).eval()
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 2)


@pytest.mark.parametrize(
    ("layers", "phrase"),
    [
        ([{"type": "conv"}], "filters"),
        ([{"type": "conv", "filters": 8, "kernel": 0}], "kernel"),
        ([{"type": "dropout", "rate": 1.5}], "rate"),
        ([{"type": "dense", "units": 4, "activation": "swish2"}], "activation"),
        ([{"type": "pooling"}], "type"),
    ],
)
def test_bad_layer_specs_fail_in_config_with_the_layer(layers, phrase) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"model": {"name": "custom", "layers": layers}})
    assert "model.layers.0" in str(info.value) and phrase in str(info.value)


@pytest.mark.parametrize(
    ("layers", "phrase"),
    [
        ([{"type": "flatten"}, {"type": "conv", "filters": 4}], "layer 1 (conv) needs a"),
        ([{"type": "maxpool", "size": 5}], "layer 0 (maxpool 5) receives a 4x4 map"),
        ([{"type": "conv", "filters": 4, "kernel": 7}], "too small for its kernel"),
        ([{"type": "conv", "filters": 4, "stride": 2, "padding": "same"}], "needs stride 1"),
    ],
)
def test_layers_that_do_not_fit_the_shape_name_the_layer(layers, phrase) -> None:
    with pytest.raises(ModelError, match=re.escape(phrase)):
        build_stack(layers, (1, 4, 4), 2)


def test_custom_needs_layers_and_layers_need_custom() -> None:
    with pytest.raises(ConfigError, match="needs a list of layers"):
        build_config(model="custom")
    with pytest.raises(ConfigError, match="name must be 'custom'"):
        build_config({"model": {"name": "cnn", "layers": [{"type": "flatten"}]}})


def test_one_class_is_refused() -> None:
    with pytest.raises(ModelError, match="at least 2 classes"):
        build_model(ModelConfig(name="cnn"), ["only"], 1, (28, 28))


def _conv_params(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def test_the_fast_recipes_parameter_counts_follow_their_layers() -> None:
    bn = 2  # weight and bias per channel
    cifar = _conv_params(3, 48, 4)
    for cin, width in ((48, 48), (48, 64), (64, 128)):  # conv, pool, BN; conv-BN (no bias)
        cifar += _conv_params(cin, width, 3) + bn * width
        cifar += _conv_params(width, width, 3, bias=False) + bn * width
    cifar += 128 * 10 + 10
    mnist = _conv_params(1, 32, 5) + bn * 32 + _conv_params(32, 64, 3) + bn * 64
    mnist += _conv_params(64, 128, 3) + bn * 128 + 128 * 3 * 3 * 10 + 10
    for name, shape, expected in (
        ("fast_cifar", (3, 32, 32), cifar),
        ("fast_mnist", (1, 28, 28), mnist),
    ):
        net, _ = build_stack(recipe_layers(name), shape, 10)
        assert sum(p.numel() for p in net.parameters()) == expected
    assert (cifar, mnist) == (332_010, 105_162)


def test_an_activation_layer_and_a_conv_with_batchnorm() -> None:
    layers = [
        {"type": "conv", "filters": 4, "padding": "same", "batchnorm": True, "activation": "gelu"},
        {"type": "conv", "filters": 4, "activation": "none"},
        {"type": "activation", "activation": "silu"},
    ]
    net, shape = build_stack(layers, (3, 8, 8), 2)
    kinds = [type(m).__name__ for m in net]
    assert kinds[:5] == ["Conv2d", "BatchNorm2d", "GELU", "Conv2d", "SiLU"]
    assert net[0].bias is None and net[3].bias is not None  # a bias before BatchNorm is moot
    assert shape == (4 * 6 * 6,)
    with pytest.raises(ModelError, match="layer 0"):
        build_stack([{"type": "activation", "activation": "swish"}], (3, 8, 8), 2)


def test_a_recipe_on_images_too_small_names_the_size_it_needs() -> None:
    with pytest.raises(ModelError) as caught:
        build_model(ModelConfig(name="cnn"), ["a", "b"], channels=1, image_size=(8, 8))
    message = str(caught.value)
    assert message.startswith("model 'cnn' needs images of at least 10x10 px, received 8x8")
    assert "layer 3 (maxpool 2) receives a 1x1 map" in message
    assert "pass --image-size 10 or more" in message
    build_model(ModelConfig(name="cnn"), ["a", "b"], channels=1, image_size=(10, 10))
