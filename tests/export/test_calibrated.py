"""Calibration carried from the run to the answer: the temperature fitted on val is in
metrics.json, the ledger, the report, model.json and the ONNX graph, and predict, export and a
reloaded bundle give the same calibrated probabilities. A run without val says why it is not
calibrated, and predict says so of its model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.train.conftest import make_blocks
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.models.bundle import load_bundle, save_bundle
from imgclf.runs.ledger import read_ledger


def test_the_run_records_its_temperature_everywhere(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    record = metrics["calibration"]
    temperature = record["temperature"]
    assert temperature > 0 and temperature != 1.0
    assert record["fitted_on_images"] == metrics["val"]["n_images"]
    assert set(record["splits"]) == {"val", "test"}
    for split in ("val", "test"):  # the splits' own scores are the calibrated ones
        assert metrics[split]["ece"] == pytest.approx(
            record["splits"][split]["ece_after"], abs=1e-6
        )
        assert metrics[split]["loss"] == pytest.approx(
            record["splits"][split]["nll_after"], abs=1e-6
        )
    assert record["splits"]["val"]["nll_after"] <= record["splits"]["val"]["nll_before"]
    bundle = json.loads((tiny_run / "model" / "model.json").read_text())
    assert bundle["calibration"]["temperature"] == temperature
    assert (tiny_run / "plots" / "reliability.png").is_file()
    page = (tiny_run / "report.html").read_text(encoding="utf-8")
    assert f"calibration: temperature {temperature:.3f} fitted on val" in page
    assert "reliability (test)" in page
    finished = [r for r in read_ledger(tiny_run.parent).records if r["event"] == "finished"]
    assert finished[-1]["calibration"]["temperature"] == temperature


def test_the_reloaded_bundle_divides_its_logits_by_the_temperature(tiny_run, tmp_path) -> None:
    model = load_bundle(tiny_run)
    temperature = model.calibration["temperature"]
    blocks = make_blocks(n_per_class=2, seed=5)[0].repeat(2, 1).repeat(2, 2)  # 16 px, as trained
    x = torch.from_numpy(blocks).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        calibrated = model.eval()(x)
        model.temperature = None  # the network without its temperature
        raw = model(x)
    assert torch.allclose(calibrated, raw / temperature, atol=1e-6)
    names = set(load_bundle(tiny_run).state_dict())
    assert names == set(model.state_dict())  # the temperature holds no tensor
    model.spec.pop("calibration")  # an older bundle: no temperature, loads and predicts as before
    old = load_bundle(save_bundle(model, tmp_path / "old"))
    assert old.calibration is None
    with torch.inference_mode():
        assert torch.allclose(old.eval()(x), raw, atol=1e-6)


def test_onnx_carries_the_temperature_inside_the_graph(tiny_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    api.export(run, progress=False)
    onnx_spec = json.loads((run / "model" / "onnx.json").read_text())
    temperature = load_bundle(run).calibration["temperature"]
    assert onnx_spec["inside_the_graph"]["temperature"] == temperature
    images = tmp_path / "images"
    images.mkdir()
    for i, block in enumerate(make_blocks(n_per_class=4, seed=6)[0]):
        Image.fromarray(block[..., 0]).save(images / f"{i:02d}.png")
    torch_probs = api.predict(run, images, backend="torch", progress=False).probs
    onnx_probs = api.predict(run, images, backend="onnx", progress=False).probs
    assert np.abs(onnx_probs - torch_probs).max() < 1e-5
    assert api.predict(run, images, progress=False).temperature == temperature


def test_a_run_without_val_is_not_calibrated_and_predict_says_so(shapes: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(shapes), "--config", "tiny.yaml", "--epochs", "1",
                                 "--val-split", "0", "--name", "noval"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "calibration: skipped (the run has no validation split)" in result.output
    run = Path("runs/noval")
    assert json.loads((run / "metrics.json").read_text())["calibration"] == {
        "skipped": "the run has no validation split"
    }
    assert load_bundle(run).calibration is None
    result = runner.invoke(app, ["predict", str(run), str(shapes), "--output", "p.csv"])
    assert result.exit_code == 0, result.output
    assert "note: this model has no calibration" in result.output
    result = runner.invoke(app, ["train", str(shapes), "--config", "tiny.yaml", "--epochs", "1",
                                 "--set", "train.calibrate=false", "--name", "off"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "calibration: skipped (train.calibrate is false)" in result.output


def test_with_flip_tta_the_measures_after_are_the_final_scores(shapes: Path, monkeypatch) -> None:
    import imgclf.runs.finish as finish

    passes, real = [], finish.predict_rows
    monkeypatch.setattr(finish, "predict_rows", lambda *a, **k: passes.append(1) or real(*a, **k))
    run = api.train(shapes, config="tiny.yaml", epochs=1, tta="flip", quiet=True, name="flip")
    assert len(passes) == 2  # val and test once each: both views' logits serve both temperatures
    record = run.metrics["calibration"]
    for split in ("val", "test"):
        assert run.metrics[split]["ece"] == pytest.approx(
            record["splits"][split]["ece_after"], abs=1e-6
        )
    again = api.evaluate(run.path).to_dict()  # the saved, calibrated model scored afresh
    assert again["accuracy"] == run.metrics["test"]["accuracy"]
    assert again["ece"] == pytest.approx(run.metrics["test"]["ece"], abs=1e-6)
