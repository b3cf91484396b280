"""The live display's curves in a notebook: redrawn at most every CURVES_INTERVAL seconds and
always at the end, so short epochs are not slowed down by drawing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from imgclf.train import notebook_progress
from imgclf.train.notebook_progress import CURVES_INTERVAL, NotebookProgress


@pytest.mark.parametrize(("seconds_per_epoch", "drawn"), [(0.1, 2), (CURVES_INTERVAL + 0.1, 5)])
def test_curves_are_redrawn_at_most_every_interval_and_at_the_end(
    monkeypatch: pytest.MonkeyPatch, seconds_per_epoch: float, drawn: int
) -> None:
    clock = [100.0]
    monkeypatch.setattr(notebook_progress.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    monkeypatch.setattr("IPython.display.update_display", lambda *a, **k: None)
    progress = NotebookProgress(steps_per_epoch=1)
    curves = []
    monkeypatch.setattr(progress, "_curves", lambda: curves.append(len(progress.rows)) or "png")
    state = SimpleNamespace(history=[], epochs=5, best_epoch=None, stage=None, steps=1,
                            stop_reason=None)  # fmt: skip
    progress.on_train_begin(state)
    for epoch in range(1, 6):
        progress.on_epoch_begin(epoch, state)
        clock[0] += seconds_per_epoch
        progress.on_epoch_end(epoch, {"epoch": epoch, "loss": 1.0, "accuracy": 0.5}, state)
    progress.on_train_end(state)
    assert len(curves) == drawn and curves[-1] == 5  # the last drawing shows every epoch
