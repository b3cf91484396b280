"""How good is the model, and where does it go wrong: accuracy, loss, top-k, the per-class
report, the confusion matrix and the most confused pairs, from predicted probabilities.

Everything is computed once from (labels, probabilities) into an ``Evaluation``, which is plain
data: ``to_dict`` is what metrics.json and the HTML report hold, ``to_frame`` the per-class
table a notebook shows, and the plot methods draw the pictures the tutorials draw by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

EPSILON = 1e-12
MOST_CONFUSED = 10
_DECIMALS = 6


@dataclass(repr=False)
class Evaluation:
    """Metrics of one split, plus the per-image predictions needed to draw the mistakes."""

    KEPT = 25  # the worst mistakes whose images an evaluation keeps to draw

    split: str
    classes: list[str]
    accuracy: float
    loss: float
    top_k: dict[int, float]
    report: dict[str, Any]
    confusion: np.ndarray
    per_class_accuracy: dict[str, float]
    most_confused: list[tuple[str, str, int]]
    y_true: np.ndarray
    y_pred: np.ndarray
    confidence: np.ndarray
    without_leaks: dict[str, Any] | None = None  # the scores without leaked images (if any)
    ece: float = math.nan  # expected calibration error, 15 bins of top-label confidence
    mistake_images: np.ndarray | None = None  # the images of mistakes(KEPT), when evaluated

    @property
    def n_images(self) -> int:
        """Images evaluated."""
        return len(self.y_true)

    @property
    def macro_f1(self) -> float:
        """Unweighted mean F1 over classes: the headline figure for imbalanced data."""
        return float(self.report["macro avg"]["f1-score"])

    def __repr__(self) -> str:
        return f"Evaluation({self.summary_line()})"

    def _repr_html_(self) -> str:
        """The scores, each class's precision, recall and F1, the most confused pairs and
        (up to 20 classes) the confusion matrix, for a notebook."""
        from imgclf import notebook

        per_class = [
            [name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}",
             int(r["support"])]
            for name in self.classes if isinstance(r := self.report.get(name), dict)
        ]  # fmt: skip
        table = notebook.table(["class", "precision", "recall", "F1", "images"], per_class)
        confused = "; ".join(f"{a} as {b}: {n}" for a, b, n in self.most_confused[:5])
        matrix = ""
        if len(self.classes) <= 20:
            matrix = notebook.png(self.plot_confusion(), dpi=50)
        return notebook.card(
            f"Evaluation: {self.split}", notebook.line(self.summary_line()), table,
            notebook.line(f"most confused: {confused}" if confused else ""), matrix,
        )  # fmt: skip

    def summary_line(self) -> str:
        """One line for the terminal, e.g. 'test: accuracy 0.9853, macro F1 0.9850, ...'
        (ECE: the expected calibration error, 15 bins)."""
        return (
            f"{self.split}: accuracy {self.accuracy:.4f}, macro F1 {self.macro_f1:.4f}, "
            f"loss {self.loss:.4f}, ECE {100 * self.ece:.1f}% ({self.n_images} images)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe metrics (no numpy types, non-finite numbers as None), without per-image
        arrays so that metrics.json stays small whatever the size of the split."""
        return _json_safe(
            {
                "split": self.split,
                "n_images": self.n_images,
                "classes": list(self.classes),
                "accuracy": self.accuracy,
                "loss": self.loss,
                "ece": self.ece,
                "top_k": {f"top_{k}": v for k, v in self.top_k.items()},
                "report": self.report,
                "per_class_accuracy": self.per_class_accuracy,
                "most_confused": [
                    {"true": t, "predicted": p, "count": n} for t, p, n in self.most_confused
                ],
                "confusion": self.confusion,
                **({"without_leaks": self.without_leaks} if self.without_leaks else {}),
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """Per-class table (precision, recall, f1, support, accuracy), one row per class."""
        import pandas as pd

        rows = [
            {
                "precision": self.report[name]["precision"],
                "recall": self.report[name]["recall"],
                "f1": self.report[name]["f1-score"],
                "support": int(self.report[name]["support"]),
                "accuracy": self.per_class_accuracy[name],
            }
            for name in self.classes
        ]
        return pd.DataFrame(rows, index=pd.Index(self.classes, name="class"))

    def mistakes(self, n: int | None = 25) -> np.ndarray:
        """Indices of misclassified images, most confident first: the worst errors to look at."""
        wrong = np.flatnonzero(self.y_true != self.y_pred)
        order = np.argsort(-self.confidence[wrong], kind="stable")
        return wrong[order][:n]

    def plot_confusion(self, normalize: bool = False, ax: Axes | None = None) -> Figure:
        """The confusion matrix heatmap as a figure (row-normalised with ``normalize``)."""
        from imgclf.evaluate.plots import confusion_matrix_figure

        return confusion_matrix_figure(self.confusion, self.classes, normalize=normalize, ax=ax)

    def plot_mistakes(self, images: np.ndarray | None = None, n: int = 25) -> Figure:
        """A grid of the ``n`` most confident mistakes; ``images`` are this split's, in order
        (None: the worst ones an evaluation of a run or data kept, up to ``KEPT``)."""
        from imgclf.evaluate.plots import mistakes_figure

        if images is None:
            if self.mistake_images is None:
                raise DataError(
                    "This evaluation kept no images (it was made from probabilities): pass "
                    "plot_mistakes the split's images, in evaluation order."
                )
            worst = self.mistakes(min(n, len(self.mistake_images)))
            kept = self.mistake_images[: len(worst)]
            return mistakes_figure(kept, self.y_true[worst], self.y_pred[worst],
                                   self.confidence[worst], self.classes, n=n)  # fmt: skip
        if len(images) != self.n_images:
            raise DataError(
                f"plot_mistakes needs this split's {self.n_images} images in evaluation order; "
                f"received {len(images)}."
            )
        return mistakes_figure(images, self.y_true, self.y_pred, self.confidence, self.classes, n=n)


def evaluate_predictions(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    split: str = "test",
    top_k: tuple[int, ...] = (1, 3, 5),
) -> Evaluation:
    """Score softmax probabilities (N, K) against true labels (N,) or one-hot (N, K).

    Top-k accuracy is given only for k < K (with k >= K it is trivially 1). Classes that are
    never predicted or absent get 0 precision/recall rather than a warning.
    """
    from sklearn.metrics import classification_report, confusion_matrix

    from imgclf.evaluate.calibration import ece

    y_true, probs = _check_inputs(y_true, probs, classes)
    n_classes = len(classes)
    labels = list(range(n_classes))
    y_pred = probs.argmax(axis=1)
    report = classification_report(
        y_true,
        y_pred,
        labels=labels,
        target_names=list(classes),
        output_dict=True,
        zero_division=0,
    )
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    true_probs = probs[np.arange(len(y_true)), y_true]
    return Evaluation(
        split=split,
        classes=list(classes),
        accuracy=float(np.mean(y_pred == y_true)),
        loss=float(-np.mean(np.log(np.clip(true_probs, EPSILON, None)))),
        top_k=_top_k_accuracy(y_true, probs, top_k),
        report=_supports_as_int(report),
        confusion=confusion,
        per_class_accuracy={name: float(report[name]["recall"]) for name in classes},
        most_confused=_most_confused(confusion, classes),
        y_true=y_true,
        y_pred=y_pred,
        confidence=probs.max(axis=1),
        ece=ece(probs, y_true) if len(y_true) else math.nan,
    )


def _check_inputs(
    y_true: np.ndarray, probs: np.ndarray, classes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int64 (N,) and probabilities as float64 (N, K), or a DataError saying why not."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise DataError(
            f"probs must have shape (N, {len(classes)}) for {len(classes)} classes; "
            f"received shape {probs.shape}."
        )
    if y_true.ndim == 2 and y_true.shape == probs.shape:
        y_true = y_true.argmax(axis=1)  # one-hot labels, as Keras users have them
    if y_true.ndim != 1 or len(y_true) != len(probs):
        raise DataError(
            f"y_true must hold one label per row of probs ({len(probs)}); "
            f"received shape {y_true.shape}."
        )
    if len(y_true) == 0:
        raise DataError("There are no images to evaluate (0 labels). Check the split.")
    if not np.issubdtype(y_true.dtype, np.integer):
        raise DataError(f"y_true must hold integer class indices; received dtype {y_true.dtype}.")
    if y_true.min() < 0 or y_true.max() >= len(classes):
        raise DataError(
            f"y_true holds labels outside 0..{len(classes) - 1}: "
            f"min {y_true.min()}, max {y_true.max()}. Pass every class name in ``classes``."
        )
    return y_true.astype(np.int64), probs


def _supports_as_int(report: dict[str, Any]) -> dict[str, Any]:
    """scikit-learn reports image counts (support) as floats; they are counts."""
    for row in report.values():
        if isinstance(row, dict) and "support" in row:
            row["support"] = int(row["support"])
    return report


def _top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, ks: tuple[int, ...]) -> dict[int, float]:
    """Share of images whose true class is among the k most probable, for each k < K."""
    n_classes = probs.shape[1]
    wanted = sorted({int(k) for k in ks if 0 < int(k) < n_classes})
    if not wanted:
        return {}
    ranked = np.argsort(-probs, axis=1, kind="stable")[:, : max(wanted)]
    hits = ranked == y_true[:, None]
    return {k: float(hits[:, :k].any(axis=1).mean()) for k in wanted}


def _most_confused(confusion: np.ndarray, classes: list[str]) -> list[tuple[str, str, int]]:
    """(true name, predicted name, count) of the off-diagonal cells, largest count first."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    true_idx, pred_idx = np.nonzero(off)
    counts = off[true_idx, pred_idx]
    order = np.argsort(-counts, kind="stable")[:MOST_CONFUSED]
    return [(classes[true_idx[i]], classes[pred_idx[i]], int(counts[i])) for i in order]


def _json_safe(value: Any) -> Any:
    """Plain Python for json.dumps(allow_nan=False): numpy to Python, floats rounded, nan/inf
    to None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_safe(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return round(value, _DECIMALS) if math.isfinite(value) else None
    return value


def leak_free_score(
    y_true: np.ndarray,
    probs: np.ndarray,
    rows: np.ndarray,
    leaked: np.ndarray,
    classes: list[str],
    split: str = "test",
    source: str = "train",
) -> dict[str, Any] | None:
    """The split's scores without its ``leaked`` rows (copies of images in an earlier split:
    a model that memorised its training images scores them for free), or None when none of
    ``rows`` leaks. ``y_true`` and ``probs`` align with ``rows``."""
    keep = ~np.isin(rows, leaked)
    n_leaked = int((~keep).sum())
    if n_leaked == 0:
        return None
    clean = evaluate_predictions(y_true[keep], probs[keep], classes) if keep.any() else None
    found = {
        "accuracy": None if clean is None else float(clean.accuracy),
        "macro_f1": None if clean is None else float(clean.macro_f1),
        "n_images": int(keep.sum()),
        "leaked": n_leaked,
        "source": source,
    }
    indices, _ = _check_inputs(y_true, probs, classes)
    accuracy = float(np.mean(probs.argmax(axis=1) == indices))
    return {**found, "summary": leak_free_sentence(split, accuracy, found)}


def leak_free_sentence(split: str, accuracy: float, clean: dict[str, Any]) -> str:
    """'test accuracy 0.9120 (0.9050 on 986 images without the 14 that leak from train)'."""
    if clean["accuracy"] is None:
        left = "no image is left"
    else:
        left = f"{clean['accuracy']:.4f} on {clean['n_images']:,} images"
    return (
        f"{split} accuracy {accuracy:.4f} ({left} without the {clean['leaked']:,} that leak "
        f"from {clean['source']})"
    )
