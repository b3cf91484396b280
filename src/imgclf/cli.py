"""The command line: a thin typed shell over the Python API (imgclf.api).

Errors imgclf raises on purpose print one clear line and exit with code 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from imgclf import __version__
from imgclf.errors import ImgclfError

app = typer.Typer(
    name="imgclf",
    help="Labelled images in; a trained, evaluated, comparable, deployable classifier out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

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


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn ImgclfError into one red line and exit code 2 (unless --debug)."""
    try:
        yield
    except ImgclfError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, markup=True)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        console.print(f"imgclf {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option(help="Show tracebacks for imgclf errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def inspect(
    data: DataArg,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write inspect.json and samples.png [runs/inspect/NAME]."),
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
    val_split: FloatOpt = None,
    test_split: FloatOpt = None,
    seed: IntOpt = None,
    path_column: StrOpt = None,
    label_column: StrOpt = None,
    split_column: StrOpt = None,
    workers: IntOpt = None,
) -> None:
    """Count classes, describe the images and list every problem before training."""
    from imgclf import api

    with _user_errors():
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
    from imgclf.data.report_table import render_report

    console.print(render_report(report))


def _unfreeze(value: str | None) -> int | str | list[str] | None:
    """--unfreeze 2 | all | block5_conv3,block5_conv2."""
    if value is None or value == "all":
        return value
    return int(value) if value.isdigit() else [name.strip() for name in value.split(",")]


@app.command()
def summary(
    model: Annotated[
        str, typer.Argument(help="Recipe or timm name, a YAML config or a model bundle folder.")
    ],
    input_size: Annotated[int | None, typer.Option(help="Square input side in pixels.")] = None,
    classes: Annotated[int, typer.Option(help="Number of classes.")] = 10,
    channels: Annotated[int, typer.Option(help="Image channels: 1 or 3.")] = 3,
    depth: Annotated[int, typer.Option(help="Expand backbone blocks this many levels.")] = 1,
    mode: Annotated[str | None, typer.Option(help="feature_extract, finetune or scratch.")] = None,
    unfreeze: Annotated[
        str | None, typer.Option(help="finetune: N last blocks, 'all' or names a,b.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Layers, output shapes and trainable / frozen parameter counts, as Keras prints them."""
    from imgclf import api

    with _user_errors():
        result = api.summarize(
            model,
            input_size=input_size,
            classes=classes,
            channels=channels,
            depth=depth,
            config=config,
            mode=mode,
            unfreeze=_unfreeze(unfreeze),
        )
    result.print(console)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes its report.")] = Path(
        "runs/demo"
    ),
) -> None:
    """Inspect the built-in offline `digits` set and print where the report is."""
    from imgclf import api
    from imgclf.data.report_table import render_report

    with _user_errors():
        report = api.inspect("digits", out=out)
    console.print(render_report(report))
    console.print(f"\nDemo report: {Path(report.files['report']).resolve()}")


def main() -> None:
    """Console-script entry point."""
    app()
