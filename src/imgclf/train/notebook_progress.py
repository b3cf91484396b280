"""Training progress in a notebook cell: one output area, replaced in place, never appended.

The area holds a progress bar with throughput and the time left, the epoch table (the
terminal's columns), the loss and accuracy curves redrawn at each epoch's end, the stage and
stop lines, and at the run's end its scores and a link to its report. Jupyter keeps only the
last state of a display that is updated by id, so a 30-epoch fit saves one table and one small
PNG (tests/notebooks check the size), where printing would leave a line per epoch, or with a
terminal bar, thousands. Batches redraw the area at most every ``INTERVAL`` seconds, and the
curves are redrawn at most every ``CURVES_INTERVAL`` seconds (always at the end): drawing them
takes about 0.2 s, which would double the time of a fit whose epochs are that short.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from imgclf import notebook
from imgclf.results import WARNING, result_lines
from imgclf.timefmt import format_duration
from imgclf.train.events import Callback, TrainState
from imgclf.train.progress import COLUMNS, epoch_span, header_line, row_cells, row_line

INTERVAL = 0.5  # seconds between redraws during an epoch
CURVES_INTERVAL = 2.0  # seconds between redraws of the curves
AMBER, RED = "#9a6700", "#cf222e"


class NotebookProgress(Callback):
    """The live display of a run in a Jupyter kernel (``notebook.in_notebook``)."""

    def __init__(self, steps_per_epoch: int, batch_size: int = 1, run_dir: Path | None = None):
        self.steps, self.batch_size, self.run_dir = steps_per_epoch, batch_size, run_dir
        self.id = f"imgclf-{uuid.uuid4().hex}"
        self.rows: list[dict] = []
        self.notes: list[tuple[str, str | None]] = []  # (text, colour)
        self.curves, self.curves_drawn, self.curves_rows = "", 0.0, 0
        self.best: int | None = None
        self.epoch, self.batch, self.epochs = 0, 0, 0
        self.logs: dict = {}
        self.began = self.shown = 0.0
        self.last = 0.0  # seconds per batch over the last finished epoch
        self.shown_once = False

    def on_train_begin(self, state: TrainState) -> None:
        self.rows, self.epochs, self.best = list(state.history), state.epochs, state.best_epoch
        if self.rows:  # a resumed run shows what it already did
            self._draw_curves()
        self._show()

    def on_epoch_begin(self, epoch: int, state: TrainState) -> None:
        if state.stage and epoch == state.stage_start:
            last = state.stage_start + state.stage_epochs - 1
            span = epoch_span(state.stage_start, last)
            self.notes.append((f"stage {state.stage}: {span} of {state.epochs}", None))
        self.epoch, self.batch, self.epochs, self.logs = epoch, 0, state.epochs, {}
        self.steps = state.steps or self.steps
        self.began = time.perf_counter()
        self._show()

    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None:
        self.batch, self.logs = batch + 1, logs
        if time.perf_counter() - self.shown >= INTERVAL:
            self._show()

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        if self.batch:
            self.last = (time.perf_counter() - self.began) / self.batch
        self.rows.append(logs)
        self.best, self.batch = state.best_epoch, 0
        if time.perf_counter() - self.curves_drawn >= CURVES_INTERVAL:
            self._draw_curves()
        self._show()

    def on_train_end(self, state: TrainState) -> None:
        self.epoch = 0  # no bar once training is over
        if self.curves_rows != len(self.rows):
            self._draw_curves()
        if state.stop_reason:
            self.notes.append((f"stopped: {state.stop_reason}", AMBER))
        self._show()

    def on_run_end(self, metrics: dict, state: TrainState) -> None:
        for kind, text in result_lines(metrics, self.run_dir):
            self.notes.append((text, RED if kind == WARNING else None))
        self._show()

    def _show(self) -> None:
        from IPython.display import display, update_display

        bundle = {"text/plain": self._text(), "text/html": self._html()}
        if self.shown_once:
            update_display(bundle, display_id=self.id, raw=True)
        else:
            display(bundle, display_id=self.id, raw=True)
            self.shown_once = True
        self.shown = time.perf_counter()

    def _status(self) -> str:
        """'epoch 3/30 · batch 12/45 · 1,234 img/s · 0:12 left', or '' between epochs."""
        if not self.epoch:
            return ""
        parts = [f"epoch {self.epoch}/{self.epochs}", f"batch {self.batch}/{self.steps}"]
        seconds = time.perf_counter() - self.began
        per_batch = seconds / self.batch if self.batch and seconds > 0 else self.last
        if per_batch > 0:  # this epoch's pace, or at its start the last epoch's
            parts.append(f"{self.batch_size / per_batch:,.0f} img/s")
            left = (self.steps - self.batch + self.steps * (self.epochs - self.epoch)) * per_batch
            parts.append(f"{format_duration(left)} left")
        if "loss" in self.logs:
            parts.append(f"loss {self.logs['loss']:.4f}, acc {self.logs['accuracy']:.4f}")
        return " · ".join(parts)

    def _text(self) -> str:
        lines = [header_line(), *(row_line(row, self.best) for row in self.rows)]
        status = self._status()
        return "\n".join([*lines, *(text for text, _ in self.notes), *([status] if status else [])])

    def _html(self) -> str:
        marked = [
            [str(row["epoch"]) + (" *" if row.get("epoch") == self.best else ""), *row_cells(row)]
            for row in self.rows
        ]
        status = self._status()
        bar = (
            f'<div><progress value="{self.batch}" max="{max(1, self.steps)}" '
            f'style="width:240px;vertical-align:middle"></progress> {notebook.escape(status)}</div>'
            if status
            else ""
        )
        notes = "".join(notebook.line(text, colour) for text, colour in self.notes)
        epochs = notebook.table(["epoch", *COLUMNS], marked) if marked else ""
        return notebook.card("imgclf training", bar, epochs, self.curves, notes)

    def _draw_curves(self) -> None:
        self.curves, self.curves_rows = self._curves(), len(self.rows)
        self.curves_drawn = time.perf_counter()

    def _curves(self) -> str:
        """Loss and accuracy per epoch (training, and validation when there is one), as a
        small inline PNG."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        epochs = [row["epoch"] for row in self.rows]
        figure = Figure(figsize=(7.5, 2.3), layout="constrained")
        for axis, name in zip(figure.subplots(1, 2), ("loss", "accuracy"), strict=True):
            for key, label in ((name, "train"), (f"val_{name}", "val")):
                values = [row.get(key) for row in self.rows]
                if any(isinstance(v, float) for v in values):
                    axis.plot(epochs, values, marker="o", markersize=3, label=label)
            axis.set_title(name, fontsize=9)
            axis.tick_params(labelsize=8)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.legend(fontsize=8)
        return notebook.png(figure, dpi=60)
