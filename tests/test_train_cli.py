"""`imgclf train / evaluate / predict / runs list` end to end on a tiny folder, and the same
from Python: every artifact exists and is valid, bundles predict like the in-memory model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from imgclf.classifier import ImageClassifier, load
from imgclf.cli import app

runner = CliRunner()
TINY = "tiny.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


def _train(data: Path, *extra: str):
    return runner.invoke(app, ["train", str(data), "--config", TINY, "--quiet", *extra])


def test_train_writes_every_artifact(shapes: Path) -> None:
    result = _train(shapes, "--name", "first")
    assert result.exit_code == 0, result.output
    run = Path("runs/first")
    assert (
        "test: accuracy" in result.output and str((run / "report.html").resolve()) in result.output
    )
    config = run / "config.yaml"
    assert "custom" in config.read_text()
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"val", "test", "best_epoch"} <= set(metrics)
    assert json.loads((run / "data_report.json").read_text())["n_images"] == 24
    for png in ("curves", "confusion", "confusion_norm", "mistakes", "samples"):
        assert (run / "plots" / f"{png}.png").read_bytes()[:8] == PNG
    html = (run / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert (run / "model" / "model.safetensors").is_file()
    assert (run / "checkpoints" / "best.safetensors").is_file()


def test_run_names_never_overwrite(shapes: Path) -> None:
    assert _train(shapes, "--name", "same").exit_code == 0
    again = _train(shapes, "--name", "same")
    assert again.exit_code == 2 and "already exists" in again.output
    assert _train(shapes).exit_code == 0
    assert _train(shapes).exit_code == 0
    assert sorted(p.name for p in Path("runs").iterdir() if p.is_dir()) == [  # (+ ledger.jsonl)
        "custom-data-1", "custom-data-2", "same",
    ]  # fmt: skip


def test_time_limit_keeps_the_best_and_resume_continues(shapes: Path) -> None:
    result = _train(shapes, "--name", "budget", "--time-limit", "0.001", "--epochs", "4")
    assert result.exit_code == 0, result.output
    metrics = json.loads(Path("runs/budget/metrics.json").read_text())
    assert metrics["epochs_run"] == 0  # the limit holds inside the first epoch
    assert metrics["stop_reason"].startswith("time limit 0.0s: reached in epoch 1 at batch 1 of 2")
    assert "test" in metrics and Path("runs/budget/model/model.safetensors").is_file()
    resumed = runner.invoke(app, ["train", "--resume", "runs/budget", "--time-limit", "1h"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(Path("runs/budget/metrics.json").read_text())["epochs_run"] == 4
    assert list(pd.read_csv("runs/budget/history.csv")["epoch"]) == [1, 2, 3, 4]


def test_no_plots_writes_the_scores_without_figures_and_a_resume_can_draw_them(shapes) -> None:
    """--no-plots (Ultralytics' plots=False): the report keeps its scores and tables and says
    that its figures were not drawn; a resume with --plots draws them."""
    result = _train(shapes, "--name", "bare", "--no-plots")
    assert result.exit_code == 0, result.output
    run = Path("runs/bare")
    assert not list((run / "plots").glob("*.png"))
    html = (run / "report.html").read_text()
    assert "figures not drawn (plots off: --no-plots)" in html and "data:image/png" not in html
    assert {"val", "test"} <= set(json.loads((run / "metrics.json").read_text()))
    resumed = runner.invoke(app, ["train", "--resume", "runs/bare", "--epochs", "4", "--plots"])
    assert resumed.exit_code == 0, resumed.output
    assert (run / "plots" / "curves.png").read_bytes()[:8] == PNG
    assert "figures not drawn" not in (run / "report.html").read_text()
    from_python = ImageClassifier(config=TINY, plots=False, quiet=True, name="py").fit(shapes)
    assert not list((from_python.run_dir_ / "plots").glob("*.png"))
    refused = _train(shapes, "--set", "run.plots=maybe")
    assert refused.exit_code == 2 and "plots" in refused.output
    assert "Traceback" not in refused.output


def test_evaluate_predict_and_runs_list(shapes: Path) -> None:
    assert _train(shapes, "--name", "r").exit_code == 0
    evaluated = runner.invoke(app, ["evaluate", "runs/r", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["n_images"] == 6  # the run's own test split
    predicted = runner.invoke(app, ["predict", "runs/r", str(shapes), "--output", "p.csv"])
    assert predicted.exit_code == 0, predicted.output
    frame = pd.read_csv("p.csv")
    assert len(frame) == 24 and set(frame["label"]) <= {"left", "right"}
    kaggle = runner.invoke(app, ["predict", "runs/r", str(shapes / "left"), "--format", "kaggle"])
    assert kaggle.exit_code == 0 and list(pd.read_csv("predictions.csv").columns) == ["id", "label"]
    listed = runner.invoke(app, ["runs", "list"])
    assert listed.exit_code == 0 and "r" in listed.output and "custom" in listed.output


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--model", "resnet_18"], "Did you mean 'resnet18'"),
        (["--epochs", "-1"], "epochs"),
        (["--image-size", "0"], "image_size"),
        (["--augment", "zoom"], "KEY=VALUE"),
        (["--augment", "zoom_rang=0.1"], "Did you mean 'zoom_range'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(shapes: Path, args, phrase) -> None:
    result = runner.invoke(app, ["train", str(shapes), *args])
    assert result.exit_code == 2, result.output
    assert phrase in result.output and "Traceback" not in result.output


def test_missing_data_is_one_line(shapes: Path) -> None:
    result = runner.invoke(app, ["train", "nowhere"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_python_api_fit_evaluate_predict_save_load(shapes: Path) -> None:
    classifier = ImageClassifier(config=TINY, quiet=True, name="api").fit(shapes)
    assert classifier.classes_ == ["left", "right"] and len(classifier.history_) == 3
    assert classifier.run_dir_ == Path("runs/api")
    evaluation = classifier.evaluate(shapes)
    assert evaluation.accuracy >= 0.5 and len(evaluation.y_true) == 6  # the run's test split
    in_memory = classifier.predict(shapes)
    loaded = load("runs/api")
    from_bundle = loaded.predict(shapes)
    np.testing.assert_array_equal(in_memory.probs, from_bundle.probs)
    saved = classifier.save("bundle")
    assert torch.equal(load(saved).model_.head[-1].weight, classifier.model_.head[-1].weight)
    assert not ImageClassifier().__dict__.get("model_")  # __init__ stores parameters only


def test_set_any_key_and_runs_list_csv(shapes: Path) -> None:
    result = _train(shapes, "--name", "s", "--set", "train.label_smoothing=0.1", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "label_smoothing: 0.1" in Path("runs/s/config.yaml").read_text()
    listed = runner.invoke(app, ["runs", "list", "--csv"])
    frame = pd.read_csv(io.StringIO(listed.stdout))
    assert list(frame["name"]) == ["s"] and frame.loc[0, "epochs"] == "1/1"


def test_a_runs_config_yaml_runs_again(shapes: Path) -> None:
    assert _train(shapes, "--name", "original", "--epochs", "1").exit_code == 0
    again = runner.invoke(
        app, ["train", "--config", "runs/original/config.yaml", "--name", "again", "--quiet"]
    )
    assert again.exit_code == 0, again.output
    assert (Path("runs/again") / "model" / "model.json").is_file()


def test_the_first_digits_command_names_the_image_size_cnn_needs() -> None:
    result = runner.invoke(app, ["train", "digits", "--model", "cnn", "--epochs", "1"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "model 'cnn' needs images of at least 10x10 px, received 8x8" in text
    assert "pass --image-size 10 or more" in text and "Traceback" not in text
    assert not Path("runs").exists()  # refused before a run folder exists
