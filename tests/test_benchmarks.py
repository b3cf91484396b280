"""The benchmark scripts still run against the current API (on tiny data: the figures
themselves come from running them on real data, see BENCHMARKS.md)."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import cifar_r3, fast_recipes, transfer


def _folder(root: Path, per_class: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for label, corner in (("a", 0), ("b", 16)):
        (root / label).mkdir(parents=True)
        for k in range(per_class):
            pixels = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
            pixels[corner : corner + 16, corner : corner + 16] = 230
            Image.fromarray(pixels).save(root / label / f"{k}.png")
    return root


@pytest.mark.parametrize(
    "name",
    [
        "loader",
        "mnist_r5",
        "cifar_r3",
        "transfer",
        "predict_speed",
        "embed_speed",
        "serve_load",
        "ddp_speed",
        "fast_recipes",
        "speed_defaults",
        "startup",
        "unknown_stages",
        "copy_groups",
        "folded_finetune",
        "audit_speed",
    ],
)
def test_every_benchmark_imports(name: str) -> None:
    assert callable(importlib.import_module(f"benchmarks.{name}").main)


def test_a_call_runs_with_the_checkout_given(tmp_path: Path) -> None:
    """Benchmarks that compare two commits run each in a process importing its ``src``."""
    from benchmarks.common import in_checkout

    fake = tmp_path / "src" / "imgclf"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("WHICH = 'the other checkout'\n")
    call = "importlib.import_module('imgclf').WHICH"
    assert in_checkout(tmp_path / "src", call) == "the other checkout"


def test_the_startup_ledger_lists_every_run(tmp_path: Path) -> None:
    from benchmarks.startup import write_ledger
    from imgclf import api

    write_ledger(tmp_path / "runs", runs=7)
    rows = api.runs(tmp_path / "runs")
    assert len(rows) == 7 and {row["status"] for row in rows} == {"finished"}
    assert rows[0]["mode"] == "scratch" and rows[0]["val_accuracy"] is not None


def test_transfer_run_reports_time_and_accuracy(tmp_path: Path) -> None:
    data = _folder(tmp_path / "photos")
    result = transfer.run(
        data, tmp_path / "cache", model="efficientnet_lite0", mode="feature_extract",
        epochs=2, image_size=32, head=transfer.R2_HEAD,
    )  # fmt: skip
    assert result["timings"]["embed"] > 0 and (tmp_path / "cache" / "embeddings").is_dir()
    assert result["wall"] > 0 and 0.0 <= result["test"] <= 1.0
    assert len(result["history"]) == 2 and result["to_best"] > 0


def test_cifar_r3_run_validates_on_the_test_folder(tmp_path: Path) -> None:
    _folder(tmp_path / "cifar" / "train")
    _folder(tmp_path / "cifar" / "test", per_class=4)
    settings = {"model": "small_cnn", "epochs": 1, "batch_size": 8, "image_size": 32}
    result = cifar_r3.run(tmp_path / "cifar", settings, watch=True, stop=False)
    assert result["epochs"] == 1 and 0.0 <= result["test"] <= 1.0
    assert result["best"] == result["test"]


def test_the_keras_side_is_read_from_its_result_line(tmp_path: Path) -> None:
    from benchmarks.common import keras_baseline, parse_keras_result

    lines = ["epoch 1 82.0 s\n", "RESULT recipe=deep_cnn epochs=30 test_acc=0.9931 "
             "train_wall_s=2090.1\n"]  # fmt: skip
    assert parse_keras_result(lines) == {"test_acc": 0.9931, "train_wall_s": 2090.1}
    with pytest.raises(RuntimeError, match="no RESULT line"):
        parse_keras_result(["Traceback ...\n"])
    # an interpreter stand-in that makes the npz and prints what the Keras script prints
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho RESULT recipe=small_cnn epochs=10 test_acc=0.6877 "
                    "train_wall_s=377.0\n")  # fmt: skip
    fake.chmod(0o755)
    assert keras_baseline(str(fake), "keras_r3.py", "cifar10-jpg", "10")["test_acc"] == 0.6877


def test_fast_recipes_runs_the_cli_as_a_user_does(tmp_path: Path, monkeypatch) -> None:
    data = _folder(tmp_path / "colour")
    recipe = {"data": str(data), "args": ["--val-split", "0.2", "--test-split", "0.2"]}
    result = fast_recipes.run_imgclf(recipe, 0, tmp_path / "runs", ["--epochs", "1"])
    assert 0.0 <= result["test"] <= 1.0 and result["epochs"] == 1
    assert 0 < result["to_score"] < result["wall"]
    assert fast_recipes.spread([1.0, 3.0]) == "2 +- 1.4"


def test_audit_speed_runs_the_cli_and_keeps_its_results_where_it_clears_them(tmp_path):
    """The "embeddings cached" state removes ``<cache>/audit``: the audit's results must be
    there, and the decoded images and embeddings elsewhere."""
    from benchmarks import audit_speed

    table = audit_speed.write_table(_folder(tmp_path / "colour"), 12, 0, tmp_path)
    assert len(table.read_text().splitlines()) == 1 + 12
    cache = tmp_path / "cache"
    wall, report = audit_speed.audit(table, cache, tmp_path / "audit")
    assert wall > 0 and report["n_images"] == 12 and "labels" in report["timings"]
    assert any((cache / "audit").iterdir()) and {p.name for p in cache.iterdir()} - {"audit"}
    assert audit_speed.line("run again", wall, report).startswith("run again")


def test_gpu_check_dry_run_lists_the_five_steps_on_cuda(capsys) -> None:
    from benchmarks import gpu_check

    assert gpu_check.main(["--dry-run", "--device", "cuda"]) == 0
    printed = capsys.readouterr().out
    steps = [line for line in printed.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["1", "2", "3a", "3b", "4", "5"]
    assert "--info" in steps[0] and "-m gpu tests/test_gpu.py" in steps[1]
    assert "--precision 16-mixed" in steps[2] and "--precision bf16-mixed" in steps[3]
    assert "doctor ddp --device cuda" in steps[4] and "--preset fast --val-split 0" in steps[5]
    assert all("--device cuda" in line for line in steps[2:])
    plan = gpu_check.plan("cuda")
    assert sum(s.limit + gpu_check.KILL_GRACE for s in plan) < gpu_check.TOTAL_LIMIT


def test_gpu_check_writes_a_passed_and_a_failed_step(tmp_path) -> None:
    from benchmarks.gpu_check import Step, run_step, write_results

    ok = Step("1", "ok", ["sh", "-c", "echo noise; echo 'test: accuracy 0.9000, macro F1 0.9'"], 10)
    bad = Step("2", "bad", ["sh", "-c", "echo 'val: accuracy 0.5000'; echo boom >&2; exit 3"], 10)
    outcomes = [run_step(ok, echo=False), run_step(bad, echo=False)]
    write_results(tmp_path / "r.txt", outcomes, "test")
    lines = (tmp_path / "r.txt").read_text().splitlines()
    assert lines[0].startswith("# imgclf GPU check")
    assert lines[1].startswith("step 1 ok: ok, exit 0, ")
    assert lines[2] == "    test: accuracy 0.9000, macro F1 0.9"  # the figures, not the noise
    assert lines[3].startswith("step 2 bad: FAILED, exit 3, ")
    assert "    val: accuracy 0.5000" in lines and "    boom" in lines  # a failure's last lines
    assert lines[-1].endswith("1 ok, 1 failed, 0 skipped")


def test_gpu_check_skips_missing_data_with_a_reason(tmp_path, monkeypatch) -> None:
    from benchmarks import gpu_check

    steps = {s.id: s for s in gpu_check.plan("cuda", tmp_path / "none", gpus=1)}
    assert steps["3a"].skip == steps["3b"].skip == f"no data at {tmp_path / 'none' / 'animals'}"
    assert steps["5"].skip == f"no data at {tmp_path / 'none' / 'cifar10-jpg'}"
    assert "1 GPU" in steps["4"].skip and steps["1"].skip is None and steps["2"].skip is None
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    monkeypatch.setattr(gpu_check.tempfile, "tempdir", str(tmp_path))  # its scratch folder
    assert gpu_check.main(["--device", "cpu", "--data-dir", str(tmp_path / "none"),
                           "--only", "3a", "5"]) == 0  # fmt: skip
    text = (tmp_path / "out" / "gpu_check_results.txt").read_text()
    assert "step 3a lite0 animals 32: skipped (no data at" in text
    assert "step 5 fast cifar: skipped (no data at" in text and "0 ok, 0 failed, 2 skipped" in text
