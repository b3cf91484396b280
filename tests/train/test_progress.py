"""The epoch table's stage lines: one epoch is ``epoch 4``, several are ``epochs 2-4``."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from imgclf.train.callbacks import TrainState
from imgclf.train.progress import ProgressPrinter, epoch_span


@pytest.mark.parametrize(
    ("start", "epochs", "line"),
    [(4, 1, "stage finetune: epoch 4 of 4"), (2, 3, "stage finetune: epochs 2-4 of 4")],
)
def test_a_stage_line_names_its_epochs(start: int, epochs: int, line: str) -> None:
    out = io.StringIO()
    printer = ProgressPrinter(steps_per_epoch=1, console=Console(file=out, width=200))
    state = TrainState(epochs=4, stage="finetune", stage_start=start, stage_epochs=epochs)
    printer.on_epoch_begin(start, state)
    assert out.getvalue().splitlines() == [line]


def test_one_epoch_is_never_a_range() -> None:  # (the report's "stages as planned" too)
    assert [epoch_span(1, 3), epoch_span(4, 4)] == ["epochs 1-3", "epoch 4"]
