"""int8 export: the gate keeps a graph or refuses in one line, a failed gate keeps nothing, the
sensitive nodes, and predict's int8 backend (auto's first choice when gated)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.train.conftest import make_blocks
from typer.testing import CliRunner

from imgclf import api
from imgclf.api.evaluation import onnx_runner
from imgclf.api.serving import served_model
from imgclf.cli import app
from imgclf.errors import ConfigError, ModelError
from imgclf.export import onnx_int8
from imgclf.runtime import Runtime

LOOSE = {"min_agreement": 0.0, "max_accuracy_drop": 1.0, "min_speedup": 0.0}  # always kept


def test_int8_export_keeps_a_gated_graph_or_refuses_in_one_line(tiny_run, tmp_path) -> None:
    out = tmp_path / "int8"
    try:
        record = api.export(tiny_run, "onnx-int8", output=out, progress=False)
    except ModelError as error:  # the default gate: a tiny cnn may be slower in int8
        assert str(error).startswith("int8 export refused: ") and "\n" not in str(error)
        assert not (out / "model-int8.onnx").exists() and (out / "model.onnx").is_file()
        record = json.loads((out / "parity-int8.json").read_text())
        assert not record["passed"] and record["reason"]
    else:
        assert record["passed"] and record["path"] == out / "model-int8.onnx"
        assert (out / "model-int8.onnx").is_file()
        gate = record["attempts"][-1]
        assert gate["top1_agreement"] >= 0.99 and gate["accuracy_change"] >= -0.005
        assert gate["speedup"] >= 1.0
    # the fp32 graph was exported first (its own gate); calibration: all ~72 train images
    assert json.loads((out / "parity.json").read_text())["passed"]
    assert record["calibration"]["split"] == "train" and 60 < record["calibration"]["images"] < 80
    fp32_gate = json.loads((out / "parity.json").read_text())["attempts"][-1]
    assert record["images"] == fp32_gate["images"] and record["split"] == "test+val"
    assert record["fp32_images_per_s"] > 0 and record["attempts"][0]["int8_images_per_s"] > 0


def test_a_failed_gate_keeps_nothing_and_says_why(tiny_run, tmp_path) -> None:
    impossible = {"min_agreement": 1.01}
    with pytest.raises(ModelError, match=r"int8 export refused: even with \d+ sensitive nodes"):
        api.export(tiny_run, "onnx-int8", output=tmp_path, progress=False, options=impossible)
    assert not (tmp_path / "model-int8.onnx").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no candidate left
    record = json.loads((tmp_path / "parity-int8.json").read_text())
    assert not record["passed"] and len(record["attempts"]) == len(onnx_int8.EXCLUSIONS)
    excluded = [attempt["nodes_excluded"] for attempt in record["attempts"]]
    assert excluded[0] == 1 and excluded[1] >= 3  # the softmax, then the stem and head too
    assert not onnx_int8.passed_gate(tmp_path, "onnx-int8") and onnx_int8.passed_gate(tmp_path)


def test_unknown_formats_and_options_suggest(tiny_run, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"Did you mean 'onnx-int8'\? Formats: onnx, onnx-int8"):
        api.export(tiny_run, "onnx-int", output=tmp_path)
    with pytest.raises(ConfigError, match=r"Unknown option 'min_agreemnt'.*'min_agreement'"):
        api.export(tiny_run, "onnx-int8", output=tmp_path, options={"min_agreemnt": 1})


def test_sensitive_nodes_are_the_stem_and_the_head(tiny_run, tmp_path) -> None:
    api.export(tiny_run, output=tmp_path, progress=False)
    graph = tmp_path / "model.onnx"
    stem_head = onnx_int8.sensitive_nodes(graph, ("stem", "head"))
    assert len(stem_head) >= 2 and onnx_int8.sensitive_nodes(graph, ()) == []
    assert len(onnx_int8.sensitive_nodes(graph, ("softmax",))) == 1


def _image_folder(root: Path) -> Path:
    from PIL import Image

    root.mkdir()
    images, _ = make_blocks(n_per_class=5, seed=3)
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(root / f"{i:02d}.png")
    return root


def test_backend_auto_picks_the_gated_int8_graph(tiny_run, tmp_path) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    folder = _image_folder(tmp_path / "images")
    api.export(run, "onnx-int8", progress=False, options=LOOSE)  # into the bundle
    runtime = Runtime.create("cpu", "32")
    assert onnx_runner(run, "auto", runtime).graph == "model-int8.onnx"
    assert onnx_runner(run, "onnx", runtime).graph == "model.onnx"
    int8 = api.predict(run, [folder], backend="onnx-int8", progress=False)
    auto = api.predict(run, [folder], progress=False)
    assert auto.backend == int8.backend == "onnx-int8" and np.allclose(auto.probs, int8.probs)
    served = served_model(run)  # serve names the graph it runs the same way
    assert served.backend == "onnx-int8" and served.platform == "onnxruntime_onnx"
    assert int8.probs.shape == (15, 3) and np.allclose(int8.probs.sum(1), 1, atol=1e-4)
    # a re-trained model marks parity.json stale: the int8 graph made from it no longer counts
    parity = run / "model" / "parity.json"
    parity.write_text(json.dumps({**json.loads(parity.read_text()), "passed": False}))
    assert onnx_runner(run, "auto", runtime) is None


def test_predict_on_int8_without_an_int8_export_is_one_line(tiny_run, tmp_path) -> None:
    folder = _image_folder(tmp_path / "images")
    args = ["predict", str(tiny_run), str(folder), "--output", str(tmp_path / "p.csv")]
    result = CliRunner().invoke(app, [*args, "--backend", "onnx-int8"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "has no int8 model that passed its gate" in result.output
    assert "--format onnx-int8" in result.output and not (tmp_path / "p.csv").exists()


def test_imgclf_export_onnx_int8_prints_its_gate_or_its_refusal(tiny_run, tmp_path) -> None:
    args = ["export", str(tiny_run), "--format", "onnx-int8", "--output", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert "int8 gate on" in result.output and "Exported:" in result.output
    else:
        assert result.exit_code == 2 and "int8 export refused" in result.output
