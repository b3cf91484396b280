"""`imgclf summary MODEL`: the Keras-style layer table of a model."""

from __future__ import annotations

from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import ConfigOpt, ModeOpt, parse_unfreeze


def summary(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL", help="Recipe or timm name, a YAML config or a model bundle folder."
        ),
    ],
    input_size: Annotated[int | None, typer.Option(help="Square input side in pixels.")] = None,
    classes: Annotated[int, typer.Option(help="Number of classes.")] = 10,
    channels: Annotated[int, typer.Option(help="Image channels: 1 or 3.")] = 3,
    depth: Annotated[int, typer.Option(help="Expand backbone blocks this many levels.")] = 1,
    mode: ModeOpt = None,
    unfreeze: Annotated[
        str | None, typer.Option(help="finetune: N last blocks, 'all' or names a,b.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Layers, output shapes and trainable / frozen parameter counts, as Keras prints them."""
    with user_errors():
        result = api.summarize(
            model,
            input_size=input_size,
            classes=classes,
            channels=channels,
            depth=depth,
            config=config,
            mode=mode,
            unfreeze=parse_unfreeze(unfreeze),
        )
    result.print(terminal.console())
