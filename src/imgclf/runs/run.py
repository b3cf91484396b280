"""Run: what ``imgclf.api.train`` returns, a finished run and where it lies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.config import Config
from imgclf.models.network import ImageModel
from imgclf.runtime import Runtime


@dataclass
class Run:
    """A finished run: its folder, config, best model, history and final metrics.

    ``path`` is None on a process that writes no run folder (a non-main rank); ``metrics`` then
    holds the run's epochs and stop reason but no scores, which the main process computes.
    """

    path: Path | None
    config: Config
    model: ImageModel
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    runtime: Runtime = field(default_factory=Runtime)
    note: str | None = None  # what a resume that found nothing to add said (it wrote nothing)

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    @property
    def report(self) -> Path | None:
        """report.html, the page to open."""
        return None if self.path is None else self.path / "report.html"

    def __repr__(self) -> str:
        name = self.path.name if self.path is not None else "(no folder)"
        return f"Run({name}: {score_text(self.metrics)})"

    def _repr_html_(self) -> str:
        return run_card(self.path, self.metrics, self.history, self.classes, self.note)


def score_text(metrics: dict[str, Any]) -> str:
    """'val accuracy 0.9833, test accuracy 0.9850' (the splits a run scored), or its status."""
    scores = [f"{split} accuracy {metrics[split]['accuracy']:.4f}"
              for split in ("val", "test") if isinstance(metrics.get(split), dict)]  # fmt: skip
    return ", ".join(scores) or str(metrics.get("stop_reason") or "no scores")


def run_card(
    path: Path | None,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    classes: list[str],
    note: str | None = None,
) -> str:
    """A run in a notebook: its name and classes, each split's scores, the stop reason, the
    learning curves as a small PNG, and links to its report and folder."""
    from imgclf import notebook
    from imgclf.results import WARNING, result_lines

    title = f"Run {path.name}" if path is not None else "Run"
    rows = [
        [split, f"{m['accuracy']:.4f}", f"{m['report']['macro avg']['f1-score']:.4f}",
         f"{m['loss']:.4f}", "-" if m.get("ece") is None else f"{100 * m['ece']:.1f}%",
         m.get("n_images", "-")]
        for split in ("val", "test") if isinstance(m := metrics.get(split), dict)
    ]  # fmt: skip
    scores = notebook.table(["split", "accuracy", "macro F1", "loss", "ECE", "images"], rows)
    lines = [notebook.line(f"{len(classes)} classes: {', '.join(classes[:12])}"
                           + (" ..." if len(classes) > 12 else ""))]  # fmt: skip
    warnings = [text for kind, text in result_lines(metrics, None) if kind == WARNING]
    lines += [notebook.line(text, "#cf222e") for text in warnings]  # a leak, a cut budget
    if metrics.get("stop_reason"):
        lines.append(notebook.line(f"stopped: {metrics['stop_reason']}"))
    if note:
        lines.append(notebook.line(note))
    curves = ""
    if history:
        from imgclf.evaluate.plots import learning_curves_figure

        curves = notebook.png(learning_curves_figure(history), dpi=50)
    links = ""
    if path is not None:
        report, folder = notebook.link(path / "report.html", "report.html"), notebook.link(path)
        links = f"<div>{report} · {folder}</div>"
    return notebook.card(title, "".join(lines[:1]), scores if rows else "", curves, links,
                         "".join(lines[1:]))  # fmt: skip
