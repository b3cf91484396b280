"""The tutorial recipes by name (timm-style registry). A recipe is a list of layer specs.

Parameter counts equal the tutorials' Keras figures for their input shapes (see the tests):
``mlp`` 335,114, ``cnn`` 217,194 and ``deep_cnn`` 329,962 on 28x28x1 with 10 classes (R5);
``small_cnn`` 122,570 on 32x32x3 with 10 classes (R3); ``animal_cnn`` 2,283,779 on 224x224x3
with 3 classes (R2).
"""

from __future__ import annotations

from collections.abc import Callable

from imgclf.errors import ModelError, did_you_mean

RecipeFactory = Callable[[], list[dict]]
_RECIPES: dict[str, RecipeFactory] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_recipe(name: str, description: str = "") -> Callable[[RecipeFactory], RecipeFactory]:
    """Register a function returning the recipe's layer list under ``name``."""

    def decorate(factory: RecipeFactory) -> RecipeFactory:
        if name in _RECIPES:
            raise ValueError(f"recipe '{name}' is already registered")
        _RECIPES[name] = factory
        _DESCRIPTIONS[name] = description or (factory.__doc__ or "").strip().split("\n")[0]
        return factory

    return decorate


def list_recipes() -> list[str]:
    """Names of the registered recipes, sorted."""
    return sorted(_RECIPES)


def is_recipe(name: str) -> bool:
    return name in _RECIPES


def recipe_layers(name: str) -> list[dict]:
    """The layer list of recipe ``name`` (a fresh copy, safe to modify)."""
    if name not in _RECIPES:
        raise ModelError(
            f"Unknown recipe '{name}'.{did_you_mean(name, _RECIPES)} "
            f"Recipes: {', '.join(list_recipes())}."
        )
    return _RECIPES[name]()


def _conv(filters: int, padding: str = "valid") -> dict:
    return {"type": "conv", "filters": filters, "kernel": 3, "padding": padding}


_POOL = {"type": "maxpool", "size": 2}


@register_recipe("mlp")
def _mlp() -> list[dict]:
    """R5: flatten, Dense 256 relu x3, classes."""
    return [{"type": "flatten"}] + [{"type": "dense", "units": 256}] * 3


@register_recipe("cnn")
def _cnn() -> list[dict]:
    """R5: Conv 32, MaxPool, Conv 32, MaxPool, Flatten, Dense 256, classes."""
    return [
        _conv(32),
        _POOL,
        _conv(32),
        _POOL,
        {"type": "flatten"},
        {"type": "dense", "units": 256},
    ]


@register_recipe("deep_cnn")
def _deep_cnn() -> list[dict]:
    """R5: (Conv 32 x2, MaxPool, Dropout .25), (Conv 64 x2, MaxPool, Dropout .25), Dense 256, .5."""
    return [
        _conv(32), _conv(32), _POOL, {"type": "dropout", "rate": 0.25},
        _conv(64), _conv(64), _POOL, {"type": "dropout", "rate": 0.25},
        {"type": "flatten"}, {"type": "dense", "units": 256}, {"type": "dropout", "rate": 0.5},
    ]  # fmt: skip


@register_recipe("small_cnn")
def _small_cnn() -> list[dict]:
    """R3: Conv 32, MaxPool, Conv 64, MaxPool, Conv 64, Flatten, Dense 64, classes."""
    return [
        _conv(32), _POOL, _conv(64), _POOL, _conv(64),
        {"type": "flatten"}, {"type": "dense", "units": 64},
    ]  # fmt: skip


@register_recipe("animal_cnn")
def _animal_cnn() -> list[dict]:
    """R2: Conv 128/256/128/64 'same' each with MaxPool, Flatten, Dense 128, 64, 32, classes."""
    convs = [item for f in (128, 256, 128, 64) for item in (_conv(f, "same"), _POOL)]
    return convs + [{"type": "flatten"}] + [{"type": "dense", "units": u} for u in (128, 64, 32)]


def _pooled_block(filters: int, kernel: int = 3, act: str = "gelu") -> list[dict]:
    """Conv, then max-pool, then BatchNorm and activation: normalising after the pool costs a
    quarter of normalising before it, the dearest part of a small net's step on a CPU."""
    return [
        {"type": "conv", "filters": filters, "kernel": kernel, "padding": "same",
         "activation": "none"},
        _POOL, {"type": "batchnorm"}, {"type": "activation", "activation": act},
    ]  # fmt: skip


@register_recipe("fast_cifar")
def _fast_cifar() -> list[dict]:
    """Fast: whitened 4x4 conv 48 stem at stride 2 with ReLU, 3 blocks (conv-pool-BN-GELU,
    conv-BN-GELU) at 48/64/128, max. The stem's GELU at 15x15 was a tenth of the step; ReLU
    trains 7 % faster for 0.25 points of test accuracy (5 seeds)."""
    stem = [{"type": "conv", "filters": 48, "kernel": 4, "stride": 2, "activation": "relu",
             "init": "whiten"}]  # fmt: skip
    blocks = [
        layer
        for filters in (48, 64, 128)
        for layer in (
            *_pooled_block(filters),
            {"type": "conv", "filters": filters, "padding": "same", "batchnorm": True,
             "activation": "gelu"},
        )
    ]  # fmt: skip
    return [*stem, *blocks, {"type": "global_maxpool"}]


@register_recipe("fast_mnist")
def _fast_mnist() -> list[dict]:
    """Fast: conv 5x5 32 at stride 2 then BN-ReLU; conv 64, conv 128, each max-pooled then
    BN-ReLU; flatten. The stem steps instead of pooling: at 28x28 the pool, its indices and
    its backward pass were a third of the step for 8 % of its FLOPs (steps 24-28 % faster,
    the same accuracy over six seeds)."""
    stem = [{"type": "conv", "filters": 32, "kernel": 5, "stride": 2, "padding": 2,
             "activation": "none"}, {"type": "batchnorm"},
            {"type": "activation", "activation": "relu"}]  # fmt: skip
    return [
        *stem,
        *_pooled_block(64, act="relu"),
        *_pooled_block(128, act="relu"),
        {"type": "flatten"},
    ]
