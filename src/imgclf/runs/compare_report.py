"""compare.html: one self-contained page (pictures embedded) comparing runs, and each picture
as a PNG beside it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from imgclf.fileio import atomic_write_text
from imgclf.runs.compare import Comparison, pareto_front


def write_compare_report(
    comparison: Comparison, out: str | Path, extra: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write the PNGs and compare.html into ``out``; returns {name: path}, the page last.
    ``extra`` maps more pictures' titles to (file stem, matplotlib figure), shown first."""
    from imgclf.evaluate.compare_plots import (
        curves_figure,
        f1_delta_figure,
        parallel_figure,
        pareto_figure,
    )
    from imgclf.evaluate.plots import save_png

    out = Path(out)
    score = comparison.score
    names = [row["name"] for row in comparison.rows]
    scores = [row.get(score) for row in comparison.rows]
    pictures = {title: save_png(figure, out / f"{stem}.png")
                for title, (stem, figure) in (extra or {}).items()}  # fmt: skip
    best = sorted((row for row in comparison.rows if row.get(score) is not None),
                  key=lambda row: -row[score])[:5]  # fmt: skip
    curves = curves_figure(comparison.histories, [row["name"] for row in best])
    pictures["learning curves"] = save_png(curves, out / "curves.png")
    timed = [i for i, row in enumerate(comparison.rows)
             if row.get("wall_seconds") is not None and row.get(score) is not None]  # fmt: skip
    if timed:
        seconds = [comparison.rows[i]["wall_seconds"] for i in timed]
        values = [scores[i] for i in timed]
        front = pareto_front(list(zip(seconds, values, strict=True)))
        figure = pareto_figure([names[i] for i in timed], seconds, values, front, score)
        pictures["score against time"] = save_png(figure, out / "pareto.png")
    if comparison.settings:
        figure = parallel_figure(names, comparison.settings, scores, score)
        pictures["settings that differ"] = save_png(figure, out / "parallel.png")
    first, second = comparison.runs[:2]
    if comparison.class_f1.get(first) and comparison.class_f1.get(second):
        figure = f1_delta_figure(first, second, comparison.class_f1)
        pictures[f"per-class F1: {second} minus {first}"] = save_png(figure, out / "f1_delta.png")
    page = out / "compare.html"
    atomic_write_text(page, _page(comparison, pictures))
    return {**pictures, "page": page}


def _page(comparison: Comparison, pictures: dict[str, Path]) -> str:
    from imgclf.evaluate.html_parts import esc, num, picture, section, table
    from imgclf.evaluate.report import PAGE_CSS

    headers, rows = comparison.table()
    numeric = {i for i, header in enumerate(headers) if header != "name"}
    cells = [[_cell(value) for value in row] for row in rows]
    parts = [section("runs", "Runs and the settings that differ",
                     table([esc(h) for h in headers], cells, numeric))]  # fmt: skip
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
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n<main>\n"
        f'<header><h1>{esc(title)}</h1><p class="muted">{esc(stamp)}</p></header>\n'
        + "\n".join(parts)
        + "\n</main>\n</body>\n</html>\n"
    )


def _cell(value: Any) -> str:
    from imgclf.evaluate.html_parts import esc, num

    if isinstance(value, float):
        return num(value)
    return esc("-" if value is None else value)
