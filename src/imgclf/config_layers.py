"""The layers of a custom stack (``model.layers``): a list of these, each checked by its type;
and the progressive sizes a pixel stage trains at (``train.progressive_sizes``).

Parts of the config schema (imgclf.config), kept in their own module for its size.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


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


def _sizes_list(value: Any) -> Any:
    """One size or a "128,160" / "0.5 0.75" text as a list: pixels as ints, fractions as floats."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        sizes = str(value).replace(",", " ").split()
        return [float(size) if "." in size else int(size) for size in sizes]
    return value


def _increasing_sizes(value: list[int | float]) -> list[int | float]:
    pixels = all(isinstance(size, int) and size >= 8 for size in value)
    fractions = all(isinstance(size, float) and 0 < size < 1 for size in value)
    if not (pixels or fractions) or value != sorted(set(value)):
        raise ValueError(
            "progressive_sizes must increase and be all pixels >= 8 or all fractions "
            f"between 0 and 1, received {value}"
        )
    return value


ProgressiveSizes = Annotated[
    list[int | float], BeforeValidator(_sizes_list), AfterValidator(_increasing_sizes)
]
