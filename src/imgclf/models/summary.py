"""The Keras ``model.summary()`` for an ImageModel: layers, output shapes, parameter counts.

Output shapes come from one forward pass of a zero batch in eval + inference mode, read by
forward hooks; shapes leave out the batch axis and are PyTorch's (C, H, W), not Keras's
(H, W, C). Rows are chosen so that every parameter is counted exactly once (rows sum to the
total):

- recipes, custom stacks and heads: one row per layer with Keras-like names (``conv2d``,
  ``max_pooling2d``, ``conv2d_1``, ``dense`` ...); an activation module right after a conv or
  dense layer is folded into that layer's row (type ``Conv2d + ReLU``), as Keras shows a
  ``Conv2D(activation="relu")`` as one layer.
- timm backbones: the timm model's top-level blocks, with its sequential containers opened
  (``conv_stem``, ``blocks.0`` ... ``blocks.6``; ``features.0`` ... for VGG), one level deeper
  per extra ``depth``. Names are those ``unfreeze`` accepts: the Keras layer name where one
  exists (``block5_conv3`` for VGG16's ``features.28``), else the module name inside the timm
  model. Modules that hold no parameters and never ran (timm's unused classifier) are left out.

Only parameters are counted: BatchNorm running statistics are buffers here, so a BatchNorm
network shows fewer non-trainable parameters than Keras's summary would. Under the totals, the
forward FLOPs of one image, counted by torch's FlopCounterMode on a meta-device copy (what a
training step costs is about three times that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from imgclf.errors import ModelError
from imgclf.models.flops import meta_flops
from imgclf.models.inference import eval_mode

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

Shape = tuple[Any, ...]  # (C, H, W) or (F,) without the batch axis; a tuple of those if many

_ACTIVATION_TYPES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.LeakyReLU,
    nn.Hardswish, nn.Mish, nn.Softmax,
)  # fmt: skip
_FOLD_INTO = (nn.Conv2d, nn.Linear)
_KERAS_NAMES: dict[type[nn.Module], str] = {
    nn.Conv2d: "conv2d",
    nn.MaxPool2d: "max_pooling2d",
    nn.AvgPool2d: "average_pooling2d",
    nn.AdaptiveAvgPool2d: "global_average_pooling2d",
    nn.AdaptiveMaxPool2d: "global_max_pooling2d",
    nn.Flatten: "flatten",
    nn.Linear: "dense",
    nn.Dropout: "dropout",
    nn.BatchNorm1d: "batch_normalization",
    nn.BatchNorm2d: "batch_normalization",
}
_HEADERS = ("Layer", "Type", "Output shape", "Param #", "Trainable")


@dataclass(frozen=True)
class SummaryRow:
    """One row of the summary.

    Attributes:
        name: Keras-like layer name, or the name ``unfreeze`` accepts for backbone blocks.
        type: Module class name; ``Conv2d + ReLU`` when an activation is folded in.
        output_shape: Without the batch axis; None when the module did not run.
        params: Parameters counted in this row (none counted twice across rows).
        trainable: "yes", "no", "partial" (some frozen) or "-" (no parameters).
        bn_frozen: The row is or holds BatchNorm layers kept in eval mode (statistics frozen).
        module: Dotted path of the (first) module in the ImageModel, e.g. ``features.0``.
    """

    name: str
    type: str
    output_shape: Shape | None
    params: int
    trainable: str
    bn_frozen: bool
    module: str


@dataclass
class ModelSummary:
    """The result of :func:`model_summary`: rows plus Keras's three totals."""

    name: str
    input_shape: tuple[int, int, int]
    rows: list[SummaryRow]
    total: int
    trainable: int
    non_trainable: int
    depth: int = 1
    flops: int | None = None  # forward FLOPs of one image; None where they cannot be counted

    def totals(self) -> dict[str, int]:
        """The totals under Keras's labels, then the forward FLOPs per image if counted."""
        totals = {
            "Total params": self.total,
            "Trainable params": self.trainable,
            "Non-trainable params": self.non_trainable,
        }
        if self.flops is not None:
            totals["FLOPs per image (forward)"] = self.flops
        return totals

    def to_frame(self) -> pd.DataFrame:
        """One row per layer; the totals are in ``frame.attrs`` under Keras's labels."""
        import pandas as pd

        frame = pd.DataFrame([vars(row) for row in self.rows])
        frame.attrs.update(self.totals())
        return frame

    def print(self, console: Console | None = None) -> None:
        """Render the table with rich, the totals underneath as Keras prints them."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        table = Table(title=f'Model: "{self.name}"', title_justify="left")
        for header in _HEADERS:
            right = header == "Param #"
            table.add_column(
                header, justify="right" if right else "left", no_wrap=header != "Layer"
            )
        for row in self.rows:
            table.add_row(*_cells(row))
        console.print(table)
        for label, value in self.totals().items():
            console.print(f"[bold]{label}:[/bold] {value:,}", highlight=False)

    def _repr_html_(self) -> str:
        """Keras's table and totals, for a notebook."""
        from imgclf import notebook

        totals = "".join(notebook.line(f"{label}: {value:,}") for label, value in
                         self.totals().items())  # fmt: skip
        rows = [_cells(row) for row in self.rows]
        return notebook.card(f'Model: "{self.name}"', notebook.table(_HEADERS, rows), totals)

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        lines = [[*_HEADERS]] + [_cells(row) for row in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADERS))]
        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))

        def fmt(cells: list[str]) -> str:
            padded = [
                c.rjust(w) if i == 3 else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(padded).rstrip()

        body = [fmt(cells) for cells in lines[1:]]
        totals = [f"{label}: {value:,}" for label, value in self.totals().items()]
        title = f'Model: "{self.name}"'
        return "\n".join([title, rule, fmt(lines[0]), rule.replace("-", "="), *body, rule, *totals])


def model_summary(
    model: nn.Module, depth: int = 1, input_size: tuple[int, int] | None = None
) -> ModelSummary:
    """Summarise ``model`` as Keras's ``model.summary()`` does, in PyTorch's shapes.

    Args:
        model: The network to describe; its training mode is restored afterwards.
        depth: 1 lists a backbone's top-level blocks; each extra level opens them one deeper.
        input_size: (H, W) of the zero batch; defaults to the model's preprocessing size.
    """
    if not isinstance(depth, int) or depth < 1:
        raise ModelError(f"summary depth must be an integer >= 1, received {depth!r}. Use 1 or 2.")
    pre = model.preprocess_spec
    height, width = input_size or pre.image_size
    slots = _slots(model, depth)
    shapes = _output_shapes(model, slots, (1, pre.channels, height, width))
    rows = _rows(model, slots, shapes)
    flops = meta_flops(model, (1, pre.channels, height, width))
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return ModelSummary(
        name=str(model.spec["model"]["name"]),
        input_shape=(pre.channels, height, width),
        rows=rows,
        total=total,
        trainable=trainable,
        non_trainable=total - trainable,
        depth=depth,
        flops=None if flops is None else int(flops),
    )


@dataclass
class _Slot:
    """A row in the making: its name and modules (the layer, then any folded activation)."""

    name: str
    modules: list[tuple[str, nn.Module]] = field(default_factory=list)


def _slots(model: nn.Module, depth: int) -> list[_Slot]:
    """The rows' modules: preprocess, the features (stack or backbone blocks), the head."""
    counts: dict[str, int] = {}
    slots = [_Slot("preprocess", [("preprocess", model.preprocess)])]
    if model.has_backbone:
        slots += _backbone_slots(model.features, depth)
    else:
        slots += _stack_slots(model.features, "features", counts)
    return slots + _stack_slots(model.head, "head", counts)


def _stack_slots(module: nn.Module, path: str, counts: dict[str, int]) -> list[_Slot]:
    """One slot per layer of a Sequential (activations folded), with Keras-like names."""
    children = (
        [(f"{path}.{name}", child) for name, child in module.named_children()]
        if isinstance(module, nn.Sequential)
        else [(path, module)]
    )
    slots: list[_Slot] = []
    for child_path, child in children:
        if isinstance(child, nn.Identity):
            continue
        if slots and _folds_into(child, slots[-1]):
            slots[-1].modules.append((child_path, child))
            continue
        slots.append(_Slot(_keras_name(child, counts), [(child_path, child)]))
    return slots


def _backbone_slots(backbone: nn.Module, depth: int) -> list[_Slot]:
    """The timm model's blocks (containers opened once), ``depth - 1`` levels deeper."""
    from imgclf.models.backbones import KERAS_LAYER_NAMES, timm_name

    items: list[tuple[str, nn.Module]] = []
    for name, child in backbone.model.named_children():
        if isinstance(child, nn.Sequential | nn.ModuleList):
            items += [(f"{name}.{sub}", grandchild) for sub, grandchild in child.named_children()]
        else:
            items.append((name, child))
    for _ in range(depth - 1):
        items = [item for name, module in items for item in _open(name, module)]
    aliases = {v: k for k, v in KERAS_LAYER_NAMES.get(timm_name(backbone.name), {}).items()}
    slots: list[_Slot] = []
    for name, module in items:
        if isinstance(module, nn.Identity):
            continue
        if slots and _folds_into(module, slots[-1]):
            slots[-1].modules.append((f"features.model.{name}", module))
            continue
        slots.append(_Slot(aliases.get(name, name), [(f"features.model.{name}", module)]))
    return slots


def _open(name: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    """A container's children; a module owning parameters itself is a layer and stays whole."""
    children = list(module.named_children())
    if not children or any(True for _ in module.parameters(recurse=False)):
        return [(name, module)]
    return [(f"{name}.{sub}", child) for sub, child in children]


def _folds_into(module: nn.Module, previous: _Slot) -> bool:
    return (
        isinstance(module, _ACTIVATION_TYPES)
        and len(previous.modules) == 1
        and isinstance(previous.modules[0][1], _FOLD_INTO)
    )


def _keras_name(module: nn.Module, counts: dict[str, int]) -> str:
    """``conv2d``, ``conv2d_1``, ... numbered per kind, as Keras names layers."""
    if isinstance(module, _ACTIVATION_TYPES):
        base = "activation"
    else:
        base = _KERAS_NAMES.get(type(module)) or _snake(type(module).__name__)
    index = counts.get(base, 0)
    counts[base] = index + 1
    return base if index == 0 else f"{base}_{index}"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _output_shapes(
    model: nn.Module, slots: list[_Slot], batch_shape: tuple[int, ...]
) -> dict[int, Shape | None]:
    """Each slot's output shape from one eval-mode forward pass of a zero batch."""
    shapes: dict[int, Shape | None] = {}

    def hook_for(index: int):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            shapes[index] = _shape_of(output)

        return hook

    handles = [
        slot.modules[-1][1].register_forward_hook(hook_for(i)) for i, slot in enumerate(slots)
    ]
    try:
        with eval_mode(model), torch.inference_mode():
            model(torch.zeros(batch_shape))
    except RuntimeError as exc:
        raise ModelError(
            f"The model cannot run on a batch of shape {batch_shape} ({exc}). "
            "Pass an input_size the network accepts."
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _shape_of(output: Any) -> Shape | None:
    if isinstance(output, torch.Tensor):
        return tuple(output.shape[1:])
    if isinstance(output, list | tuple):
        return tuple(_shape_of(item) for item in output)
    return None


def _rows(
    model: nn.Module, slots: list[_Slot], shapes: dict[int, Shape | None]
) -> list[SummaryRow]:
    """Rows with parameters counted once each; anything outside the slots goes in a last row."""
    frozen_bn = set(model.frozen_bn)
    seen: set[int] = set()
    rows = []
    for index, slot in enumerate(slots):
        params = [p for _, m in slot.modules for p in m.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        if not params and index not in shapes:
            continue  # never ran and holds nothing (e.g. timm's unused classifier)
        path = slot.modules[0][0]
        rows.append(
            SummaryRow(
                name=slot.name,
                type=" + ".join(_type_name(m) for _, m in slot.modules),
                output_shape=shapes.get(index),
                params=sum(p.numel() for p in params),
                trainable=_trainable(params),
                bn_frozen=any(n == path or n.startswith(path + ".") for n in frozen_bn),
                module=path,
            )
        )
    rest = [(n, p) for n, p in model.named_parameters() if id(p) not in seen]
    if rest:
        rows.append(_rest_row(rest))
    return rows


def _rest_row(named: list[tuple[str, nn.Parameter]]) -> SummaryRow:
    """Parameters owned directly by a container (a ViT's position embedding, say)."""
    params = [p for _, p in named]
    return SummaryRow(
        name="(other parameters)",
        type="Parameter",
        output_shape=None,
        params=sum(p.numel() for p in params),
        trainable=_trainable(params),
        bn_frozen=False,
        module=", ".join(n for n, _ in named),
    )


def _type_name(module: nn.Module) -> str:
    """The class name; a Sequential of one kind of block says which (``InvertedResidual x4``)."""
    kinds = {type(child).__name__ for child in module.children()}
    if isinstance(module, nn.Sequential) and len(kinds) == 1:
        return f"{kinds.pop()} x{len(module)}"
    return type(module).__name__


def _trainable(params: list[nn.Parameter]) -> str:
    if not params:
        return "-"
    flags = {p.requires_grad for p in params}
    return "partial" if len(flags) == 2 else "yes" if True in flags else "no"


def _cells(row: SummaryRow) -> list[str]:
    trainable = f"{row.trainable} (BN frozen)" if row.bn_frozen else row.trainable
    return [row.name, row.type, _format_shape(row.output_shape), f"{row.params:,}", trainable]


def _format_shape(shape: Shape | None) -> str:
    if shape is None:
        return "-"
    if shape and all(isinstance(s, tuple) or s is None for s in shape):
        return ", ".join(_format_shape(s) for s in shape)
    return str(tuple(shape))
