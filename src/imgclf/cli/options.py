"""The command line's shared option types and the parsers that turn option text into config
overrides (``--set a.b=1``, ``--augment k=v``, ``--unfreeze 2|all|a,b``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from imgclf import api
from imgclf.api import schema_default
from imgclf.errors import ConfigError


def schema_option(
    key: str, help: str | None = None, default: str | None = None, *flags: str, **kwargs
):
    """A typer option whose help (the schema's description of ``key`` unless given) ends with
    the schema's default of ``key`` (or with ``default``, a phrase for defaults the schema
    leaves to the data, such as image_size); ``flags`` name it (``--plots/--no-plots``)."""
    help = help or api.setting_help(key)
    shown = default or schema_default(key)
    text = f"{help}  [default: {shown}]" if shown else help
    return typer.Option(*flags, help=text, show_default=False, **kwargs)


def schema_choice(key: str, help: str | None = None, default: str | None = None) -> Any:
    """An optional option whose choices are the schema's for ``key`` (its Literal type): --help
    lists them and click refuses any other value in one line, with exit code 2."""
    return Annotated[api.setting_type(key) | None, schema_option(key, help, default)]


DataArg = Annotated[
    str,
    typer.Argument(metavar="DATA", help="Class folders, a .csv, an .npz or a built-in name."),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        help="Folder of built-in sets (default: $IMGCLF_DATA_DIR, else ~/.cache/imgclf/datasets)."
    ),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(help="Decoded-image cache (default: $IMGCLF_CACHE_DIR, else ~/.cache/imgclf)."),
]
BackendOpt = Annotated[  # predict's and serve's
    str,
    typer.Option(
        help="torch, onnx (after imgclf export), onnx-int8 (after imgclf export --format "
        "onnx-int8), or auto: ONNX Runtime on the gated int8, else fp32, graph (CPU, 32 bits), "
        "else torch."
    ),
]
FloatOpt = Annotated[float | None, typer.Option()]
IntOpt = Annotated[int | None, typer.Option()]
StrOpt = Annotated[str | None, typer.Option()]
ModelOpt = Annotated[
    str | None,
    schema_option("model.name", "Recipe (cnn, deep_cnn, mlp, ...), 'custom' or timm name."),
]
ModeOpt = schema_choice(
    "model.mode",
    "Backbone frozen, its last blocks tuned after the head, or all from random weights.",
)
EpochsOpt = Annotated[
    int | None,
    schema_option(
        "train.epochs",
        "Epochs; a pretrained finetune runs these head epochs, then --finetune-epochs.",
    ),
]
BatchSizeOpt = Annotated[
    int | None, schema_option("train.batch_size", "Images per training batch.")
]
ImageSizeOpt = Annotated[
    int | None,
    schema_option(
        "data.image_size",
        "Square side in pixels.",
        default="the images' own size when they share one, else the model's",
    ),
]
LrOpt = Annotated[
    float | None, schema_option("train.lr", "Learning rate (peak lr with a schedule).")
]
ValSplitOpt = Annotated[
    float | None, schema_option("data.val_split", "Fraction for validation when the data has none.")
]
TestSplitOpt = Annotated[
    float | None, schema_option("data.test_split", "Fraction for test when the data has none.")
]
SeedOpt = Annotated[
    int | None, schema_option("seed", "Random seed: splits, weights, augmentation.")
]
PathColumnOpt = Annotated[
    str | None, schema_option("data.path_column", "CSV column of image paths.")
]
LabelColumnOpt = Annotated[
    str | None, schema_option("data.label_column", "CSV column of class labels.")
]
SplitColumnOpt = Annotated[
    str | None, schema_option("data.split_column", "CSV column of train/val/test (optional).")
]
AugmentOpt = Annotated[
    list[str] | None,
    typer.Option(metavar="KEY=VALUE", help="Augmentation, repeatable: --augment zoom_range=0.1"),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Any config key: --set train.patience=5"),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress output.")]
PlotsOpt = Annotated[bool | None, schema_option("run.plots", None, "--plots", "--plots/--no-plots")]
DeviceOpt = Annotated[str | None, schema_option("train.device")]
PrecisionOpt = schema_choice("train.precision")


def parse_unfreeze(value: str | None) -> int | str | list[str] | None:
    """--unfreeze 2 | all | block5_conv3,block5_conv2."""
    if value is None or value == "all":
        return value
    return int(value) if value.isdigit() else [name.strip() for name in value.split(",")]


def key_values(pairs: list[str] | None, section: str | None = None) -> dict:
    """KEY=VALUE strings to overrides; values are read as YAML (0.1, true, [1, 2], name)."""
    if not pairs:
        return {}  # no YAML parser to import
    import yaml

    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Expected KEY=VALUE, received '{pair}' (e.g. zoom_range=0.1).")
        key = key.strip().replace("-", "_")
        result[f"{section}.{key}" if section and "." not in key else key] = yaml.safe_load(value)
    return result


NprocOpt = Annotated[
    int | None,
    typer.Option(
        "--nproc-per-node",
        help="Processes on this node (torchrun; gloo on CPUs, NCCL on GPUs).",
        show_default=False,
    ),
]
NnodesOpt = Annotated[int, typer.Option("--nnodes", help="Nodes taking part.")]
NodeRankOpt = Annotated[int, typer.Option("--node-rank", help="This node's rank, 0..nnodes-1.")]
RdzvOpt = Annotated[
    str | None,
    typer.Option(
        "--rdzv-endpoint",
        help="HOST:PORT of node 0, open to the others.  [default: a free loopback port]",
        show_default=False,
    ),
]
LAUNCH_KEYS = ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint")


def relaunch(command: str, options: dict) -> int | None:
    """With --nproc-per-node, outside torchrun: run ``imgclf COMMAND`` with this command
    line's arguments (less the launch options) in that many processes, and return their exit
    code; else None (this process does the work)."""
    import sys

    launch = {key: options.pop(key) for key in LAUNCH_KEYS}
    if launch["nproc_per_node"] is None or api.under_torchrun():
        return None
    at = sys.argv.index(command)  # global options (--debug) before it go along
    argv = [*sys.argv[1:at], command, *api.without_launch_options(sys.argv[at + 1 :])]
    return api.launch(argv, **launch)
