"""The report's heatmaps: the mistakes grid with each mistake's Grad-CAM map drawn over it, and
"what the model looks at": the most confident right answers of each class with theirs
(``models.attribution``). Without the explain extra, or for a network with no spatial map (an
MLP), the mistakes grid stays plain."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imgclf.errors import ModelError
from imgclf.evaluate.metrics import Evaluation
from imgclf.evaluate.plots import GRID_COLUMNS, plot_mistakes, save_png
from imgclf.models.attribution import overlays
from imgclf.models.extras import EXPLAIN
from imgclf.models.network import ImageModel

MISTAKES = 25
RIGHT_PER_CLASS = 2
RIGHT_AT_MOST = 10


def heatmap_grids(
    model: ImageModel, images: np.ndarray, evaluation: Evaluation, split: str, folder: Path
) -> dict[str, Path]:
    """{caption: PNG} of the two grids (none without the explain extra). ``images`` are the
    split's decoded images, in the evaluation's order."""
    if not EXPLAIN.installed():
        return {}
    from imgclf.data.views.preview import image_grid_figure

    classes = evaluation.classes
    worst = evaluation.mistakes(MISTAKES)
    right = _right_answers(evaluation)
    chosen = np.concatenate([worst, right]).astype(np.int64)
    try:
        drawn = overlays(model, images[chosen], evaluation.y_pred[chosen])
    except ModelError:  # an MLP: nothing spatial to draw, the plain grid stays
        return {}
    mistakes, correct = drawn[: len(worst)], drawn[len(worst) :]
    e = evaluation
    plots = {
        f"mistakes ({split})": plot_mistakes(
            mistakes,
            e.y_true[worst],
            e.y_pred[worst],
            e.confidence[worst],
            classes,
            folder / "mistakes.png",
        )  # fmt: skip
    }
    if len(right):
        titles = [f"{classes[e.y_pred[i]]} ({e.confidence[i]:.2f})" for i in right]
        figure = image_grid_figure(list(correct), titles, GRID_COLUMNS)
        plots[f"what the model looks at ({split})"] = save_png(figure, folder / "looks_at.png")
    return plots


def _right_answers(evaluation: Evaluation) -> np.ndarray:
    """The most confident right answers, RIGHT_PER_CLASS of each class, at most RIGHT_AT_MOST."""
    right = np.flatnonzero(evaluation.y_true == evaluation.y_pred)
    picked = []
    for label in range(len(evaluation.classes)):
        members = right[evaluation.y_pred[right] == label]
        order = np.argsort(-evaluation.confidence[members], kind="stable")
        picked += members[order][:RIGHT_PER_CLASS].tolist()
    return np.array(picked[:RIGHT_AT_MOST], dtype=np.int64)
