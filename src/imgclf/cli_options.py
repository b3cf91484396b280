"""The command line's shared option types and the parsers that turn option text into config
overrides (``--set a.b=1``, ``--augment k=v``, ``--unfreeze 2|all|a,b``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataArg = Annotated[str, typer.Argument(help="Class folders, a .csv, an .npz or a built-in name.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(help="Folder of built-in sets (default $IMGCLF_DATA_DIR or ~/.cache/imgclf)."),
]
CacheDirOpt = Annotated[Path | None, typer.Option(help="Decoded-image cache folder.")]
FloatOpt = Annotated[float | None, typer.Option()]
IntOpt = Annotated[int | None, typer.Option()]
StrOpt = Annotated[str | None, typer.Option()]
ModelOpt = Annotated[str | None, typer.Option(help="Recipe, 'custom' or timm name.")]
ModeOpt = Annotated[str | None, typer.Option(help="feature_extract, finetune or scratch.")]
AugmentOpt = Annotated[
    list[str] | None, typer.Option(help="KEY=VALUE, repeatable: --augment zoom_range=0.1")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Any config key: --set train.patience=5")
]
QuietOpt = Annotated[bool, typer.Option(help="No progress output.")]


def parse_unfreeze(value: str | None) -> int | str | list[str] | None:
    """--unfreeze 2 | all | block5_conv3,block5_conv2."""
    if value is None or value == "all":
        return value
    return int(value) if value.isdigit() else [name.strip() for name in value.split(",")]


def key_values(pairs: list[str] | None, section: str | None = None) -> dict:
    """KEY=VALUE strings to overrides; values are read as YAML (0.1, true, [1, 2], name)."""
    import yaml

    from imgclf.errors import ConfigError

    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Expected KEY=VALUE, received '{pair}' (e.g. zoom_range=0.1).")
        key = key.strip().replace("-", "_")
        result[f"{section}.{key}" if section and "." not in key else key] = yaml.safe_load(value)
    return result
