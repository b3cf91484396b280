"""`imgclf predict` and ImageClassifier.predict end to end: nothing predictable, labelled CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from imgclf.classifier import load
from imgclf.cli import app
from imgclf.config import ModelConfig
from imgclf.errors import ConfigError, DataError
from imgclf.models.bundle import save_bundle
from imgclf.models.network import build_model
from imgclf.predict.predictions import Predictions

runner = CliRunner()


@pytest.fixture
def bundle(tmp_path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="cnn"), ["a", "b"], channels=3, image_size=(12, 12))
    return save_bundle(model.eval(), tmp_path / "bundle")


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    root = tmp_path / "broken"
    root.mkdir()
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("not an image\n")
    return root


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    for name in ("x", "y"):
        Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(
            tmp_path / "img" / f"{name}.png"
        )
    table = tmp_path / "list.csv"
    table.write_text("path,label\nimg/x.png,a\nimg/y.png,b\n")
    return table


def test_cli_nothing_predictable_exits_2_and_writes_no_csv(
    tmp_path: Path, bundle: Path, broken: Path
) -> None:
    out = tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", str(bundle), str(broken), "--output", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "No images to predict" in text and "2 inputs gave no image (2 unreadable)" in text
    assert not out.exists()


def test_api_nothing_predictable_raises(bundle: Path, broken: Path) -> None:
    with pytest.raises(DataError, match=r"2 inputs gave no image \(2 unreadable\)"):
        load(bundle).predict(broken)


def test_cli_reports_accuracy_of_a_labelled_csv(
    tmp_path: Path, bundle: Path, labelled: Path
) -> None:
    out = tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", str(bundle), str(labelled), "--output", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, dtype=str)
    assert written["true_label"].tolist() == ["a", "b"]
    accuracy = (written["label"] == written["true_label"]).mean()
    assert f"accuracy {accuracy:.4f} on 2 labelled images" in " ".join(result.output.split())


def test_api_predicts_small_arrays_on_a_larger_model(bundle: Path) -> None:
    """The issue's case: arrays smaller than the model's input are fitted, not refused."""
    result = load(bundle).predict(np.zeros((2, 5, 6), np.uint8))
    assert result.probs.shape == (2, 2) and result.paths == ["array[0]", "array[1]"]


def test_cli_never_overwrites_predictions_silently(
    tmp_path: Path, bundle: Path, labelled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --output the next free name is taken and printed; an existing --output is
    refused (exit 2, the file untouched) unless --overwrite says to replace it."""
    monkeypatch.chdir(tmp_path)
    Path("predictions.csv").write_text("mine\n")
    first = runner.invoke(app, ["predict", str(bundle), str(labelled)])
    assert first.exit_code == 0, first.output
    assert "wrote predictions-2.csv" in " ".join(first.output.split())
    assert Path("predictions.csv").read_text() == "mine\n"
    assert len(pd.read_csv("predictions-2.csv")) == 2

    refused = runner.invoke(
        app, ["predict", str(bundle), str(labelled), "--output", "predictions.csv"]
    )
    assert refused.exit_code == 2
    assert "predictions.csv exists. Pass --overwrite" in " ".join(refused.output.split())
    assert Path("predictions.csv").read_text() == "mine\n"

    args = ["predict", str(bundle), str(labelled), "--output", "predictions.csv", "--overwrite"]
    replaced = runner.invoke(app, args)
    assert replaced.exit_code == 0, replaced.output
    assert len(pd.read_csv("predictions.csv")) == 2


def test_prediction_csv_has_one_fixed_precision(
    tmp_path: Path, bundle: Path, labelled: Path
) -> None:
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(bundle), str(labelled), "--output", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, dtype=str)
    numbers = [frame[c] for c in frame.columns if c.endswith("probability")]
    decimals = {len(v.split(".")[1]) for column in numbers for v in column}
    assert decimals == {6}, decimals


def test_cli_draws_the_grid_of_predictions(tmp_path: Path, bundle: Path, labelled: Path) -> None:
    """--grid: R3's picture of its predictions, titled with the answers, 'R: true P: predicted'
    where the CSV's label differs; a grid that exists is refused before any work."""
    out, grid = tmp_path / "p.csv", tmp_path / "grid.png"
    args = ["predict", str(bundle), str(labelled), "--output", str(out), "--grid", str(grid)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "grid.png" in result.output
    with Image.open(grid) as picture:
        assert picture.format == "PNG" and picture.width > 300
    out.unlink()
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "grid.png exists. Pass --overwrite" in refused.output
    assert not out.exists()  # refused before predicting
    not_png = runner.invoke(app, [*args[:-1], str(tmp_path / "grid.jpg")])
    assert not_png.exit_code == 2 and "the grid is a PNG" in not_png.output


def test_predictions_plot_titles_each_image_with_its_answer(bundle: Path, labelled: Path) -> None:
    kept = Predictions(
        ["array[0]", "array[1]", "array[2]"], np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]),
        ["a", "b"], true_labels=["a", "a", None], thumbnails=np.zeros((3, 8, 8, 3), np.uint8),
    )  # fmt: skip
    (grid,) = kept.plot(n=3).axes
    assert [t.get_text() for t in grid.texts] == ["a (0.90)", "R: a P: b\n(0.70)", "a (0.60)"]
    files = load(bundle).predict(labelled)  # files are read again for the grid
    (grid,) = files.plot().axes
    assert len(grid.texts) == 2 and len(grid.get_images()) == 2
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        files.plot(n=0)
