"""Two processes train what one trains: the same global batches (augmentation and mixing
built per global batch), dropout masks drawn per global batch, one global loss, BatchNorm
statistics over both ranks, the same decisions. Parameters and metrics agree within 1e-4
(here: within float noise)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tests.distributed.conftest import history, imgclf_here, train

from imgclf import api

pytestmark = pytest.mark.slow

# BatchNorm, dropout (deep_cnn's rates), a flip and mixup in one small network: each is drawn
# or reduced per global batch, and one pair of runs checks them all.
BATCHNORM_DROPOUT_MIXUP = """\
model:
  name: custom
  layers:
    - {type: conv, filters: 8, kernel: 3}
    - {type: batchnorm}
    - {type: maxpool, size: 2}
    - {type: dropout, rate: 0.25}
    - {type: flatten}
    - {type: dense, units: 16}
    - {type: dropout, rate: 0.5}
augment:
  horizontal_flip: true
  mixup: 0.4
"""


def _max_param_diff(one: Path, two: Path) -> float:
    a, b = (load_file(run / "model" / "model.safetensors") for run in (one, two))
    assert a.keys() == b.keys()
    # the network's weights; the unknown score's and the sets' statistics are fitted after
    # training on its features (an inverted covariance magnifies a 1e-5 difference tenfold)
    trained = [k for k in a if not k.startswith(("unknown.", "conformal."))]
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in trained)


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


CASES = {
    "batchnorm-dropout-mixup-flip": ["--config", "bn.yaml", "--epochs", "2"],
    "lite0-staged": [
        "--model", "efficientnet_lite0", "--image-size", "32", "--epochs", "2",
        "--finetune-epochs", "2", "--batch-size", "8", "--augment", "horizontal_flip=true",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def case_runs(colours: Path, tmp_path_factory: pytest.TempPathFactory):
    """``case_runs(case, procs)``: the case's run in ``procs`` processes, trained once for the
    module (a case's two runs side by side in one project, as the equivalence test made them)."""
    roots: dict[str, Path] = {}
    runs: dict[tuple[str, int], Path] = {}

    def case_run(case: str, procs: int) -> Path:
        if case not in roots:
            roots[case] = tmp_path_factory.mktemp(case)
            (roots[case] / "bn.yaml").write_text(BATCHNORM_DROPOUT_MIXUP)
        if (case, procs) not in runs:
            args = CASES[case]
            args = ["--batch-size", "16", *args] if "--batch-size" not in args else args
            runs[case, procs] = train(colours, roots[case], f"{case}-{procs}", *args, procs=procs)
        return runs[case, procs]

    return case_run


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_train_what_one_trains(case_runs, case) -> None:
    one, two = case_runs(case, 1), case_runs(case, 2)
    _assert_same_training(one, two)
    # only rank 0 wrote: one folder each, one ledger entry each
    project = one.parent
    assert sorted(p.name for p in project.iterdir() if p.is_dir()) == [f"{case}-1", f"{case}-2"]
    assert sorted(row["name"] for row in api.runs(project)) == [f"{case}-1", f"{case}-2"]


def test_a_distributed_run_resumes_in_one_process(case_runs, tmp_path: Path) -> None:
    """A copy of the small network's 2-process run (2 epochs) resumed here to a third."""
    two = tmp_path / "runs" / "two"
    shutil.copytree(case_runs("batchnorm-dropout-mixup-flip", 2), two)
    resumed = imgclf_here("train", "--resume", str(two), "--epochs", "3", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert [row["epoch"] for row in history(two)] == ["1", "2", "3"]


def test_a_budget_is_planned_once_for_every_process(colours: Path, tmp_path: Path) -> None:
    """Rank 0's probe and re-plans decide: no rank waits for a plan another never made."""
    run = train(colours, tmp_path, "budget", "--model", "cnn", "--budget", "15s",
                "--batch-size", "16", procs=2)  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["budget"]["planned_epochs"]["train"] >= 1
    assert len(history(run)) == metrics["epochs_run"] >= 1
