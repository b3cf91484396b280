"""The pictures every tutorial draws by hand: learning curves, the confusion matrix heatmap, the
grid of misclassified images and the learning-rate range test.

Each picture has a ``*_figure`` function returning a matplotlib Figure (for notebooks) and a
``plot_*`` function saving it as a PNG (for run folders and the HTML report). Figures are built
with the object-oriented API, never pyplot, so nothing is left open in pyplot's registry, the
user's notebook backend is untouched, and drawing is safe from worker threads; PNGs are written
by matplotlib's Agg renderer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.errors import DataError
from imgclf.fileio import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ANNOTATE_MAX_CLASSES = 30
GRID_COLUMNS = 5
TITLE_WIDTH = 26  # characters of a 9 pt title that fit over a grid cell
BEST_COLOR = "tab:green"
_STAGE_COLOR = "0.45"


# ---------------------------------------------------------------- learning curves


def learning_curves_figure(
    history: list[dict[str, Any]],
    monitor: str = "val_accuracy",
    stage_starts: list[int] | None = None,
) -> Figure:
    """Loss and accuracy per epoch, train vs validation, with the best epoch and stage starts.

    Args:
        history: One dict per epoch (epoch, loss, accuracy, val_loss, val_accuracy, ...); missing
            or None values leave gaps.
        monitor: The key that chose the best epoch (maximised unless it is a loss).
        stage_starts: First epoch of each training stage (e.g. fine-tuning); by default the
            epochs where the history's ``stage`` changes.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = _epochs(history)
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        _plot_metric(ax, epochs, history, metric)
        ax.set(title=metric, xlabel="epoch", ylabel=metric)
        # min_n_ticks=1: with fewer than 2 integers in view (a 1-epoch run) MaxNLocator would
        # otherwise give up on integers and tick 0.945 ... 1.050
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    if not history:
        for ax in (loss_ax, acc_ax):
            ax.text(
                0.5, 0.5, "no epochs recorded", ha="center", va="center", transform=ax.transAxes
            )
    starts = _stage_starts(history) if stage_starts is None else list(stage_starts)
    _mark_stages((loss_ax, acc_ax), starts, history, epochs)
    _mark_best(loss_ax, acc_ax, epochs, history, monitor)
    for ax in (loss_ax, acc_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def plot_learning_curves(
    history: list[dict[str, Any]],
    path: str | Path,
    monitor: str = "val_accuracy",
    stage_starts: list[int] | None = None,
) -> Path:
    """Save the learning curves (see ``learning_curves_figure``) as a PNG at ``path``."""
    return save_png(learning_curves_figure(history, monitor, stage_starts), path)


def _epochs(history: list[dict[str, Any]]) -> np.ndarray:
    """1-based epoch numbers: the rows' own ``epoch`` where present, else their position."""
    return np.array([row.get("epoch") or i + 1 for i, row in enumerate(history)], dtype=float)


def _series(history: list[dict[str, Any]], key: str) -> np.ndarray:
    """The values of ``key`` as floats, NaN where missing, None or not a number."""
    values = []
    for row in history:
        value = row.get(key)
        values.append(float(value) if isinstance(value, int | float) else math.nan)
    return np.array(values, dtype=float)


def _plot_metric(ax: Axes, epochs: np.ndarray, history: list[dict[str, Any]], key: str) -> None:
    for prefix, label in (("", "train"), ("val_", "validation")):
        values = _series(history, prefix + key)
        if np.isfinite(values).any():
            ax.plot(epochs, values, marker="o", markersize=3, label=label)


def _stage_starts(history: list[dict[str, Any]]) -> list[int]:
    """Epochs where the ``stage`` key changes from the row before."""
    epochs = _epochs(history)
    return [
        int(epochs[i])
        for i in range(1, len(history))
        if "stage" in history[i] and history[i].get("stage") != history[i - 1].get("stage")
    ]


def _mark_stages(
    axes: tuple[Axes, ...], starts: list[int], history: list[dict[str, Any]], epochs: np.ndarray
) -> None:
    """A dashed line between the epochs where a stage starts (after the first), labelled on
    its left so the label never covers the new stage's first point."""
    first = epochs.min() if len(epochs) else 1
    later = sorted(s for s in starts if s > first)
    for number, start in enumerate(later, start=2):
        label = _stage_label(history, epochs, start, number)
        for ax in axes:
            ax.axvline(start - 0.5, color=_STAGE_COLOR, linestyle="--", linewidth=1)
            ax.text(
                start - 0.5,
                0.98,
                f" {label}",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
                color=_STAGE_COLOR,
            )


def _stage_label(history: list[dict[str, Any]], epochs: np.ndarray, start: int, number: int) -> str:
    """The history's own stage name at ``start`` when it has one, else 'stage <number>'."""
    rows = np.flatnonzero(epochs == start)
    stage = history[rows[0]].get("stage") if len(rows) else None
    if isinstance(stage, str) and stage:
        return plain_text(stage)
    return f"stage {stage}" if isinstance(stage, int) else f"stage {number}"


def _mark_best(
    loss_ax: Axes, acc_ax: Axes, epochs: np.ndarray, history: list[dict[str, Any]], monitor: str
) -> None:
    """A vertical line at the best epoch by ``monitor`` and a labelled dot on its curve."""
    values = _series(history, monitor)
    if not np.isfinite(values).any() and monitor.startswith("val_"):
        monitor = monitor[len("val_") :]  # no validation split: the run monitored training
        values = _series(history, monitor)
    if not np.isfinite(values).any():
        return
    lower_is_better = "loss" in monitor or "error" in monitor
    best = int(np.nanargmin(values) if lower_is_better else np.nanargmax(values))
    epoch, value = epochs[best], values[best]
    for ax in (loss_ax, acc_ax):
        ax.axvline(epoch, color=BEST_COLOR, linestyle=":", linewidth=1.2)
    ax = loss_ax if "loss" in monitor else acc_ax
    ax.plot(
        [epoch],
        [value],
        "o",
        color=BEST_COLOR,
        markersize=7,
        zorder=5,
        label=f"best {plain_text(monitor)} (epoch {epoch:g})",
    )
    ax.annotate(
        f"{value:.4f}",
        (epoch, value),
        xytext=(6, 6),
        textcoords="offset points",
        fontsize=8,
        color=BEST_COLOR,
    )


# ---------------------------------------------------------------- confusion matrix


def confusion_matrix_figure(
    cm: np.ndarray, classes: list[str], normalize: bool = False, ax: Axes | None = None
) -> Figure:
    """Heatmap of true (rows) vs predicted (columns), counts or row-normalised (recall).

    Cells are annotated up to ANNOTATE_MAX_CLASSES classes; beyond that the text is unreadable.
    """
    from matplotlib.figure import Figure

    cm = _check_confusion(cm, classes)
    values = _row_normalised(cm) if normalize else cm
    n = len(classes)
    if ax is None:
        side = min(4.0 + 0.4 * n, 20.0)
        fig = Figure(figsize=(side + 1.5, side), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    vmax = 1.0 if normalize else max(1.0, float(values.max()))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    names = [plain_text(c) for c in classes]
    fontsize = 9 if n <= 20 else 7
    ax.set_xticks(
        np.arange(n),
        labels=names,
        rotation=45,
        ha="right",
        rotation_mode="anchor",
        fontsize=fontsize,
    )
    ax.set_yticks(np.arange(n), labels=names, fontsize=fontsize)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title("confusion matrix (row-normalised)" if normalize else "confusion matrix (counts)")
    if n <= ANNOTATE_MAX_CLASSES:
        _annotate_cells(ax, values, normalize, vmax)
    return fig


def plot_confusion_matrix(
    cm: np.ndarray, classes: list[str], path: str | Path, normalize: bool = False
) -> Path:
    """Save the confusion matrix heatmap (see ``confusion_matrix_figure``) as a PNG."""
    return save_png(confusion_matrix_figure(cm, classes, normalize=normalize), path)


def _check_confusion(cm: np.ndarray, classes: list[str]) -> np.ndarray:
    cm = np.asarray(cm)
    n = len(classes)
    if cm.shape != (n, n):
        raise DataError(
            f"The confusion matrix must be ({n}, {n}) for {n} classes; received shape {cm.shape}."
        )
    return cm


def _row_normalised(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (a class with no images stays at 0)."""
    totals = cm.sum(axis=1, keepdims=True).astype(float)
    return np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)


def _annotate_cells(ax: Axes, values: np.ndarray, normalize: bool, vmax: float) -> None:
    fontsize = 9 if len(values) <= 15 else 7
    for (row, col), value in np.ndenumerate(values):
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        color = "white" if value > vmax / 2 else "black"
        ax.text(col, row, text, ha="center", va="center", fontsize=fontsize, color=color)


# ---------------------------------------------------------------- mistakes


def mistakes_figure(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    classes: list[str],
    n: int = 25,
) -> Figure:
    """The ``n`` most confident mistakes titled 'true -> predicted (p)', or 'no mistakes'."""
    pictures, titles = mistake_tiles(images, y_true, y_pred, confidence, classes, n)
    if not pictures:
        return _message_figure("no mistakes")
    from imgclf.data.views.preview import image_grid_figure

    return image_grid_figure(pictures, titles, GRID_COLUMNS)


def plot_mistakes(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    classes: list[str],
    path: str | Path,
    n: int = 25,
) -> Path:
    """Save the grid of the ``n`` most confident mistakes as a PNG (a note if there are none)."""
    return save_png(mistakes_figure(images, y_true, y_pred, confidence, classes, n), path)


def mistake_tiles(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    classes: list[str],
    n: int = 25,
) -> tuple[list[np.ndarray], list[str]]:
    """Images (H, W, C uint8) and titles of the ``n`` most confident mistakes, worst first."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    confidence = np.asarray(confidence, dtype=float)
    if not len(images) == len(y_true) == len(y_pred) == len(confidence):
        raise DataError(
            f"images, y_true, y_pred and confidence must have the same length; received "
            f"{len(images)}, {len(y_true)}, {len(y_pred)}, {len(confidence)}."
        )
    wrong = np.flatnonzero(y_true != y_pred)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][: max(n, 0)]
    pictures = [_as_uint8_hwc(images[i]) for i in worst]
    titles = [_mistake_title(classes[y_true[i]], classes[y_pred[i]], confidence[i]) for i in worst]
    return pictures, titles


def _mistake_title(true: str, predicted: str, confidence: float) -> str:
    """'cat -> dog (0.93)', broken after the arrow when too long for a grid cell."""
    true, predicted = _short(true), _short(predicted)
    one_line = f"{true} -> {predicted} ({confidence:.2f})"
    if len(one_line) <= TITLE_WIDTH:
        return plain_text(one_line)
    return plain_text(f"{true} ->\n{predicted} ({confidence:.2f})")


def _as_uint8_hwc(image: np.ndarray) -> np.ndarray:
    """One image as (H, W, C) uint8; floats in [0, 1] are scaled to 0..255."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8:
        scale = 255.0 if image.size and float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image * scale), 0, 255).astype(np.uint8)
    return image


def _message_figure(message: str) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 1))
    fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=12)
    return fig


# ---------------------------------------------------------------- lr range test


# ---------------------------------------------------------------- helpers


def plain_text(text: str) -> str:
    """User text (class names) shown literally: '$' would otherwise start matplotlib mathtext."""
    return str(text).replace("$", r"\$")


def _short(name: str, limit: int = 20) -> str:
    """Long class names cut so that a grid title fits its cell."""
    name = str(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + rename), so a half-drawn file never shows."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)
