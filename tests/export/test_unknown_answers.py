"""predict --abstain: a run with a validation split carries its unknown score in the bundle,
and predict answers "unknown" for pictures unlike its training data, in the CSV and in
Python, and the exported graph abstains the same way; a bad value, a model without the score
and a graph without it are one line each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.train.conftest import make_blocks
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError
from imgclf.export.onnx import export_graph
from imgclf.layout import ONNX_NAME, SPEC_NAME
from imgclf.models.bundle import load_bundle


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """12 pictures like the training blocks, then 6 unlike them: flat white frames, a checker."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, block in enumerate(make_blocks(n_per_class=4, seed=9)[0]):
        Image.fromarray(block[..., 0]).save(folder / f"a{i:02d}.png")
    for i in range(3):
        Image.fromarray(np.full((8, 8), 255 - i, np.uint8)).save(folder / f"z_white{i}.png")
        checker = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)
        Image.fromarray(np.roll(checker, i, 0)).save(folder / f"z_checker{i}.png")
    return folder


def test_the_run_keeps_its_unknown_score(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    record, n_val = metrics["unknown"], metrics["val"]["n_images"]
    assert record["score"] == "mahalanobis" and record["threshold"] == 0.05
    assert record["fitted_on"]["val"] == n_val and set(record["unknown_share"]) == {"val", "test"}
    model = load_bundle(tiny_run)
    assert model.spec["unknown"]["reference"] == len(model.unknown.reference) == n_val
    assert {"unknown.means", "unknown.precision", "unknown.reference"} <= set(model.state_dict())


def test_predict_abstains_on_pictures_unlike_the_training_data(tiny_run, mixed, tmp_path):
    result = api.predict(tiny_run, [mixed], abstain="auto", progress=False)
    strange = np.array([Path(p).name.startswith("z_") for p in result.paths])
    assert result.unknown[strange].all()
    assert result.unknown[~strange].mean() <= 0.25  # 95 % of val kept; these are like val
    assert [a for a, u in zip(result.answers, result.unknown, strict=True) if u] == [
        "unknown"
    ] * int(result.unknown.sum())
    out = tmp_path / "p.csv"
    cli = CliRunner().invoke(app, ["predict", str(tiny_run), str(mixed), "--output", str(out),
                                   "--abstain", "0.05"])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert f"{int(result.unknown.sum())} images answered unknown" in cli.output
    header, *rows = out.read_text().splitlines()
    assert header.startswith("path,label,probability,unknown,in_distribution")
    assert sum(row.split(",")[1] == "unknown" for row in rows) == int(result.unknown.sum())
    plain = api.predict(tiny_run, [mixed], progress=False)  # no --abstain: answers as before
    assert not plain.unknown.any() and plain.answers == plain.labels


@pytest.mark.parametrize("value", ["1.5", "0", "1", "often"])
def test_a_bad_abstain_value_is_one_line_exit_2(tiny_run, mixed, tmp_path, value):
    result = CliRunner().invoke(app, ["predict", str(tiny_run), str(mixed), "--output",
                                      str(tmp_path / "p.csv"), "--abstain", value])  # fmt: skip
    assert result.exit_code == 2
    assert f"--abstain {value}: give auto" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p.csv").exists()


def test_the_exported_graph_abstains_as_torch_does(tiny_run, mixed, tmp_path):
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    api.export(run, progress=False)
    spec = json.loads((run / "model" / SPEC_NAME).read_text())
    assert spec["outputs"][-1] == "in_distribution" and spec["abstain"]["threshold"] == 0.05
    torch_answer = api.predict(run, [mixed], abstain="auto", backend="torch", progress=False)
    onnx_answer = api.predict(run, [mixed], abstain="auto", backend="onnx", progress=False)
    assert onnx_answer.backend == "onnx"
    np.testing.assert_allclose(onnx_answer.in_distribution, torch_answer.in_distribution, atol=0.1)
    assert (onnx_answer.unknown == torch_answer.unknown).mean() >= 0.9
    assert onnx_answer.unknown[[Path(p).name.startswith("z_") for p in onnx_answer.paths]].all()
    parity = json.loads((run / "model" / "parity.json").read_text())["attempts"][-1]
    assert parity["shares_within_tolerance"] == 1.0
    on_onnx = api.predict(run, [mixed], sets=0.9, backend="onnx", progress=False)
    on_torch = api.predict(run, [mixed], sets=0.9, backend="torch", progress=False)
    np.testing.assert_array_equal(on_onnx.sets, on_torch.sets)
    cut = spec["sets"]["thresholds"]["0.9"]  # what a client of the graph alone needs
    members = 1 - on_onnx.probs <= cut + 1e-12
    members[np.arange(len(members)), on_onnx.probs.argmax(1)] = True
    np.testing.assert_array_equal(members, on_onnx.sets)


def test_a_model_without_the_score_or_a_graph_without_it_is_one_line(tiny_run, mixed, tmp_path):
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    spec = json.loads((run / "model" / "model.json").read_text())
    model = load_bundle(run)
    model.unknown, model.spec = None, {k: v for k, v in spec.items() if k != "unknown"}
    with pytest.raises(ConfigError, match="needs the model's unknown score, and this model has"):
        api.predict(model, [mixed], abstain="auto", progress=False)
    api.export(run, progress=False)  # then the graph of a model without the score replaces it
    export_graph(model, run / "model" / ONNX_NAME, "torchscript")
    with pytest.raises(ConfigError, match="has no in_distribution output"):
        api.predict(run, [mixed], abstain="auto", backend="onnx", progress=False)
    assert api.predict(run, [mixed], abstain="auto", progress=False).backend == "torch"


def test_arrays_abstain_as_files_do(tiny_run: Path) -> None:
    from imgclf.predict import predict_arrays

    blocks = make_blocks(n_per_class=4, seed=9)[0]
    images = np.concatenate([blocks, np.full((3, 8, 8, 1), 255, np.uint8)])
    result = predict_arrays(load_bundle(tiny_run), images, abstain="auto")
    assert result.unknown[-3:].all() and result.answers[-1] == "unknown"
    assert result.in_distribution.shape == (len(images),)


def test_serve_refuses_a_bad_abstain_value_before_it_starts(tiny_run: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(tiny_run), "--abstain", "2"])
    assert result.exit_code == 2 and "--abstain 2: give auto" in result.output


def test_prediction_sets_from_the_run_and_predict(tiny_run: Path, mixed, tmp_path) -> None:
    record = json.loads((tiny_run / "metrics.json").read_text())["sets"]
    assert record["method"] == "lac" and record["coverage_target"] == 0.9
    assert 0 <= record["splits"]["test"]["coverage"] <= 1
    result = api.predict(tiny_run, [mixed], sets=0.9, progress=False)
    assert result.sets.shape == (len(result.paths), 3) and result.sets.any(axis=1).all()
    out = tmp_path / "p.csv"
    cli = CliRunner().invoke(app, ["predict", str(tiny_run), str(mixed), "--output", str(out),
                                   "--sets", "0.9"])  # fmt: skip
    assert cli.exit_code == 0 and "prediction sets at 90%: mean size" in cli.output
    header, first, *_ = out.read_text().splitlines()
    assert ",set,set_size," in header
    for value in ("0", "1", "1.5"):
        bad = CliRunner().invoke(app, ["predict", str(tiny_run), str(mixed), "--output",
                                       str(tmp_path / "b.csv"), "--sets", value])  # fmt: skip
        assert bad.exit_code == 2 and "give a coverage between 0 and 1" in bad.output
    model = load_bundle(tiny_run)
    model.conformal = None
    with pytest.raises(ConfigError, match="--sets needs the model's conformal scores"):
        api.predict(model, [mixed], sets=0.9, progress=False)
