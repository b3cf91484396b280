"""The one transient progress bar every room uses (decoding, embedding, evaluation,
prediction, lr-find), with throughput and the time left.

On a terminal: a rich bar that disappears when done. In logs and pipes: nothing at all (a
transient bar there would leave blank lines), the callers print their own one-line summaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second of a task ('1,234 img/s'), blank until measured."""

    def __init__(self, unit: str = "img/s") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}")


def bar_columns(*extra: ProgressColumn, unit: str = "img/s") -> list[ProgressColumn]:
    """Description, bar, count, ``extra`` columns, throughput, elapsed and time left."""
    return [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]


@contextmanager
def progress_bar(enabled: bool, description: str, total: int) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1)``, which moves the bar ``n`` steps (a no-op when not shown)."""
    from imgclf.terminal import console as make_console

    console = make_console()
    if not (enabled and console.is_terminal):
        yield lambda n=1: None
        return
    with Progress(*bar_columns(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
