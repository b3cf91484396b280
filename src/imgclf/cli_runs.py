"""`imgclf runs ...`: the table of runs with their settings, scores and training time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(soft_wrap=True)
runs_app = typer.Typer(help="List and compare runs.", no_args_is_help=True)


_RUN_COLUMNS = ("name", "model", "data", "epochs", "val_accuracy", "test_accuracy", "train_seconds")


@runs_app.command("list")
def runs_list(
    project: Annotated[Path, typer.Option(help="Folder of run folders.")] = Path("runs"),
    wide: Annotated[bool, typer.Option(help="Every column (settings too).")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (all columns).")] = False,
) -> None:
    """The runs with their key settings, scores and training time, newest first."""
    from rich.table import Table

    from imgclf.runs.registry import list_runs

    rows = list_runs(project)
    if as_csv:
        import pandas as pd

        typer.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)
        return
    if not rows:
        console.print(f"No runs in {project}.")
        return
    columns = list(rows[0]) if wide else list(_RUN_COLUMNS)
    table = Table(title=f"runs in {project}")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    console.print(table)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if value < 1 else f"{value:.1f}"
    return "-" if value is None else str(value)
