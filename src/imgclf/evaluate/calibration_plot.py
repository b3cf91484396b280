"""The reliability diagram: accuracy against confidence per bin, before and after temperature
scaling, with the diagonal a calibrated model sits on and each ECE in the legend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imgclf.evaluate.calibration import Reliability
from imgclf.evaluate.plots import save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def reliability_figure(
    before: Reliability, after: Reliability | None, temperature: float | None, split: str
) -> Figure:
    """Bars of accuracy per confidence bin (before: outlined; after: filled), bins without
    images left out, and under them how many images each bin holds."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    ax, counts = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    edges = before.edges
    width = np.diff(edges)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    shown = [("before", before, "none", "tab:red")]
    if after is not None:
        shown.append((f"after (T = {temperature:.2f})", after, "tab:blue", "tab:blue"))
    for name, table, face, edge in shown:
        used = table.count > 0
        ax.bar(
            edges[:-1][used], table.accuracy[used], width=width[used], align="edge",
            facecolor=face, edgecolor=edge, alpha=0.55 if face != "none" else 1.0,
            linewidth=1.2, label=f"{name}: ECE {100 * table.ece:.1f}%",
        )  # fmt: skip
        counts.bar(edges[:-1], table.count, width=width, align="edge", facecolor=face,
                   edgecolor=edge, alpha=0.55 if face != "none" else 1.0)  # fmt: skip
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    ax.set_title(f"Reliability on {split}: accuracy per confidence bin")
    ax.legend(loc="upper left")
    counts.set(xlabel="confidence (top class probability)", ylabel="images")
    return fig


def plot_reliability(
    before: Reliability,
    after: Reliability | None,
    temperature: float | None,
    split: str,
    path: str | Path,
) -> Path:
    """Save the reliability diagram as a PNG."""
    return save_png(reliability_figure(before, after, temperature, split), path)
