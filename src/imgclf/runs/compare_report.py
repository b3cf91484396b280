"""compare.html: one self-contained page (pictures embedded) comparing runs, and each picture
as a PNG beside it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from imgclf.fileio import atomic_write_text
from imgclf.runs.compare import Comparison
from imgclf.runs.registry import cell_text, column_headers


def write_compare_report(
    comparison: Comparison, out: str | Path, extra: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write the PNGs and compare.html into ``out``; returns {name: path}, the page last.
    ``extra`` maps more pictures' titles to (file stem, matplotlib figure), shown first."""
    from imgclf.evaluate.compare_plots import curves_figure, f1_delta_figure
    from imgclf.evaluate.plots import save_png

    out = Path(out)
    score, outcomes = comparison.score, comparison.outcomes
    names = [row["name"] for row in comparison.rows]
    scores = [row.get(score) for row in comparison.rows]
    figures = dict(extra or {})
    best = sorted((i for i in range(len(names)) if scores[i] is not None),
                  key=lambda i: (outcomes[i] != "finished", -scores[i]))[:5]  # fmt: skip
    highlight = [names[i] for i in best]  # finished runs first
    figures["learning curves"] = ("curves", curves_figure(comparison.histories, highlight))
    if any(row.get("wall_seconds") is not None and row.get(score) is not None
           for row in comparison.rows):  # fmt: skip
        figures["score against time"] = ("pareto", comparison.plot_pareto())
    if comparison.settings:
        figures["settings that differ"] = ("parallel", _parallel(comparison))
    first, second = comparison.runs[:2]
    if comparison.class_f1.get(first) and comparison.class_f1.get(second):
        figure = f1_delta_figure(first, second, comparison.class_f1)
        figures[f"per-class F1: {second} minus {first}"] = ("f1_delta", figure)
    pictures = {title: save_png(figure, out / f"{stem}.png")
                for title, (stem, figure) in figures.items()}  # fmt: skip
    page = out / "compare.html"
    atomic_write_text(page, _page(comparison, pictures))
    return {**pictures, "page": page}


def _parallel(comparison: Comparison):
    """Parallel coordinates of the differing settings and the score, named as in the table."""
    from imgclf.evaluate.compare_plots import parallel_figure

    score = comparison.score
    keys = [*comparison.settings, score]
    axes = dict(zip(keys, column_headers(keys), strict=True))
    return parallel_figure(
        [row["name"] for row in comparison.rows],
        {axes[key]: values for key, values in comparison.settings.items()},
        [row.get(score) for row in comparison.rows],
        axes[score],
        comparison.outcomes,
    )


def _page(comparison: Comparison, pictures: dict[str, Path]) -> str:
    from imgclf.evaluate.html_parts import esc, num, page, picture, section, table

    columns, rows = comparison.table()
    numeric = {i for i, column in enumerate(columns) if column not in ("name", "status")}
    cells = [[esc(cell_text(c, v)) for c, v in zip(columns, row, strict=True)] for row in rows]
    headers = [esc(header) for header in column_headers(columns)]
    parts = [section("runs", "Runs and the settings that differ",
                     table(headers, cells, numeric))]  # fmt: skip
    if comparison.seed_groups:
        group_rows = []
        for group in comparison.seed_groups:
            scores = [
                f"{num(group[key][0])} ± {num(group[key][1])}" if key in group else "-"
                for key in ("val_accuracy", "test_accuracy")
            ]
            group_rows.append([esc(", ".join(group["runs"])), str(group["n"]), *scores])
        headers = ["runs (differ only by seed)", "n", "val accuracy", "test accuracy"]
        parts.append(section("seeds", "Seeds", table(headers, group_rows, {1, 2, 3})))
    figures = "\n".join(picture(name, path) for name, path in pictures.items())
    parts.append(section("pictures", "Pictures", figures))
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    title = f"imgclf compare: {', '.join(comparison.runs)}"
    header = f'<header><h1>{esc(title)}</h1><p class="muted">{esc(stamp)}</p></header>'
    return page(title, [header, *parts], viewport=False)
