"""The pictures of a comparison: overlaid learning curves, score against wall time with the
Pareto front, parallel coordinates of the settings that differ, and per-class F1 deltas.

Figures use matplotlib's object-oriented API (as plots.py does); ``save_png`` writes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MANY = 12  # more runs than this: no legends, grey lines, only the highlighted ones named
# How a run that did not finish its training is drawn: (marker, colour) and a line style.
UNFINISHED_MARKERS = {"pruned": ("v", "tab:orange"), "cut": ("<", "tab:purple"),
                      "failed": ("X", "tab:red"), "interrupted": ("s", "tab:brown")}  # fmt: skip
OTHER_MARKER = ("D", "0.3")  # any other status (running, unknown)


def curves_figure(
    histories: dict[str, list[dict[str, Any]]], highlight: list[str] | None = None
) -> Figure:
    """Validation accuracy (training accuracy when a run has none) and loss of every run; with
    more than MANY runs, all in grey and only ``highlight`` (the best) in colour and named."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    acc_ax, loss_ax = fig.subplots(1, 2)
    many = len(histories) > MANY
    shown = set(highlight or []) if many else set(histories)
    for name, history in sorted(histories.items(), key=lambda item: item[0] in shown):
        epochs = [row.get("epoch") for row in history]
        has_val = any(row.get("val_accuracy") is not None for row in history)
        prefix = "val_" if has_val else ""
        style = {"label": name} if name in shown else {"color": "0.75", "linewidth": 0.7}
        acc_ax.plot(epochs, [row.get(f"{prefix}accuracy") for row in history], **style)
        loss_ax.plot(epochs, [row.get(f"{prefix}loss") for row in history], **style)
    for ax, title in ((acc_ax, "validation accuracy"), (loss_ax, "validation loss")):
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # "best" searches for seconds with many runs
            ax.legend(fontsize=8, loc="lower right" if ax is acc_ax else "upper right")
    return fig


def pareto_figure(
    names: list[str],
    seconds: list[float],
    scores: list[float],
    front: list[int],
    score: str,
    outcomes: list[str] | None = None,
) -> Figure:
    """Each run's score against its wall seconds; the Pareto front (nothing both faster and
    better) joined and marked. Runs whose ``outcomes`` is not ``finished`` (pruned, cut or
    failed trials: their scores are not a full run's) get their own marker per outcome and
    are never on the front. With more than MANY runs only the front is named."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    outcomes = outcomes or ["finished"] * len(names)
    for kind in dict.fromkeys(outcomes):
        at = [i for i, outcome in enumerate(outcomes) if outcome == kind]
        marker, color = ("o", "0.5") if kind == "finished" else _marker(kind)
        label = None if kind == "finished" else f"{kind} (not on the front)"
        ax.scatter([seconds[i] for i in at], [scores[i] for i in at], color=color,
                   marker=marker, label=label, zorder=2)  # fmt: skip
    if front:
        ax.step([seconds[i] for i in front], [scores[i] for i in front], where="post",
                color="tab:green", label="Pareto front", zorder=1)  # fmt: skip
        ax.scatter([seconds[i] for i in front], [scores[i] for i in front], color="tab:green",
                   zorder=3)  # fmt: skip
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")  # scores rise to the right, as a rule
    named = set(front) if len(names) > MANY else set(range(len(names)))
    for i, (name, x, y) in enumerate(zip(names, seconds, scores, strict=True)):
        if i in named:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(title=f"{score} against wall time", xlabel="wall seconds", ylabel=score)
    ax.grid(alpha=0.3)
    return fig


def parallel_figure(
    names: list[str],
    settings: dict[str, list[Any]],
    scores: list[float | None],
    score: str,
    outcomes: list[str] | None = None,
) -> Figure:
    """One vertical axis per differing setting plus the score; a line per run, coloured by its
    score. Numbers are scaled to their range (log scale when they span 10x or more), other
    values placed in order of first appearance and labelled; runs are named in a legend up
    to MANY of them. A run whose outcome is not ``finished`` is dashed, with its outcome's
    marker and its outcome after its name."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    columns = {**settings, score: scores}
    fig = Figure(figsize=(max(6, 1.6 * len(columns)), 4.5), layout="constrained")
    ax = fig.subplots()
    scaled = [_scale(values) for values in columns.values()]
    known = [s for s in scores if s is not None]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    cmap = colormaps["viridis"]
    outcomes = outcomes or ["finished"] * len(names)
    for run, name in enumerate(names):
        value, kind = scores[run], outcomes[run]
        color = cmap((value - low) / (high - low) if value is not None and high > low else 0.5)
        style = {"marker": "o", "label": name} if kind == "finished" else {
            "marker": _marker(kind)[0], "linestyle": "--", "label": f"{name} ({kind})"}  # fmt: skip
        ax.plot(range(len(columns)), [column[0][run] for column in scaled], color=color,
                linewidth=1.0 if len(names) <= MANY else 0.6,
                alpha=1.0 if len(names) <= MANY else 0.5, **style)  # fmt: skip
    for x, (_, labels) in enumerate(scaled):
        for y, text in labels:
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 0), fontsize=7,
                        va="center")  # fmt: skip
    ax.set_xticks(range(len(columns)), list(columns), rotation=20, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set(title="settings that differ (line colour: score)")
    for x in range(len(columns)):
        ax.axvline(x, color="0.8", zorder=0)
    if len(names) <= MANY:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def f1_delta_figure(first: str, second: str, f1: dict[str, dict[str, float]]) -> Figure:
    """Per-class F1 of ``second`` minus ``first`` (classes both know), worst first."""
    from matplotlib.figure import Figure

    classes = [name for name in f1.get(first, {}) if name in f1.get(second, {})]
    deltas = np.array([f1[second][name] - f1[first][name] for name in classes])
    order = np.argsort(deltas, kind="stable")
    fig = Figure(figsize=(7, max(2.5, 0.28 * len(classes) + 1.2)), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:red" if deltas[i] < 0 else "tab:green" for i in order]
    ax.barh([classes[i] for i in order], deltas[order], color=colors)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set(title=f"per-class F1: {second} minus {first}", xlabel="F1 difference")
    ax.grid(alpha=0.3, axis="x")
    if not classes:
        ax.text(0.5, 0.5, "no per-class scores", ha="center", va="center", transform=ax.transAxes)
    return fig


def _marker(outcome: str) -> tuple[str, str]:
    """(marker, colour) of a run that did not finish, by its outcome."""
    return UNFINISHED_MARKERS.get(outcome, OTHER_MARKER)


def _scale(values: list[Any]) -> tuple[list[float], list[tuple[float, str]]]:
    """Positions in 0..1 for one axis, and the labels to write at positions."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(values) and numbers:
        array = np.asarray(numbers, dtype=float)
        if array.min() > 0 and array.max() / array.min() >= 10:
            array = np.log10(array)
        span = array.max() - array.min()
        positions = ((array - array.min()) / span if span else np.full(len(array), 0.5)).tolist()
        labels = sorted({(positions[i], f"{values[i]:.3g}") for i in range(len(values))})
        if len(labels) > 6:  # a continuous axis (a learning rate): label its ends and middle
            labels = [labels[round(k * (len(labels) - 1) / 4)] for k in range(5)]
        return positions, labels
    texts = [str(v) for v in values]
    levels = list(dict.fromkeys(texts))
    step = 1 / max(1, len(levels) - 1)
    positions = [levels.index(text) * step if len(levels) > 1 else 0.5 for text in texts]
    return positions, [(levels.index(t) * step if len(levels) > 1 else 0.5, t) for t in levels]
