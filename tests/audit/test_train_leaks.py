"""Every training run checks its own splits for copies (the quick audit), says what leaks in
one line with the run's audit.html, and scores val and test with and without the leaked images
(metrics.json, the printed result and the ledger)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from tests.audit.conftest import tiny_config
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.evaluate.metrics import leak_free_score

runner = CliRunner()


def test_a_run_names_its_leaks_and_scores_without_them(planted, tmp_path, monkeypatch):
    data = shutil.copytree(planted.root, tmp_path / "data")
    for broken in planted.unreadable:  # training's own checks for those are tested elsewhere
        (data / broken).unlink()
    tiny_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMGCLF_CACHE_DIR", str(tmp_path / "cache"))
    result = runner.invoke(app, ["train", "data", "--config", "tiny.yaml", "--image-size", "64",
                                 "--name", "r"])  # fmt: skip
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "r"
    output = " ".join(result.output.split())  # rich may wrap the long lines
    leak = "2 test images have near-duplicates in train (1 of them an exact copy)"
    assert f"{leak}; see {Path('runs', 'r', 'audit.html')}" in output
    assert {"audit.html", "audit.json", "issues.csv"} <= {p.name for p in run.iterdir()}
    assert "without the 2 that leak from train" in (run / "report.html").read_text("utf-8")
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    clean = metrics["test"]["without_leaks"]
    assert (clean["leaked"], clean["n_images"]) == (2, metrics["test"]["n_images"] - 2)
    assert clean["summary"] in output
    assert clean["summary"].startswith(f"test accuracy {metrics['test']['accuracy']:.4f} (")
    ledger_text = (tmp_path / "runs" / "ledger.jsonl").read_text(encoding="utf-8")
    ledger = [json.loads(line) for line in ledger_text.splitlines()]
    finished = [e for e in ledger if e.get("event") == "finished"][-1]
    assert json.dumps(finished).count('"leaked": 2') == 1
    evaluated = runner.invoke(app, ["evaluate", "runs/r"])  # the run's own test split again
    assert evaluated.exit_code == 0, evaluated.output
    assert clean["summary"] in " ".join(evaluated.output.split())
    assert api.evaluate(run).to_dict()["without_leaks"] == clean
    resumed = runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "2"])
    assert resumed.exit_code == 0, resumed.output
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["epochs_run"] == 2 and metrics["test"]["without_leaks"]["leaked"] == 2


def test_audit_full_runs_every_check_into_the_run_folder(planted, tmp_path, monkeypatch):
    data = shutil.copytree(planted.root, tmp_path / "data")
    tiny_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMGCLF_CACHE_DIR", str(tmp_path / "cache"))
    result = runner.invoke(app, ["train", str(data), "--config", "tiny.yaml", "--image-size",
                                 "64", "--name", "r", "--audit", "full"])  # fmt: skip
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "audit: label issues: " in output
    assert "audit: leak: 1 val image has near-duplicates in train" in output  # the cropped copy
    report = json.loads(Path("runs/r/audit-full/audit.json").read_text(encoding="utf-8"))
    assert report["settings"]["checks"] == [
        "labels",
        "duplicates",
        "outliers",
        "balance",
        "properties",
    ]
    metrics = json.loads(Path("runs/r/metrics.json").read_text(encoding="utf-8"))
    assert metrics["val"]["without_leaks"]["leaked"] == 1
    assert metrics["test"]["without_leaks"]["leaked"] == 2  # the quick check's and the audit's
    config = Path("runs/r/config.yaml").read_text(encoding="utf-8")
    assert "audit: full" in config


def test_a_run_without_copies_says_nothing_about_leaks(shapes):
    result = runner.invoke(app, ["train", "data", "--config", "tiny.yaml", "--name", "r"])
    assert result.exit_code == 0, result.output
    assert "near-duplicates" not in result.output and "leak" not in result.output
    metrics = json.loads(Path("runs/r/metrics.json").read_text(encoding="utf-8"))
    assert "without_leaks" not in metrics["test"]
    assert json.loads(Path("runs/r/audit.json").read_text(encoding="utf-8"))["leaks"] == []


def test_leak_free_score_leaves_the_leaked_rows_out():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 0])  # right, right, wrong, wrong
    rows = np.array([10, 11, 12, 13])
    clean = leak_free_score(labels, probs, rows, np.array([10, 11, 99]), ["a", "b"])
    assert (clean["accuracy"], clean["n_images"], clean["leaked"]) == (0.0, 2, 2)
    assert (
        clean["summary"]
        == "test accuracy 0.5000 (0.0000 on 2 images without the 2 that leak from train)"
    )
    assert leak_free_score(labels, probs, rows, np.array([99]), ["a", "b"]) is None
    everything = leak_free_score(labels, probs, rows, rows, ["a", "b"])
    assert everything["accuracy"] is None and "no image is left" in everything["summary"]
