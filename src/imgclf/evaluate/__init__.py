"""Evaluate: metrics from predicted probabilities, the pictures, and the HTML report.

Importing this package is cheap: scikit-learn, pandas and matplotlib load only when a function
that needs them runs.
"""

from imgclf.evaluate.metrics import Evaluation, evaluate_predictions
from imgclf.evaluate.plots import (
    confusion_matrix_figure,
    learning_curves_figure,
    mistakes_figure,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_mistakes,
)
from imgclf.evaluate.report import render_report, write_report

__all__ = [
    "Evaluation",
    "confusion_matrix_figure",
    "evaluate_predictions",
    "learning_curves_figure",
    "mistakes_figure",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_mistakes",
    "render_report",
    "write_report",
]
