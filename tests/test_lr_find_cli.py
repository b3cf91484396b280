"""`imgclf lr-find`, `imgclf.api.lr_find` and `ImageClassifier.lr_find` on a tiny folder."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from imgclf import api
from imgclf.classifier import ImageClassifier
from imgclf.cli import app
from imgclf.evaluate.lr_find_plot import lr_find_figure

runner = CliRunner()
TINY = "tiny.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


def _lr_find(data: Path, *extra: str):
    return runner.invoke(app, ["lr-find", str(data), "--config", TINY, "--quiet", *extra])


def test_cli_writes_the_plot_and_csv_and_prints_the_suggestion(shapes: Path) -> None:
    result = _lr_find(shapes, "--num-steps", "20", "--batch-size", "4", "--seed", "1")
    assert result.exit_code == 0, result.output
    out = Path("lr-find")  # the default, in the current folder
    assert (out / "lr_find.png").read_bytes()[:8] == PNG
    curve = pd.read_csv(out / "lr_find.csv")
    assert list(curve.columns) == ["step", "lr", "loss", "raw_loss"]
    assert list(curve["step"]) == list(range(1, 21))  # 12 train images, 3 batches: cycled
    assert curve["lr"].iloc[0] == pytest.approx(1e-7) and curve["lr"].iloc[-1] == pytest.approx(10)
    assert "stage tested: train" in result.output
    assert "steps: 20 of 20, completed all 20 steps" in result.output
    printed = float(re.search(r"suggested lr: (\S+) \(set lr;", result.output).group(1))
    assert np.isclose(curve["lr"], printed, rtol=5e-3).any()
    assert str((out / "lr_find.png").resolve()) in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--num-steps", "2"], "num_steps must be at least 5"),
        (["--start-lr", "1", "--end-lr", "0.1"], "0 < start_lr < end_lr"),
        (["--stage", "finetune"], "no stage 'finetune'; its stages are: train"),
        (["--set", "train.bogus=1"], "bogus"),
    ],
)
def test_cli_user_errors_exit_2(shapes: Path, extra: list[str], message: str) -> None:
    result = _lr_find(shapes, "--out", "elsewhere", *extra)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not Path("elsewhere").exists()


def test_api_lr_find_writes_to_out_and_returns_the_curve(shapes: Path) -> None:
    result = api.lr_find(shapes, config=TINY, num_steps=15, out="found", progress=False)
    assert result.stage == "train" and result.steps == len(result.losses) == 15
    assert result.lrs[0] <= result.suggestion <= result.lrs[-1]
    assert len(pd.read_csv("found/lr_find.csv")) == 15
    assert Path("found/lr_find.png").read_bytes()[:8] == PNG
    nothing = api.lr_find(shapes, config=TINY, num_steps=15, progress=False)
    assert nothing.raw_losses == result.raw_losses  # same config, same curve
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["data", "found", "tiny.yaml"]


def test_classifier_lr_find_uses_its_own_config_and_plots(shapes: Path) -> None:
    classifier = ImageClassifier(config=TINY, batch_size=4)
    result = classifier.lr_find(shapes, num_steps=12, start_lr=1e-5, end_lr=1.0)
    expected = api.lr_find(
        shapes, config=TINY, batch_size=4, num_steps=12, start_lr=1e-5, end_lr=1.0, progress=False
    )
    assert result.raw_losses == expected.raw_losses and result.suggestion == expected.suggestion
    assert classifier.lr_find_ is result and not hasattr(classifier, "model_")
    figure = classifier.plot_lr_find()
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"suggested lr {result.suggestion:.2e}" in labels
    curve = ax.get_lines()[0]
    assert list(curve.get_ydata()) == pytest.approx(result.losses)


def test_the_figure_leaves_out_points_that_are_not_finite(shapes: Path) -> None:
    result = api.lr_find(shapes, config=TINY, num_steps=10, progress=False)
    result.losses[-1] = float("nan")
    line = lr_find_figure(result).axes[0].get_lines()[0]
    assert len(line.get_xdata()) == 9
