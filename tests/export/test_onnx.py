"""ONNX export: the parity gate on a tiny run and on Lite0, a tampered graph refused, the
fallback exporter, the input spec, and the CLI's bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.train.conftest import make_blocks
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError, ModelError
from imgclf.export import onnx as onnx_export


def _session_probs(path: Path, batch: np.ndarray) -> np.ndarray:
    return onnx_export.ort_session(path).run(["probabilities"], {"images": batch})[0]


def test_export_keeps_a_graph_that_passes_the_gate(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "onnx"
    record = api.export(tiny_run, output=out, progress=False)
    assert record["passed"] and record["exporter"] == "dynamo" and record["opset"] >= 18
    gate = record["attempts"][-1]
    assert gate["images"] >= onnx_export.MIN_IMAGES and gate["top1_agreement"] == 1.0
    assert gate["max_abs_logit_diff"] <= 1e-4 and gate["torch_accuracy"] == gate["onnx_accuracy"]
    assert json.loads((out / "parity.json").read_text())["passed"]
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "onnx.json", "parity.json"]
    spec = json.loads((out / "onnx.json").read_text())
    assert spec["input"] == {"name": "images", "dtype": "uint8", "layout": "nchw",
                             "shape": ["batch", 1, 16, 16]}  # fmt: skip
    assert spec["resize"]["size"] == [16, 16] and spec["inside_the_graph"]["softmax"]
    # one file, any batch size, softmax inside: probabilities sum to one
    for n in (1, 5):
        probs = _session_probs(out / "model.onnx", np.zeros((n, 1, 16, 16), np.uint8))
        assert probs.shape == (n, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_the_predicting_session_leaves_the_cores_to_the_decoders(tiny_run, tmp_path) -> None:
    """predict and serve decode beside ONNX Runtime: its threads must not busy-wait."""
    api.export(tiny_run, output=tmp_path, progress=False)
    key = "session.intra_op.allow_spinning"
    runner = onnx_export.OnnxClassifier(tmp_path)
    assert runner.session.get_session_options().get_session_config_entry(key) == "0"
    plain = onnx_export.ort_session(tmp_path / "model.onnx").get_session_options()
    with pytest.raises(RuntimeError, match="does not have"):  # the gate's timing: ORT's default
        plain.get_session_config_entry(key)


def test_the_nhwc_layout_takes_decoded_images_as_they_are(tiny_run: Path, tmp_path: Path):
    record = api.export(tiny_run, output=tmp_path, layout="nhwc", progress=False)
    assert record["passed"]
    probs = _session_probs(tmp_path / "model.onnx", np.full((2, 16, 16, 1), 200, np.uint8))
    assert probs.shape == (2, 3)


def test_a_tampered_graph_fails_the_gate_and_nothing_is_kept(tiny_run, tmp_path, monkeypatch):
    import onnx
    from onnx import numpy_helper

    export_graph = onnx_export.export_graph

    def tampered(model, path, exporter, layout="nchw"):
        export_graph(model, path, exporter, layout)
        graph = onnx.load(str(path))
        floats = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
        weights = max(floats, key=lambda t: np.prod(t.dims))
        values = numpy_helper.to_array(weights) * 1.5  # a changed weight
        weights.CopyFrom(numpy_helper.from_array(values.astype(np.float32), weights.name))
        onnx.save(graph, str(path))

    monkeypatch.setattr(onnx_export, "export_graph", tampered)
    with pytest.raises(ModelError, match="no exporter passed the parity gate"):
        api.export(tiny_run, output=tmp_path, progress=False)
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "onnx.json").exists()
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert not parity["passed"] and len(parity["attempts"]) == 2  # both exporters tried
    for attempt in parity["attempts"]:  # the changed weight moves the logits or the shares
        assert attempt["max_abs_logit_diff"] > 1e-4 or attempt["shares_within_tolerance"] < 1


def test_the_torchscript_exporter_is_the_fallback(tiny_run, tmp_path, monkeypatch) -> None:
    export_graph = onnx_export.export_graph

    def dynamo_fails(model, path, exporter, layout="nchw"):
        if exporter == "dynamo":
            raise RuntimeError("torch.export could not trace it")
        export_graph(model, path, exporter, layout)

    monkeypatch.setattr(onnx_export, "export_graph", dynamo_fails)
    record = api.export(tiny_run, output=tmp_path, progress=False)
    assert record["exporter"] == "torchscript" and record["passed"]
    assert record["attempts"][0] == {"exporter": "dynamo",
                                     "error": "torch.export could not trace it"}  # fmt: skip


@pytest.mark.slow
def test_lite0_exports_within_the_gate(tmp_path: Path) -> None:
    from imgclf.config import ModelConfig
    from imgclf.models.network import build_model

    model = build_model(ModelConfig(name="efficientnet_lite0"), ["a", "b", "c"], 3, (64, 64))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (64, 64, 64, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 64)
    record = onnx_export.export_onnx(model, tmp_path, images, labels, "random")
    assert record["passed"], record
    assert record["attempts"][-1]["max_abs_logit_diff"] <= 1e-4


def test_too_few_gate_images_or_a_missing_library_is_one_line(tiny_run, tmp_path, monkeypatch):
    model = __import__("imgclf.models.bundle", fromlist=["x"]).load_bundle(tiny_run)
    few = np.zeros((10, 16, 16, 1), np.uint8)
    with pytest.raises(ConfigError, match="at least 64 real images"):
        onnx_export.export_onnx(model, tmp_path, few, np.zeros(10, int), "test")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'imgclf\[onnx\]'"):
        api.export(tiny_run, output=tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "tflite"], "Unknown export format 'tflite'"),
        (["--layout", "hwc"], "Unknown layout 'hwc'"),
        (["--split", "holdout"], "Unknown split 'holdout'"),
    ],
)
def test_bad_export_arguments_exit_2(tiny_run: Path, tmp_path: Path, args, message) -> None:
    result = CliRunner().invoke(
        app, ["export", str(tiny_run), "--output", str(tmp_path / "o"), *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o" / "model.onnx").exists()


def test_imgclf_export_prints_the_gate_and_a_missing_run_is_one_line(tiny_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(tiny_run), "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "parity on" in result.output and "top-1 agreement 100%" in result.output
    assert "Exported:" in result.output and (tmp_path / "model.onnx").is_file()
    missing = runner.invoke(app, ["export", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_predict_on_onnx_runtime_matches_torch(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    from PIL import Image

    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    folder = tmp_path / "images"
    folder.mkdir()
    images, _ = make_blocks(n_per_class=5, seed=3)
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(folder / f"{i:02d}.png")
    with pytest.raises(ConfigError, match="no exported model that passed its parity gate"):
        api.predict(run, [folder], backend="onnx", progress=False)
    assert api.predict(run, [folder], progress=False).backend == "torch"  # auto: none yet
    api.export(run, progress=False)  # into the bundle, where auto finds it
    for tta in (None, "flip"):
        torch_run = api.predict(run, [folder], backend="torch", tta=tta, progress=False)
        onnx_run = api.predict(run, [folder], backend="onnx", tta=tta, progress=False)
        auto = api.predict(run, [folder], tta=tta, progress=False)
        assert onnx_run.backend == auto.backend == "onnx"
        assert list(onnx_run.labels) == list(torch_run.labels)
        assert np.abs(onnx_run.probs - torch_run.probs).max() < 1e-5
    (folder / "04.png").write_bytes(b"not a png")  # amid the batches the threads score
    torch_run = api.predict(run, [folder], backend="torch", batch_size=3, progress=False)
    onnx_run = api.predict(run, [folder], backend="onnx", batch_size=3, workers=2, progress=False)
    assert onnx_run.paths == torch_run.paths and len(onnx_run.paths) == len(images) - 1
    assert onnx_run.skipped == torch_run.skipped and len(onnx_run.skipped) == 1
    assert np.abs(onnx_run.probs - torch_run.probs).max() < 1e-5
    csv = str(tmp_path / "p.csv")
    args = ["predict", str(run), str(folder), "--output", csv, "--backend", "tensorrt"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Unknown backend 'tensorrt'" in result.output
