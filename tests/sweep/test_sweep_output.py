"""What `imgclf sweep` prints once the trials are done: floats short enough to read."""

from __future__ import annotations

from typer.testing import CliRunner

from imgclf import api
from imgclf.api.sweeping import SweepResult
from imgclf.cli import app
from imgclf.sweep.runner import describe_settings as _describe


def test_the_best_line_prints_floats_to_4_significant_digits(tmp_path, monkeypatch) -> None:
    best = {"trial": 3, "run": "s-003", "value": 0.94722,
            "params": {"train.lr": 0.0019578897201213002, "train.batch_size": 16,
                       "augment.zoom_range": 0.1}}  # fmt: skip
    result = SweepResult("s", "journal", [{"state": "complete"}], best, ran=1)
    monkeypatch.setattr(api, "sweep", lambda *args, **kwargs: result)
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {log_float: [1.0e-4, 1.0e-1]}\n")
    printed = CliRunner().invoke(app, ["sweep", "digits", "--space", str(space)])
    assert printed.exit_code == 0, printed.output
    assert (
        "best: trial 3 (s-003), value 0.9472: train.lr=0.001958, train.batch_size=16, "
        "augment.zoom_range=0.1" in printed.output
    )
    assert _describe(best["params"]) == (
        "train.lr=0.001958, train.batch_size=16, augment.zoom_range=0.1"
    )
