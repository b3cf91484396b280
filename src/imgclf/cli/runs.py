"""`imgclf runs ...`: the table of runs with their settings, scores, status and training time.

On a terminal the table keeps to its width by leaving out the least important columns (and says
which); in a pipe or a file every column is printed at its natural width. Nothing is wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from imgclf import api, terminal

runs_app = typer.Typer(
    help="Show the runs in a project folder: settings, scores, status and training time.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_RUN_COLUMNS = (
    "name", "model", "data", "epochs", "status", "val_accuracy", "test_accuracy", "train_seconds",
)  # fmt: skip
# Most important first: on a narrow terminal the columns at the end go first.
_PRIORITY = (
    "name", "val_accuracy", "test_accuracy", "status", "epochs", "model", "train_seconds",
    "data", "mode", "best_epoch", "lr", "batch_size", "optimizer", "image_size", "error",
)  # fmt: skip
_HEADERS = {"val_accuracy": "val acc", "test_accuracy": "test acc", "train_seconds": "seconds"}


@runs_app.command("list", short_help="The runs, newest first, with settings and scores.")
def runs_list(
    project: Annotated[Path, typer.Option(help="Folder of run folders.")] = Path("runs"),
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column: settings, best epoch, error too.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, every column.")] = False,
) -> None:
    """The runs with their key settings, scores, status and training time, newest first.

    On a narrow terminal the least important columns are left out, and a note names them.
    """
    rows = api.list_runs(project)
    if as_csv:
        typer.echo(runs_csv(rows), nl=False)
        return
    console = terminal.console()
    if not rows:
        console.print(f"No runs in {project}.", markup=False)
        return
    requested = list(api.RUN_COLUMNS) if wide else list(_RUN_COLUMNS)
    cells = [[_cell(column, row[column]) for column in requested] for row in rows]
    widths = {column: _natural_width(column, cells, i) for i, column in enumerate(requested)}
    width = terminal.terminal_width()
    shown = fit_columns(widths, width)
    console.print(f"runs in {project}", markup=False)
    console.print(_table(shown, requested, cells, widths), crop=False)
    left_out = [column for column in requested if column not in shown]
    if left_out:
        console.print(_left_out_note(left_out, width, wide), markup=False)


def fit_columns(widths: dict[str, int], width: int | None) -> list[str]:
    """The columns to show, in the given order, so that the table fits ``width`` characters.

    Args:
        widths: Each requested column's natural width (its widest cell or header), in order.
        width: The terminal's width; None (a pipe or a file) keeps every column.

    Returns:
        The columns kept: the least important (by ``_PRIORITY``) are dropped first until the
        table fits; ``name`` is always kept, even when it alone is too wide.
    """
    shown = list(widths)
    if width is None:
        return shown
    rank = {column: i for i, column in enumerate(_PRIORITY)}
    for column in sorted(shown, key=lambda c: rank.get(c, len(rank)), reverse=True):
        if table_width([widths[c] for c in shown]) <= width or column == "name":
            break
        shown.remove(column)
    return shown


def table_width(widths: Sequence[int]) -> int:
    """Characters of a rich table with these column widths: a padded cell and a rule each."""
    return sum(widths) + 3 * len(widths) + 1


def runs_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV with a header; None is an empty field."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=api.RUN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _table(shown: list[str], requested: list[str], cells: list[list[str]], widths: dict[str, int]):
    """The table at its natural width, even wider than the terminal (one overlong name)."""
    from rich.table import Table

    table = Table(width=table_width([widths[column] for column in shown]))
    for column in shown:
        table.add_column(_header(column), no_wrap=True)
    keep = [requested.index(column) for column in shown]
    for row in cells:
        table.add_row(*(row[i] for i in keep))
    return table


def _left_out_note(left_out: list[str], width: int | None, wide: bool) -> str:
    how = "A wider terminal shows them" if wide else "--wide on a wider terminal shows every column"
    return f"Left out to fit {width} columns: {', '.join(left_out)}. {how}, or use --csv."


def _header(column: str) -> str:
    return _HEADERS.get(column, column.replace("_", " "))


def _natural_width(column: str, cells: list[list[str]], index: int) -> int:
    from rich.cells import cell_len

    return max([cell_len(_header(column)), *(cell_len(row[index]) for row in cells)])


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if not isinstance(value, float):
        return str(value)
    if column.endswith("accuracy"):
        return f"{value:.4f}"
    return f"{value:.1f}" if column == "train_seconds" else f"{value:g}"
