"""The terminal view of a DataReport: rich tables for counts, problems and duplicates."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from imgclf.data.pipeline.inspect import DataReport

MAX_ROWS = 20


def render_data_report(report: DataReport) -> Group:
    """Class counts per split, facts about the images, then problems, duplicates, warnings."""
    heading = Text(f"{report.source}: {report.n_images} usable images", style="bold")
    parts = [heading, _counts_table(report), _facts(report)]
    if report.problems:
        parts.append(_problems_table(report))
    if report.duplicates:
        parts.append(_duplicates_table(report))
    for warning in report.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    for what, path in report.files.items():
        parts.append(Text(f"{what}: {path}"))
    return Group(*parts)


def _counts_table(report: DataReport) -> Table:
    splits = list(report.counts)
    table = Table()
    table.add_column("class")
    for split in splits:
        table.add_column(split, justify="right")
    table.add_column("total", justify="right")
    for name in report.classes:
        row = [report.counts[s].get(name, 0) for s in splits]
        table.add_row(name, *map(str, row), str(sum(row)))
    return table


def _facts(report: DataReport) -> Text:
    sizes = report.sizes
    lines = [f"imbalance ratio (largest / smallest class): {report.imbalance_ratio:.2f}"]
    if sizes:
        width, height = sizes["width"], sizes["height"]
        lines.append(
            f"width {width['min']}..{width['max']} (median {width['median']:g}), "
            f"height {height['min']}..{height['max']} (median {height['median']:g}); "
            f"most common: {', '.join(f'{k} ({v})' for k, v in sizes['most_common'].items())}"
        )
    lines.append("modes: " + ", ".join(f"{k} {v}" for k, v in report.modes.items()))
    lines.append("formats: " + ", ".join(f"{k} {v}" for k, v in report.formats.items()))
    return Text("\n".join(lines))


def _problems_table(report: DataReport) -> Table:
    table = Table(title=f"{len(report.problems)} file(s) left out", title_style="bold red")
    table.add_column("file", overflow="fold")
    table.add_column("reason", overflow="fold")
    for problem in report.problems[:MAX_ROWS]:
        table.add_row(_relative(problem["path"], report.source), problem["reason"])
    if len(report.problems) > MAX_ROWS:
        table.add_row(f"... and {len(report.problems) - MAX_ROWS} more (see the JSON report)", "")
    return table


def _duplicates_table(report: DataReport) -> Table:
    leaks = sum(d["across_splits"] for d in report.duplicates)
    title = f"{len(report.duplicates)} group(s) of identical files, {leaks} across splits (leakage)"
    table = Table(title=title, title_style="bold yellow")
    table.add_column("files (label, split)", overflow="fold")
    table.add_column("problem")
    for group in report.duplicates[:MAX_ROWS]:
        files = "\n".join(
            f"{_relative(i['path'], report.source)} ({i['label']}, {i['split'] or '-'})"
            for i in group["items"]
        )
        problem = ", ".join(
            what
            for what, flag in (
                ("across splits", group["across_splits"]),
                ("different labels", group["conflicting_labels"]),
            )
            if flag
        )
        table.add_row(files, problem or "same split, same label")
    return table


def _relative(path: str, root: str) -> str:
    """Paths inside the data folder are shown relative to it (the table stays readable)."""
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path
