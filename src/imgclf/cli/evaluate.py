"""`imgclf evaluate RUN`: accuracy, per-class report and confusion of a trained model."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import DataDirOpt, DeviceOpt, schema_choice

if TYPE_CHECKING:
    from rich.table import Table

CONFUSION_MAX_CLASSES = 20  # beyond this a matrix no longer fits a terminal
_Precision = schema_choice("train.precision", default="the run's, else 32")


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
    precision: _Precision = None,
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
    if evaluation.without_leaks:
        terminal.print_warning(evaluation.without_leaks["summary"])
    console = terminal.console()
    console.print(per_class_table(evaluation))
    if len(evaluation.classes) <= CONFUSION_MAX_CLASSES:
        console.print(confusion_table(evaluation))
    else:
        terminal.print_line(
            f"confusion matrix: {len(evaluation.classes)} classes, too many to print; see --json "
            "or the run's report.html"
        )


def per_class_table(evaluation) -> Table:
    """Precision, recall, F1 and support per class, four decimals (recall is the class's
    accuracy, so it is not repeated)."""
    from rich.table import Table

    table = Table(title="per class", title_justify="left", box=None)
    table.add_column("class")
    for name in ("precision", "recall", "F1", "support"):
        table.add_column(name, justify="right")
    for name in evaluation.classes:
        row = evaluation.report[name]
        scores = (row["precision"], row["recall"], row["f1-score"])
        table.add_row(name, *(f"{v:.4f}" for v in scores), str(int(row["support"])))
    return table


def confusion_table(evaluation) -> Table:
    """The confusion matrix: a row per true class, a column per predicted class."""
    from rich.table import Table

    table = Table(
        title="confusion (rows: true, columns: predicted)", title_justify="left", box=None
    )
    table.add_column("true \\ predicted")
    for name in evaluation.classes:
        table.add_column(name, justify="right")
    for name, row in zip(evaluation.classes, evaluation.confusion, strict=True):
        table.add_row(name, *(str(int(n)) for n in row))
    return table
