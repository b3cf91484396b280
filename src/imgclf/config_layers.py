"""The layers of a custom stack (``model.layers``): a list of these, each checked by its type.

A part of the config schema (imgclf.config), kept in its own module for its size.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Activation = Literal["relu", "gelu", "silu", "tanh", "sigmoid", "elu", "leaky_relu", "none"]
Padding = Literal["valid", "same"]


class ConvLayer(_Layer):
    type: Literal["conv"]
    filters: int = Field(gt=0)
    kernel: int = Field(3, gt=0)
    stride: int = Field(1, gt=0)
    padding: Padding | int = "valid"
    activation: Activation = "relu"
    batchnorm: bool = Field(False, description="BatchNorm between the conv and its activation.")
    init: Literal["default", "whiten"] = Field(
        "default",
        description="whiten: the first layer's filters start as the whitening transform of the "
        "training images' kernel x kernel patches, fitted on them before training (airbench's "
        "stem); an even number of filters, at most 2 x channels x kernel^2.",
    )


class PoolLayer(_Layer):
    type: Literal["maxpool", "avgpool"]
    size: int = Field(2, gt=0)
    stride: int | None = Field(None, gt=0)


class GlobalPoolLayer(_Layer):
    type: Literal["global_avgpool", "global_maxpool"]


class BatchNormLayer(_Layer):
    type: Literal["batchnorm"]


class ActivationLayer(_Layer):
    type: Literal["activation"]
    activation: Activation


class DropoutLayer(_Layer):
    type: Literal["dropout"]
    rate: float = Field(ge=0.0, lt=1.0)


class FlattenLayer(_Layer):
    type: Literal["flatten"]


class DenseLayer(_Layer):
    type: Literal["dense"]
    units: int = Field(gt=0)
    activation: Activation = "relu"


LayerSpec = Annotated[
    ConvLayer
    | PoolLayer
    | GlobalPoolLayer
    | BatchNormLayer
    | ActivationLayer
    | DropoutLayer
    | FlattenLayer
    | DenseLayer,
    Field(discriminator="type"),
]
