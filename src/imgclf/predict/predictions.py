"""Predictions: class probabilities of the images read, what was skipped and why, the score
against a CSV's labels, and the CSV or Kaggle file written from them."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imgclf.data.formats.inputs import skip_counts
from imgclf.errors import ConfigError, DataError, did_you_mean
from imgclf.fileio import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CSV_FORMATS = ("csv", "kaggle")
TRUE_LABEL_COLUMN = "true_label"  # the written CSV's column of the input CSV's labels
DEFAULT_OUTPUT = Path("predictions.csv")
FLOAT_FORMAT = "%.6f"  # one fixed precision for every probability in a written CSV


@dataclass
class Predictions:
    """Class probabilities for the images that were read, and what was left out and why.

    ``true_labels`` holds each image's label from a CSV input (None where unknown, or None
    for all when no input had labels); ``accuracy`` scores the predictions against them.
    """

    paths: list[str]
    probs: np.ndarray  # (N, K) softmax probabilities, rows in the order of ``paths``
    classes: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    top_k: int = 3
    true_labels: list[str | None] | None = None
    backend: str = "torch"  # what computed them: torch, or onnx (ONNX Runtime)
    positions: list[int] | None = None  # each row's place among the inputs (a shard's rows)
    temperature: float | None = None  # the model's calibration (None: an uncalibrated model)
    in_distribution: np.ndarray | None = None  # per image, 0-1 (None: no --abstain)
    abstain: float | None = None  # "unknown" below this in-distribution share (None: never)
    sets: np.ndarray | None = None  # (N, K) bool: each image's prediction set (None: no --sets)
    set_coverage: float | None = None  # the coverage the sets were made for
    explanations: list[str] | None = None  # each image's overlay PNG (predict --explain)
    thumbnails: np.ndarray | None = field(default=None, repr=False)  # the first arrays, to draw

    def __len__(self) -> int:
        return len(self.paths)

    SHOWN = 10  # rows a notebook shows

    def __repr__(self) -> str:
        rows = zip(self.paths[:3], self.answers, self.confidence, strict=False)
        first = ", ".join(f"{Path(p).name}: {a} {c:.2f}" for p, a, c in rows)
        more = ", ..." if len(self) > 3 else ""
        return f"Predictions({len(self)} images on {self.backend}: {first}{more})"

    def _repr_html_(self) -> str:
        """The first rows with thumbnails, the answer, its probability (and the true label, the
        set, the in-distribution share when there are), for a notebook."""
        from imgclf import notebook

        frame = self.to_frame(top_k=1).head(self.SHOWN)
        columns = [c for c in frame.columns if c not in ("path", "top1", "top1_probability")]
        head = "".join(f'<th style="{notebook.CELL}">{notebook.escape(c)}</th>'
                       for c in ["", "file", *columns])  # fmt: skip
        body = []
        for i, (path, (_, row)) in enumerate(zip(self.paths, frame.iterrows(), strict=False)):
            pixels = self.thumbnails[i] if self.thumbnails is not None else None
            picture = notebook.image(pixels, 48) if pixels is not None else _thumbnail(path)
            cells = [picture, notebook.escape(Path(path).name)]
            cells += [notebook.escape(_cell(row[c])) for c in columns]
            body.append("<tr>" + "".join(f'<td style="{notebook.CELL}">{c}</td>' for c in cells)
                        + "</tr>")  # fmt: skip
        table = f'<table style="{notebook.TABLE}"><tr>{head}</tr>{"".join(body)}</table>'
        more = len(self) - self.SHOWN
        return notebook.card(
            f"Predictions: {len(self):,} images ({self.backend})", table,
            notebook.line(f"{more:,} more rows: .to_frame()" if more > 0 else ""),
            notebook.line(f"{len(self.skipped)} inputs skipped: .skipped" if self.skipped else "",
                          "#9a6700"),
        )  # fmt: skip

    def plot(self, n: int = 25, columns: int = 5) -> Figure:
        """The first ``n`` images in a grid, each titled with its answer and probability, and
        'R: true P: predicted' where a true label differs (R3's and R5's grids). Files are read
        again; of arrays, the first 25 are kept to be drawn."""
        from imgclf.predict.grid import predictions_figure

        return predictions_figure(self, check_positive("n", n), check_positive("columns", columns))

    @property
    def labelled(self) -> int:
        """How many images have a true label."""
        return sum(label is not None for label in self.true_labels or [])

    @property
    def accuracy(self) -> float | None:
        """The share of labelled images predicted as their true label (None: no labels).

        A true label the model does not know counts as wrong (see ``unknown_labels``).
        """
        if not self.labelled:
            return None
        pairs = zip(self.labels, self.true_labels, strict=True)
        return sum(label == true for label, true in pairs) / self.labelled

    @property
    def unknown_labels(self) -> dict[str, int]:
        """True labels that are none of the model's classes, with how many images have each."""
        known = set(self.classes)
        unknown = Counter(t for t in self.true_labels or [] if t is not None and t not in known)
        return dict(sorted(unknown.items()))

    @property
    def labels(self) -> list[str]:
        """The most probable class name of each image."""
        return [self.classes[i] for i in self.probs.argmax(axis=1)]

    @property
    def unknown(self) -> np.ndarray:
        """Which images are answered "unknown" (none without ``abstain``)."""
        if self.in_distribution is None or self.abstain is None:
            return np.zeros(len(self.paths), dtype=bool)
        return self.in_distribution < self.abstain

    @property
    def answers(self) -> list[str]:
        """The predicted class, or "unknown" where the model abstains."""
        return [
            "unknown" if u else label for u, label in zip(self.unknown, self.labels, strict=True)
        ]

    @property
    def confidence(self) -> np.ndarray:
        """The probability of each image's predicted class."""
        return self.probs.max(axis=1)

    def to_frame(self, top_k: int | None = None) -> pd.DataFrame:
        """One row per image: path, label, probability (the best class), then ``true_label``
        when inputs had labels, then ``top2_label``, ``top2_probability``, ... up to ``top_k``
        (the best class is not repeated; top_k=1 adds no columns). With abstention, label is
        "unknown" where the model abstains, and ``unknown`` and ``in_distribution`` (the share
        of validation images at least as strange) follow ``probability``."""
        import pandas as pd

        k = min(check_positive("top_k", self.top_k if top_k is None else top_k), len(self.classes))
        order = np.argsort(-self.probs, axis=1, kind="stable")[:, :k]
        names = np.asarray(self.classes, dtype=object)
        columns = {"path": self.paths, "label": self.answers, "probability": self.confidence}
        if self.abstain is not None:
            columns.update(unknown=self.unknown, in_distribution=self.in_distribution)
        if self.sets is not None:  # the classes of each set, most probable first
            columns["set"] = [
                "|".join(self.classes[i] for i in row_order if members[i])
                for row_order, members in zip(
                    np.argsort(-self.probs, axis=1, kind="stable"), self.sets, strict=True
                )
            ]
            columns["set_size"] = self.sets.sum(axis=1)
        if self.explanations is not None:
            columns["explanation"] = self.explanations
        if self.labelled:
            columns[TRUE_LABEL_COLUMN] = self.true_labels
        for i in range(1, k):
            columns[f"top{i + 1}_label"] = names[order[:, i]]
            columns[f"top{i + 1}_probability"] = np.take_along_axis(
                self.probs, order[:, i : i + 1], 1
            )[:, 0]
        return pd.DataFrame(columns)

    def to_csv(
        self,
        path: str | os.PathLike,
        format: str = "csv",
        id_column: str = "id",
        label_column: str = "label",
    ) -> Path:
        """Write ``to_frame()`` (format 'csv') or a Kaggle submission (format 'kaggle'), atomically.

        The Kaggle layout is two columns: the file name without extension and the class name.
        """
        import pandas as pd

        if format not in CSV_FORMATS:
            raise ConfigError(
                f"Unknown CSV format '{format}'.{did_you_mean(format, CSV_FORMATS)} "
                f"Allowed: {', '.join(CSV_FORMATS)}."
            )
        if format == "csv":
            frame = self.to_frame()
        else:
            frame = pd.DataFrame({id_column: _kaggle_ids(self.paths), label_column: self.labels})
            if id_column == label_column:
                raise ConfigError(f"id_column and label_column are both '{id_column}'.")
        target = Path(path)
        if target.is_dir():
            raise DataError(
                f"{target} is a folder. Pass a file name, e.g. {target / 'predictions.csv'}."
            )
        text = frame.to_csv(index=False, lineterminator="\n", float_format=FLOAT_FORMAT)
        atomic_write_text(target, text)
        return target

    def summary(self) -> str:
        """One line for people: 'predicted 120 images, accuracy 0.9500 on 118 labelled images,
        skipped 2 (unreadable)' (accuracy only when inputs had labels)."""
        text = f"predicted {_count(len(self.paths), 'image')}"
        if self.labelled:
            text += f", accuracy {self.accuracy:.4f} on {_count(self.labelled, 'labelled image')}"
            if self.unknown_labels:
                names = list(self.unknown_labels)
                shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
                n = sum(self.unknown_labels.values())
                text += f" ({n} with a label the model does not know, counted wrong: {shown})"
        if self.sets is not None:
            text += (
                f", prediction sets at {self.set_coverage:.0%}: mean size "
                f"{self.sets.sum(axis=1).mean():.2f}"
            )
        if self.abstain is not None:
            text += (
                f", {_count(int(self.unknown.sum()), 'image')} answered unknown (stranger than "
                f"{1 - self.abstain:.0%} of the validation images)"
            )
        if not self.skipped:
            return text
        counts = skip_counts(self.skipped)
        detail = (
            ", ".join(f"{n} {name}" for name, n in counts.items())
            if len(counts) > 1
            else next(iter(counts))
        )
        return f"{text}, skipped {len(self.skipped)} ({detail})"


def output_path(output: str | os.PathLike | None, overwrite: bool = False) -> Path:
    """Where to write predictions without ever replacing a file silently (as run folders).

    No ``output``: ``predictions.csv``, or the first free ``predictions-N.csv`` beside it. A
    given ``output`` that exists is refused unless ``overwrite`` says to replace it.
    """
    if output is None:
        stem, suffix = DEFAULT_OUTPUT.stem, DEFAULT_OUTPUT.suffix
        n, target = 1, DEFAULT_OUTPUT
        while target.exists():
            n += 1
            target = DEFAULT_OUTPUT.with_name(f"{stem}-{n}{suffix}")
        return target
    target = Path(output)
    if target.is_file() and not overwrite:
        raise ConfigError(
            f"{target} exists. Pass --overwrite (overwrite=True) to replace it, or --output to "
            "write another file."
        )
    return target


def _kaggle_ids(paths: list[str]) -> list[str]:
    ids = [Path(p).stem for p in paths]
    twice = sorted(name for name, n in Counter(ids).items() if n > 1)
    if twice:
        raise DataError(
            f"Kaggle ids must be unique, but several files share the name {', '.join(twice[:5])}. "
            "Rename the files or use format='csv', which keeps the full paths."
        )
    return ids


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, received {value!r}.")
    return value


def merge_shards(parts: list[Predictions]) -> Predictions:
    """The predictions of the ranks' shards as one, in the inputs' order: what one process
    gives for all the inputs."""
    rows = sorted(
        (pos, r, i) for r, part in enumerate(parts) for i, pos in enumerate(part.positions)
    )
    first = parts[0]
    labelled = any(part.true_labels is not None for part in parts)
    probs = [parts[r].probs[i] for _, r, i in rows]
    return Predictions(
        paths=[parts[r].paths[i] for _, r, i in rows],
        probs=np.stack(probs) if probs else np.zeros((0, len(first.classes)), np.float32),
        classes=first.classes,
        skipped=[item for part in parts for item in part.skipped],
        top_k=first.top_k,
        true_labels=[(parts[r].true_labels or [None] * len(parts[r].paths))[i] for _, r, i in rows]
        if labelled
        else None,  # fmt: skip
        backend=first.backend,
        temperature=first.temperature,
        in_distribution=np.array([parts[r].in_distribution[i] for _, r, i in rows])
        if first.abstain is not None
        else None,
        abstain=first.abstain,
        sets=np.stack([parts[r].sets[i] for _, r, i in rows]) if first.sets is not None else None,
        set_coverage=first.set_coverage,
    )


def _thumbnail(path: str) -> str:
    """A 64-pixel thumbnail of an image file, or nothing for what is not one (an array row)."""
    from imgclf import notebook
    from imgclf.predict.grid import file_thumbnail

    pixels = file_thumbnail(path, 64)
    return notebook.image(pixels) if pixels is not None else ""


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
