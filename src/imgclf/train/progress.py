"""Progress on the terminal: a bar per epoch with live loss/accuracy, throughput and the time
left, then one table row per epoch (the only output in logs and pipes)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress, TextColumn

from imgclf import terminal
from imgclf.progressbar import bar_columns
from imgclf.timefmt import format_duration
from imgclf.train.events import Callback, TrainState

# Column widths: each wider than its name; a row with its best-epoch marker is 78 characters,
# so an 80-column log never wraps it.
COLUMNS = {"loss": 12, "accuracy": 12, "val_loss": 12, "val_accuracy": 14, "lr": 11, "time": 10}


def epoch_span(first: int, last: int) -> str:
    """``epoch 4`` for one epoch, ``epochs 2-4`` for several (never ``epochs 4-4``)."""
    return f"epoch {first}" if first == last else f"epochs {first}-{last}"


class ProgressPrinter(Callback):
    """The live bar during an epoch and a line per finished epoch (the epoch table)."""

    def __init__(
        self, steps_per_epoch: int, console: Console | None = None, batch_size: int = 1
    ) -> None:
        self.steps = steps_per_epoch
        self.batch_size = batch_size
        self.console = console or terminal.console()
        self.bar: Progress | None = None
        self.task = None

    def on_train_begin(self, state: TrainState) -> None:
        self.console.print(header_line(), style="bold", highlight=False)
        for row in state.history:  # a resumed run shows what it already did
            self._print_row(row, state)

    def on_epoch_begin(self, epoch: int, state: TrainState) -> None:
        if state.stage and epoch == state.stage_start:
            last = state.stage_start + state.stage_epochs - 1
            self.console.print(
                f"stage {state.stage}: {epoch_span(state.stage_start, last)} of {state.epochs}",
                style="bold",
                highlight=False,
            )
        if not self.console.is_terminal:  # logs and pipes get the epoch rows only
            return
        steps = state.steps or self.steps
        self.bar = Progress(
            *bar_columns(TextColumn("{task.fields[metrics]}")),
            console=self.console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(
            f"epoch {epoch}/{state.epochs}", total=steps * self.batch_size, metrics=""
        )

    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None:
        if self.bar is None:
            return
        metrics = f"loss {logs['loss']:.4f}  acc {logs['accuracy']:.4f}"
        self.bar.update(self.task, completed=(batch + 1) * self.batch_size, metrics=metrics)

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        self._stop_bar()
        self._print_row(logs, state)

    def on_train_end(self, state: TrainState) -> None:
        self._stop_bar()  # an epoch cut short ends without on_epoch_end
        if state.stop_reason:
            self.console.print(f"stopped: {state.stop_reason}", style="yellow", highlight=False)

    def _stop_bar(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _print_row(self, row: dict, state: TrainState) -> None:
        self.console.print(row_line(row, state.best_epoch), highlight=False)


def header_line() -> str:
    """The epoch table's header."""
    return "epoch" + "".join(f"{name:>{width}}" for name, width in COLUMNS.items())


def row_cells(row: dict) -> list[str]:
    """An epoch's cells under COLUMNS, formatted (``-`` for a value it lacks)."""
    cells = []
    for name in COLUMNS:
        value = row.get(name)
        if name == "time":
            cells.append(format_duration(value) if value is not None else "-")
        else:
            cells.append(f"{value:.4g}" if isinstance(value, float) else "-")
    return cells


def row_line(row: dict, best_epoch: int | None) -> str:
    """One line of the epoch table, `` *`` on the best epoch."""
    cells = "".join(f"{cell:>{width}}" for cell, width in zip(row_cells(row), COLUMNS.values(),
                                                               strict=True))  # fmt: skip
    return f"{row['epoch']:>5}" + cells + (" *" if row.get("epoch") == best_epoch else "")
