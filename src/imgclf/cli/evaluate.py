"""`imgclf evaluate RUN`: accuracy, per-class report and confusion of a trained model."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import DataDirOpt, DeviceOpt, schema_option


def evaluate(
    model: Annotated[
        str, typer.Argument(metavar="RUN", help="A run folder or a model bundle folder.")
    ],
    data: Annotated[
        str | None,
        typer.Option(
            help="Data to evaluate on.  [default: the run's own data]", show_default=False
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="test, val or train: the run's own split on its data, the data's own split on "
            "other data.  [default: test; all images of data without splits]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = None,
    precision: Annotated[
        str | None,
        schema_option(
            "train.precision", "32, 16-mixed or bf16-mixed.", default="the run's, else 32"
        ),
    ] = None,
) -> None:
    """Accuracy, per-class report and confusion of a trained model on data."""
    with user_errors():
        evaluation = api.evaluate(
            model,
            data,
            split=split,
            progress=not as_json,
            data_dir=data_dir,
            device=device,
            precision=precision,
        )
    if as_json:
        typer.echo(json.dumps(evaluation.to_dict(), indent=2))
        return
    terminal.print_line(evaluation.summary_line())
    terminal.print_line(evaluation.to_frame().to_string())
