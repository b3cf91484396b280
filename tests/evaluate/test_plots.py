"""The pictures: valid PNGs, no figure left open, and the edge cases users hit."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

from imgclf.evaluate import (
    confusion_matrix_figure,
    evaluate_predictions,
    learning_curves_figure,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_mistakes,
)
from imgclf.evaluate.plots import mistake_tiles

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after choosing the headless backend)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

HISTORY = [
    {"epoch": 1, "loss": 1.2, "accuracy": 0.50, "val_loss": 1.0, "val_accuracy": 0.60, "lr": 1e-3},
    {"epoch": 2, "loss": 0.8, "accuracy": 0.70, "val_loss": 0.7, "val_accuracy": 0.75, "lr": 1e-3},
    {"epoch": 3, "loss": 0.5, "accuracy": 0.85, "val_loss": 0.6, "val_accuracy": 0.80, "lr": 1e-4},
    {"epoch": 4, "loss": 0.3, "accuracy": 0.90, "val_loss": 0.65, "val_accuracy": 0.78},
]


@pytest.fixture(autouse=True)
def _no_figure_leak():
    plt.close("all")
    yield
    assert plt.get_fignums() == []


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


def _lines(ax, style: str) -> list[float]:
    """x positions of the vertical lines drawn with ``style``."""
    return [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == style]


def test_learning_curves_png(tmp_path: Path) -> None:
    path = plot_learning_curves(HISTORY, tmp_path / "plots" / "curves.png")
    assert path == tmp_path / "plots" / "curves.png"
    assert _is_png(path)
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]


def test_learning_curves_mark_the_best_epoch_by_monitor() -> None:
    loss_ax, acc_ax = learning_curves_figure(HISTORY, monitor="val_accuracy").axes[:2]
    assert _lines(acc_ax, ":") == [3] and _lines(loss_ax, ":") == [3]
    assert any("best val_accuracy" in text for text in acc_ax.get_legend_handles_labels()[1])
    loss_ax, _ = learning_curves_figure(HISTORY, monitor="val_loss").axes[:2]
    assert _lines(loss_ax, ":") == [3]
    assert any("best val_loss" in text for text in loss_ax.get_legend_handles_labels()[1])


def test_learning_curves_without_validation(tmp_path: Path) -> None:
    history = [
        {"epoch": 1, "loss": 1.0, "accuracy": 0.5},
        {"epoch": 2, "loss": 0.6, "accuracy": 0.7, "val_loss": None, "val_accuracy": None},
    ]
    figure = learning_curves_figure(history, monitor="val_accuracy")
    loss_ax, acc_ax = figure.axes[:2]
    assert acc_ax.get_legend_handles_labels()[1][0] == "train"
    assert "validation" not in acc_ax.get_legend_handles_labels()[1]
    assert _lines(acc_ax, ":") == [2]  # falls back to the training accuracy
    assert _is_png(plot_learning_curves(history, tmp_path / "c.png"))


def test_learning_curves_stage_starts(tmp_path: Path) -> None:
    figure = learning_curves_figure(HISTORY, stage_starts=[1, 3])
    for ax in figure.axes[:2]:
        assert _lines(ax, "--") == [2.5]  # between epochs 2 and 3; the first needs no line
        assert any("stage 2" in text.get_text() for text in ax.texts)
    assert _is_png(plot_learning_curves(HISTORY, tmp_path / "c.png", stage_starts=[3]))


def test_learning_curves_stage_starts_from_history() -> None:
    history = [dict(row, stage="head" if row["epoch"] < 3 else "fine-tune") for row in HISTORY]
    _, acc_ax = learning_curves_figure(history).axes[:2]
    assert _lines(acc_ax, "--") == [2.5]
    assert any("fine-tune" in text.get_text() for text in acc_ax.texts)


def test_learning_curves_with_no_history(tmp_path: Path) -> None:
    assert _is_png(plot_learning_curves([], tmp_path / "empty.png"))


def _history(first: int, count: int) -> list[dict]:
    return [
        {"epoch": e, "loss": 1 / e, "accuracy": 0.5, "val_loss": 1 / e, "val_accuracy": e / 100}
        for e in range(first, first + count)
    ]


@pytest.mark.parametrize(
    ("first", "count"),
    [(1, 1), (1, 2), (1, 3), (1, 50), (7, 1), (7, 3)],
    ids=["1 epoch", "2 epochs", "3 epochs", "50 epochs", "resumed at 7", "resumed 7-9"],
)
def test_learning_curves_tick_whole_epochs_only(first: int, count: int) -> None:
    figure = learning_curves_figure(_history(first, count))
    figure.draw_without_rendering()
    for ax in figure.axes[:2]:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks, "no epoch tick in view"
        assert all(float(t).is_integer() for t in ticks), ticks
        labels = [tick.get_text() for tick in ax.get_xticklabels() if tick.get_text()]
        assert all(label.lstrip("−-").isdigit() for label in labels), labels
        if count <= 3:
            assert ticks == list(range(first, first + count))


def test_confusion_matrix_counts_and_normalised(tmp_path: Path) -> None:
    cm = np.array([[3, 1, 0], [0, 4, 0], [0, 2, 2]])
    classes = ["cat", "dog", r"$\frac$ bird"]  # '$' must not start mathtext
    assert _is_png(plot_confusion_matrix(cm, classes, tmp_path / "cm.png", normalize=False))
    assert _is_png(plot_confusion_matrix(cm, classes, tmp_path / "cmn.png", normalize=True))
    ax = confusion_matrix_figure(cm, classes).axes[0]
    assert [t.get_text() for t in ax.texts][:3] == ["3", "1", "0"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["cat", "dog"]
    ax = confusion_matrix_figure(cm, classes, normalize=True).axes[0]
    assert [t.get_text() for t in ax.texts][:3] == ["0.75", "0.25", "0.00"]


def test_confusion_matrix_with_an_empty_row_normalises_to_zero() -> None:
    cm = np.array([[2, 0], [0, 0]])
    ax = confusion_matrix_figure(cm, ["a", "b"], normalize=True).axes[0]
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.00", "0.00", "0.00"]


def test_confusion_matrix_with_40_classes_has_no_annotations(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 20, (40, 40))
    classes = [f"class_{i:02d}" for i in range(40)]
    assert len(confusion_matrix_figure(cm, classes).axes[0].texts) == 0
    assert _is_png(plot_confusion_matrix(cm, classes, tmp_path / "cm40.png", normalize=True))


def test_confusion_matrix_shape_must_match_classes(tmp_path: Path) -> None:
    from imgclf.errors import DataError

    with pytest.raises(DataError, match=r"\(2, 2\)"):
        plot_confusion_matrix(np.zeros((3, 3)), ["a", "b"], tmp_path / "x.png")


def test_evaluation_plot_methods_return_figures() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    evaluation = evaluate_predictions(np.array([0, 1, 1]), probs, ["a", "b"])
    assert evaluation.plot_confusion(normalize=True).axes
    images = np.zeros((3, 8, 8, 1), dtype=np.uint8)
    assert evaluation.plot_mistakes(images).axes


def test_mistake_tiles_are_most_confident_first() -> None:
    images = np.arange(4 * 6 * 6 * 3, dtype=np.uint8).reshape(4, 6, 6, 3)
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([1, 0, 0, 1])
    confidence = np.array([0.61, 0.99, 0.93, 0.8])
    pictures, titles = mistake_tiles(images, y_true, y_pred, confidence, ["cat", "dog"])
    assert titles == ["dog -> cat (0.93)", "cat -> dog (0.61)"]
    assert np.array_equal(pictures[0], images[2])


def test_mistakes_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 12, 12, 3), dtype=np.uint8)
    y_true = rng.integers(0, 3, 30)
    y_pred = (y_true + rng.integers(0, 2, 30)) % 3
    confidence = rng.uniform(0.3, 1.0, 30)
    path = plot_mistakes(images, y_true, y_pred, confidence, ["a", "b", "c"], tmp_path / "m.png")
    assert _is_png(path)


def test_mistakes_grid_grayscale(tmp_path: Path) -> None:
    images = np.zeros((2, 8, 8, 1), dtype=np.uint8)
    path = plot_mistakes(
        images,
        np.array([0, 1]),
        np.array([1, 1]),
        np.array([0.9, 0.8]),
        ["0", "1"],
        tmp_path / "m.png",
    )
    assert _is_png(path)


def test_mistakes_grid_with_no_mistakes(tmp_path: Path) -> None:
    images = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    labels = np.array([0, 1, 1])
    path = plot_mistakes(images, labels, labels, np.ones(3), ["a", "b"], tmp_path / "none.png")
    assert _is_png(path)
