"""`imgclf inspect DATA`: classes, image facts and every problem, before training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import (
    CacheDirOpt,
    ConfigOpt,
    DataArg,
    DataDirOpt,
    LabelColumnOpt,
    PathColumnOpt,
    SeedOpt,
    SplitColumnOpt,
    TestSplitOpt,
    ValSplitOpt,
)


def inspect(
    data: DataArg,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write inspect.json and samples.png.  [default: runs/inspect/NAME]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    grid: Annotated[bool, typer.Option(help="Draw the 5x5 sample grid.")] = True,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheDirOpt = None,
    download: Annotated[
        bool | None,
        typer.Option(help="Download missing built-in sets."),
    ] = None,
    val_split: ValSplitOpt = None,
    test_split: TestSplitOpt = None,
    seed: SeedOpt = None,
    path_column: PathColumnOpt = None,
    label_column: LabelColumnOpt = None,
    split_column: SplitColumnOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Decoding processes.  [default: all cores]", show_default=False),
    ] = None,
) -> None:
    """Count classes, describe the images and list every problem before training."""
    with user_errors():
        report = api.inspect(
            data,
            out=out or api.default_inspect_dir(data),
            config=config,
            grid=grid,
            progress=not as_json,
            data_dir=data_dir,
            cache_dir=cache_dir,
            download=download,
            val_split=val_split,
            test_split=test_split,
            seed=seed,
            path_column=path_column,
            label_column=label_column,
            split_column=split_column,
            workers=workers,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    terminal.console().print(api.render_data_report(report))
