"""Build an nn.Sequential from a list of layer specs, tracking the shape as Keras does.

The same builder makes the tutorial recipes and user-defined stacks, so a recipe is just a named
list of layers. Input shapes flow through the stack: a bad layer (a 5x5 pool on a 2x2 map, a
conv after flatten) fails here with its index and the shape it received.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import TypeAdapter, ValidationError
from torch import nn

from imgclf.config import LayerSpec
from imgclf.errors import ModelError

Shape = tuple[int, ...]  # (C, H, W) for maps, (F,) after flatten / global pooling


class BatchDropout(nn.Dropout):
    """Dropout whose mask is drawn for the whole global batch, so that training in N
    processes drops what one process drops.

    Each call takes one seed from torch's generator (the same on every process: same seed,
    same draws; saved in resume checkpoints) and draws the mask of the global batch (this
    process's rows times the world size) from it; process r keeps rows r, r + W, ..., which
    are its rows of the global batch (see BatchLoader). Alone, it is ordinary dropout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        rank, world = _rank_and_world()
        seed = int(torch.randint(0, 2**62, (1,)))
        generator = torch.Generator(device=x.device).manual_seed(seed)
        mask = torch.empty((len(x) * world, *x.shape[1:]), device=x.device, dtype=x.dtype)
        keep = mask.bernoulli_(1.0 - self.p, generator=generator)[rank::world]
        return x * keep / (1.0 - self.p)


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module | None:
    """The activation module for a config name, or None for 'none'."""
    return None if name == "none" else _ACTIVATIONS[name]()


def parse_layers(layers: Sequence[dict | object]) -> list:
    """Validate raw dicts (from YAML/JSON/Python) into layer specs, naming the bad one."""
    adapter = TypeAdapter(LayerSpec)
    parsed = []
    for index, layer in enumerate(layers):
        try:
            parsed.append(adapter.validate_python(layer))
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ModelError(f"layer {index} ({layer!r}) is invalid: {details}") from None
    return parsed


class MapTooSmall(ModelError):
    """A layer's input map is smaller than its kernel or pool: the images are too small.

    ``where`` names the layer and the map it receives, for messages that add the fix.
    """

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


def smallest_input(layers: Sequence, channels: int, largest: int = 1024) -> int | None:
    """The smallest square image size (px) the layers accept, or None up to ``largest``."""
    for size in range(1, largest + 1):
        try:
            build_stack(layers, (channels, size, size), 2)
        except MapTooSmall:
            continue
        return size
    return None


def build_stack(layers: Sequence, in_shape: Shape, num_classes: int) -> tuple[nn.Sequential, Shape]:
    """The layers, then a final dense layer to ``num_classes`` logits (softmax lives in the loss).

    Returns:
        The network and the feature shape before the class layer.
    """
    modules: list[nn.Module] = []
    shape = tuple(in_shape)
    for index, spec in enumerate(parse_layers(layers)):
        built, shape = _build_layer(spec, shape, index)
        modules += built
    if len(shape) != 1:
        modules.append(nn.Flatten())
        shape = (_numel(shape),)
    modules.append(nn.Linear(shape[0], num_classes))
    return nn.Sequential(*modules), shape


def _build_layer(spec, shape: Shape, index: int) -> tuple[list[nn.Module], Shape]:
    kind = spec.type
    if kind in ("conv", "maxpool", "avgpool", "batchnorm", "global_avgpool", "global_maxpool"):
        if len(shape) != 3:
            raise ModelError(
                f"layer {index} ({kind}) needs a (channels, height, width) input, but the layers "
                f"before it produce a flat vector of shape {shape}. Move it before 'flatten' "
                "or 'dense'."
            )
    if kind == "conv":
        return _conv(spec, shape, index)
    if kind in ("maxpool", "avgpool"):
        return _pool(spec, shape, index)
    if kind in ("global_avgpool", "global_maxpool"):
        pool = nn.AdaptiveAvgPool2d(1) if kind == "global_avgpool" else nn.AdaptiveMaxPool2d(1)
        return [pool, nn.Flatten()], (shape[0],)
    if kind == "batchnorm":
        return [nn.BatchNorm2d(shape[0])], shape
    if kind == "activation":
        act = activation(spec.activation)
        return ([act] if act else []), shape
    if kind == "dropout":
        return [BatchDropout(spec.rate)], shape
    if kind == "flatten":
        return [nn.Flatten()], (_numel(shape),)
    return _dense(spec, shape)


def _conv(spec, shape: Shape, index: int) -> tuple[list[nn.Module], Shape]:
    channels, height, width = shape
    if spec.padding == "same":
        if spec.stride != 1:
            raise ModelError(
                f"layer {index} (conv): padding 'same' needs stride 1, received stride "
                f"{spec.stride}. Use an integer padding with strides."
            )
        pad = "same"
        out_h, out_w = height, width
    else:
        pad = 0 if spec.padding == "valid" else int(spec.padding)
        out_h = (height + 2 * pad - spec.kernel) // spec.stride + 1
        out_w = (width + 2 * pad - spec.kernel) // spec.stride + 1
    if out_h < 1 or out_w < 1:
        where = f"layer {index} (conv {spec.kernel}x{spec.kernel}) receives a {height}x{width} map"
        raise MapTooSmall(
            f"{where}, too small for its kernel. Use a larger image_size, padding 'same', or "
            "fewer layers.",
            where,
        )
    cls = _whitening(spec, channels, index) if spec.init == "whiten" else nn.Conv2d
    conv = cls(
        channels, spec.filters, spec.kernel, spec.stride, padding=pad, bias=not spec.batchnorm
    )  # (a bias before BatchNorm is cancelled by its mean)
    norm = [nn.BatchNorm2d(spec.filters)] if spec.batchnorm else []
    act = activation(spec.activation)
    return [conv, *norm] + ([act] if act else []), (spec.filters, out_h, out_w)


def _whitening(spec, channels: int, index: int) -> type[nn.Conv2d]:
    """PatchWhitening, where the layer can be one: first, with an even number of filters that
    the patches' directions (and their negatives) can fill."""
    from imgclf.models.whitening import PatchWhitening

    most = 2 * channels * spec.kernel**2
    if index != 0 or spec.filters % 2 or spec.filters > most:
        raise ModelError(
            f"layer {index} (conv, init whiten) must be the first layer, with an even number of "
            f"filters up to {most} (2 x {channels} channels x {spec.kernel}x{spec.kernel}); "
            f"received {spec.filters} filters."
        )
    return PatchWhitening


def _pool(spec, shape: Shape, index: int) -> tuple[list[nn.Module], Shape]:
    channels, height, width = shape
    stride = spec.stride or spec.size
    if height < spec.size or width < spec.size:
        where = f"layer {index} ({spec.type} {spec.size}) receives a {height}x{width} map"
        raise MapTooSmall(
            f"{where}, smaller than the pool. Use a larger image_size or remove a pooling layer.",
            where,
        )
    cls = nn.MaxPool2d if spec.type == "maxpool" else nn.AvgPool2d
    out = (channels, (height - spec.size) // stride + 1, (width - spec.size) // stride + 1)
    return [cls(spec.size, stride)], out


def _dense(spec, shape: Shape) -> tuple[list[nn.Module], Shape]:
    modules: list[nn.Module] = []
    if len(shape) != 1:
        modules.append(
            nn.Flatten()
        )  # Keras's Dense on a map would act per pixel; tutorials flatten
    modules.append(nn.Linear(_numel(shape), spec.units))
    act = activation(spec.activation)
    return modules + ([act] if act else []), (spec.units,)


def _numel(shape: Shape) -> int:
    total = 1
    for size in shape:
        total *= size
    return total
