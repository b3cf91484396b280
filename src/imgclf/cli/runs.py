"""`imgclf runs ...`: list (the table of runs), show, score, rm and compare.

On a terminal the table keeps to its width by leaving out the least important columns (and says
which); in a pipe or a file every column is printed at its natural width. Nothing is wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from imgclf import api, terminal
from imgclf.api.experiments import cell_text, column_headers
from imgclf.cli.app import user_errors
from imgclf.cli.options import key_values

runs_app = typer.Typer(
    help="The runs of a project folder, from its ledger: list, show, score, rm and compare.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_RUN_COLUMNS = (
    "name", "model", "data", "epochs", "status", "val_accuracy", "test_accuracy", "train_seconds",
    "wall_seconds",
)  # fmt: skip
# Most important first: on a narrow terminal the columns at the end go first.
_PRIORITY = (
    "name", "val_accuracy", "test_accuracy", "status", "epochs", "model", "wall_seconds",
    "train_seconds", "data", "mode", "best_epoch", "lr", "batch_size", "optimizer", "image_size",
    "error",
)  # fmt: skip


@runs_app.command("list", short_help="The runs, newest first, with settings and scores.")
def runs_list(
    project: Annotated[Path, typer.Option(help="Folder of run folders.")] = Path("runs"),
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column: settings, best epoch, error too.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, every column.")] = False,
    sort: Annotated[
        str | None,
        typer.Option(metavar="COLUMN", help="Best first by a column: val_accuracy, a score."),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="Only matching runs, repeatable: status=finished"),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many runs.")] = None,
    best: Annotated[
        str | None, typer.Option(metavar="COLUMN", help="Only the best run by a column.")
    ] = None,
) -> None:
    """The runs with their key settings, scores, status, training and wall time, newest first.

    On a narrow terminal the least important columns are left out, and a note names them.
    """
    with user_errors():
        rows = api.runs(
            project, where=_pairs(where), sort=sort, best=best, limit=limit,
            warn=terminal.print_warning,
        )  # fmt: skip
    if as_csv:
        typer.echo(runs_csv(rows), nl=False)
        return
    console = terminal.console()
    if not rows:
        console.print(f"No runs in {project}.", markup=False)
        return
    requested = [*(api.RUN_COLUMNS if wide else _RUN_COLUMNS), *_external(rows)]
    cells = [[cell_text(column, row.get(column)) for column in requested] for row in rows]
    width = terminal.terminal_width()
    shown = fit_columns(_widths(requested, cells), width)
    console.print(f"runs in {project}", markup=False)
    console.print(_table(requested, cells, shown), crop=False)
    left_out = [column for column in requested if column not in shown]
    if left_out:
        console.print(_left_out_note(left_out, width, wide), markup=False)
    _warn_disagreements(rows)


def _warn_disagreements(rows: list[dict[str, Any]]) -> None:
    """A warning per pair of runs that an external score ranks the other way round."""
    for score in _external(rows):
        for ours, theirs, own in api.ranking_disagreements(rows, score):
            terminal.print_warning(
                f"{score} and {own} disagree: {ours} is ahead by {own}, {theirs} by {score}"
            )


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
    fields = [*api.RUN_COLUMNS, *_external(rows)]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _table(columns: list[str], cells: list[list[str]], shown: list[str] | None = None):
    """The table of ``shown`` columns (default: all) at its natural width, even wider than the
    terminal (one overlong name)."""
    from rich.table import Table

    widths = _widths(columns, cells)
    shown = columns if shown is None else shown
    table = Table(width=table_width([widths[column] for column in shown]))
    headers = dict(zip(columns, column_headers(columns), strict=True))
    for column in shown:
        table.add_column(headers[column], no_wrap=True)
    keep = [columns.index(column) for column in shown]
    for row in cells:
        table.add_row(*(row[i] for i in keep))
    return table


def _left_out_note(left_out: list[str], width: int | None, wide: bool) -> str:
    how = "A wider terminal shows them" if wide else "--wide on a wider terminal shows every column"
    return f"Left out to fit {width} columns: {', '.join(left_out)}. {how}, or use --csv."


def _widths(columns: list[str], cells: list[list[str]]) -> dict[str, int]:
    """Each column's natural width: its widest cell or its header."""
    from rich.cells import cell_len

    headers = column_headers(columns)
    return {
        column: max([cell_len(headers[i]), *(cell_len(row[i]) for row in cells)])
        for i, column in enumerate(columns)
    }


@runs_app.command("show", short_help="Everything recorded of one run.")
def runs_show(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run folder or a run's name.")],
    project: Annotated[Path | None, typer.Option(help="Folder of run folders.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """The run's ledger record: settings, data fingerprint, runtime, stop, scores, timings."""
    import json

    with user_errors():
        state = api.show_run(run, project)
    if as_json:
        typer.echo(json.dumps(state, indent=2, default=str))
        return
    for line in _show_lines(state):
        terminal.print_line(line)


@runs_app.command("score", short_help="Attach an external score (e.g. Kaggle's) to a run.")
def runs_score(
    run: Annotated[
        str, typer.Argument(metavar="RUN", help="A run folder, a run's name or a submission.")
    ],
    name: Annotated[str, typer.Argument(metavar="NAME", help="e.g. kaggle_public.")],
    value: Annotated[float, typer.Argument(metavar="VALUE")],
    note: Annotated[str | None, typer.Option(help="A line about the score.")] = None,
    project: Annotated[Path | None, typer.Option(help="Folder of run folders.")] = None,
) -> None:
    """Record a score the tool cannot compute; a run keeps every score with its time."""
    with user_errors():
        record = api.score_run(run, name, value, note=note, project=project)
    terminal.print_line(f"{record['run']}: {name} = {value:g} ({record['time']})")


@runs_app.command("rm", short_help="Delete runs (asks first).")
def runs_rm(
    runs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Run folders or names.")],
    project: Annotated[Path | None, typer.Option(help="Folder of run folders.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete runs' folders; the ledger keeps their history and records the removal."""
    with user_errors():
        for run in runs:
            api.show_run(run, project)  # every run exists before anything is deleted
        if not yes and not typer.confirm(f"Delete {len(runs)} run(s): {', '.join(runs)}?"):
            terminal.print_line("nothing deleted")
            raise typer.Exit(1)
        removed = api.remove_runs(runs, project)
    terminal.print_line(f"deleted {', '.join(str(path) for path in removed)}")


def _show_lines(state: dict[str, Any]) -> list[str]:
    """What the run is (settings, data, versions, where it ran), then how it went."""
    config = state.get("config") or {}
    sha = state.get("git_sha")
    lines = [
        f"run: {state['run']} ({state.get('status')}"
        + (f", stop: {state['stop']}" if state.get("stop") else "")
        + ")",
        f"model: {config.get('model', {}).get('name')}, data: "
        f"{config.get('data', {}).get('source')} (fingerprint {state.get('data_fingerprint')})",
        f"config hash: {state.get('config_hash')}, seed: {state.get('seed')}, imgclf "
        f"{state.get('imgclf_version')}" + (f", git {sha}" if sha else ""),
    ]
    if state.get("decisions"):
        decided = state["decisions"]
        lines.append(f"decisions: {decided.get('file')} (sha256 {decided.get('sha256')})")
    if state.get("runtime"):
        lines += _nested_lines("runtime", state["runtime"])
    if state.get("cpu"):
        lines.append(f"cpu: {state['cpu']}")
    return lines + _outcome_lines(state)


def _outcome_lines(state: dict[str, Any]) -> list[str]:
    """How far the run went, its scores, its error and its training and wall time."""
    lines = []
    if state.get("epochs_run") is not None:
        lines.append(
            f"epochs: {state['epochs_run']}/{state.get('epochs_planned')}, best epoch "
            f"{state.get('best_epoch')}; {state.get('stop_reason') or 'all epochs ran'}"
        )
    for split, scores in (state.get("metrics") or {}).items():
        lines.append(
            f"{split}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if v is not None)
        )
    for score in state.get("external", []):
        lines.append(
            f"score {score['name']}: {score['value']:g} ({score['time']})"
            + (f" - {score['note']}" if score.get("note") else "")
        )
    if state.get("error"):
        lines.append(f"error: {state['error']}")
    times = {"train": (state.get("timings") or {}).get("train"), "wall": state.get("wall_seconds")}
    known = [f"{part} {sec:.1f} s" for part, sec in times.items() if isinstance(sec, int | float)]
    return lines + ([f"time: {', '.join(known)}"] if known else [])


def _nested_lines(key: str, value: Any, indent: str = "") -> list[str]:
    """``key: value``, or for a dict ``key:`` and its items indented below, one a line."""
    if not isinstance(value, dict):
        return [f"{indent}{key}: {value}"]
    lines = [f"{indent}{key}:"]
    for name, item in value.items():
        lines += _nested_lines(name, item, indent + "  ")
    return lines


def _pairs(pairs: list[str] | None) -> dict[str, Any]:
    """--where KEY=VALUE pairs (values as text; they are compared as text)."""
    return {key: str(value) for key, value in key_values(pairs).items()}


def _external(rows: list[dict[str, Any]]) -> list[str]:
    """The external scores' names the rows have, in order of first appearance."""
    names: dict[str, None] = {}
    for row in rows:
        names.update({key: None for key in row if key not in api.RUN_COLUMNS})
    return list(names)


@runs_app.command("compare", short_help="Only the settings that differ, scores, compare.html.")
def runs_compare(
    runs: Annotated[
        list[str] | None, typer.Argument(metavar="RUN...", help="Run folders or names.")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="Or every run that matches, repeatable."),
    ] = None,
    study: Annotated[
        str | None, typer.Option(metavar="NAME", help="Or every trial of a sweep's study.")
    ] = None,
    project: Annotated[Path | None, typer.Option(help="Folder of run folders.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for compare.html and its PNGs.  [default: PROJECT/compare]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """A table of the settings that differ, with scores and wall times, and compare.html:
    learning curves, score against time (Pareto front), parallel coordinates, per-class F1
    deltas, seeds as mean ± std."""
    with user_errors():
        pairs = {**(_pairs(where) or {}), **({"run.study": study} if study else {})}
        comparison = api.compare(runs, project=project, where=pairs or None, out=out)
    columns, rows = comparison.table()
    cells = [[cell_text(c, v) for c, v in zip(columns, row, strict=True)] for row in rows]
    terminal.console().print(_table(columns, cells), crop=False)
    for group in comparison.seed_groups:
        for score in ("val_accuracy", "test_accuracy"):
            if score in group:
                mean, std = group[score]
                runs_text = ", ".join(group["runs"])
                terminal.print_line(
                    f"{runs_text} differ only by seed: {score} {mean:.4f} ± {std:.4f}"
                )
    terminal.print_line(f"Report: {comparison.files['page'].resolve()}")
