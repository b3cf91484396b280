"""The learning-rate range test's picture: the smoothed loss against the lr, suggestion marked."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.evaluate.plots import BEST_COLOR, plain_text, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def lr_find_figure(result: Any) -> Figure:
    """The smoothed loss of a learning-rate range test against the lr (log scale), with the
    suggested lr marked and given in the legend.

    Args:
        result: An LRFinderResult (anything with ``lrs``, ``losses``, ``suggestion`` and
            ``stage``); steps whose loss is not finite are left out.
    """
    from matplotlib.figure import Figure

    lrs, losses = np.asarray(result.lrs, dtype=float), np.asarray(result.losses, dtype=float)
    finite = np.isfinite(losses)
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(lrs[finite], losses[finite], label="loss (smoothed)")
    at = int(np.argmin(np.abs(np.log(lrs) - math.log(result.suggestion))))
    ax.axvline(result.suggestion, color=BEST_COLOR, linestyle=":", linewidth=1.2)
    ax.plot(
        [result.suggestion],
        [losses[at]],
        "o",
        color=BEST_COLOR,
        markersize=7,
        zorder=5,
        label=f"suggested lr {result.suggestion:.2e}",
    )
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel="loss (smoothed)")
    ax.set_title(f"lr range test: {plain_text(result.stage)} stage, {len(lrs)} steps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_lr_find(result: Any, path: str | Path) -> Path:
    """Save the range test curve (see ``lr_find_figure``) as a PNG at ``path``."""
    return save_png(lr_find_figure(result), path)
