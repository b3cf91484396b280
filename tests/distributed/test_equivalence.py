"""Two processes train what one trains: the same global batches (augmentation and mixing
built per global batch), dropout masks drawn per global batch, one global loss, BatchNorm
statistics over both ranks, the same decisions. Parameters and metrics agree within 1e-4
(here: within float noise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tests.distributed.conftest import history, imgclf, train

from imgclf import api

pytestmark = pytest.mark.slow

BATCHNORM_MIXUP = """\
model:
  name: custom
  layers:
    - {type: conv, filters: 8, kernel: 3}
    - {type: batchnorm}
    - {type: maxpool, size: 2}
    - {type: flatten}
    - {type: dense, units: 16}
augment:
  horizontal_flip: true
  mixup: 0.4
"""


def _max_param_diff(one: Path, two: Path) -> float:
    a, b = (load_file(run / "model" / "model.safetensors") for run in (one, two))
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _assert_same_training(one: Path, two: Path) -> None:
    assert _max_param_diff(one, two) <= 1e-4
    rows = list(zip(history(one), history(two), strict=True))
    for single, double in rows:
        assert single.get("stage") == double.get("stage")
        assert single["val_accuracy"] == double["val_accuracy"]
        assert single["accuracy"] == double["accuracy"]
        for key in ("loss", "val_loss"):
            assert abs(float(single[key]) - float(double[key])) <= 1e-4, (key, single, double)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (one, two)]
    assert metrics[0]["val"]["accuracy"] == metrics[1]["val"]["accuracy"]
    assert metrics[1]["runtime"]["world_size"] == 2


@pytest.mark.parametrize(
    ("case", "args"),
    [
        (
            "deep_cnn-dropout-flip",
            ["--model", "deep_cnn", "--augment", "horizontal_flip=true", "--epochs", "2"],
        ),  # fmt: skip
        ("batchnorm-mixup", ["--config", "bn.yaml", "--epochs", "3"]),
        (
            "lite0-staged",
            [
                "--model",
                "efficientnet_lite0",
                "--image-size",
                "32",
                "--epochs",
                "2",
                "--finetune-epochs",
                "2",
                "--batch-size",
                "8",
                "--augment",
                "horizontal_flip=true",
            ],
        ),  # fmt: skip
    ],
)
def test_two_processes_train_what_one_trains(colours: Path, tmp_path: Path, case, args) -> None:
    (tmp_path / "bn.yaml").write_text(BATCHNORM_MIXUP)
    args = ["--batch-size", "16", *args] if "--batch-size" not in args else args
    one = train(colours, tmp_path, f"{case}-1", *args)
    two = train(colours, tmp_path, f"{case}-2", *args, procs=2)
    _assert_same_training(one, two)
    # only rank 0 wrote: one folder each, one ledger entry each
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()) == [
        f"{case}-1", f"{case}-2"]  # fmt: skip
    assert sorted(row["name"] for row in api.runs(tmp_path / "runs")) == [f"{case}-1", f"{case}-2"]


def test_a_distributed_run_resumes_in_one_process(colours: Path, tmp_path: Path) -> None:
    two = train(colours, tmp_path, "two", "--model", "cnn", "--epochs", "2", "--batch-size", "16",
                procs=2)  # fmt: skip
    resumed = imgclf("train", "--resume", str(two), "--epochs", "3", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert [row["epoch"] for row in history(two)] == ["1", "2", "3"]


def test_a_budget_is_planned_once_for_every_process(colours: Path, tmp_path: Path) -> None:
    """Rank 0's probe and re-plans decide: no rank waits for a plan another never made."""
    run = train(colours, tmp_path, "budget", "--model", "cnn", "--budget", "15s",
                "--batch-size", "16", procs=2)  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["budget"]["planned_epochs"]["train"] >= 1
    assert len(history(run)) == metrics["epochs_run"] >= 1
