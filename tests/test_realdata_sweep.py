"""Real photos, CI only: R4's sweep in small, on imagenette2-224-subset with the frozen
EfficientNet-Lite0 at 128 px, the tutorial's settings enqueued as trial 0, a small budget.
The 30-minute sweep over all of R4's axes is benchmarks/r4_sweep.py (BENCHMARKS.md)."""

from __future__ import annotations

import json

import pytest

from imgclf import api

pytestmark = pytest.mark.realdata

TUTORIAL = {  # examples/r4_tutorial.yaml at 128 px, without augmented views (cheaper)
    "data": {"image_size": 128, "val_split": 0.2},
    "augment": {"shear_range": 0.2, "zoom_range": 0.2, "horizontal_flip": True},
    "model": {"name": "efficientnet_lite0", "mode": "feature_extract",
              "head": {"pooling": "avg", "dense": []}},
    "train": {"optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 10},
}  # fmt: skip


def test_r4_sweep_in_small_records_trials_and_beats_chance(shared_datasets, tmp_path):
    project = tmp_path / "runs"
    space = {"model.head.pooling": ["avg", "max"], "train.lr": {"log_float": [1e-4, 1e-2]},
             "train.optimizer": ["adam", "rmsprop", "sgd"]}  # fmt: skip
    result = api.sweep(
        shared_datasets / "imagenette2-224-subset", space, trials=3, budget="4m", study="r4",
        enqueue=TUTORIAL, config=TUTORIAL, project=project, quiet=True,
    )  # fmt: skip
    assert result.trials[0]["enqueued"]
    assert result.trials[0]["params"] == {"model.head.pooling": "avg", "train.lr": 0.001,
                                          "train.optimizer": "adam"}  # fmt: skip
    complete = [t for t in result.trials if t["state"] == "complete"]
    assert len(complete) >= 2, result.trials
    assert result.best["value"] > 0.8  # 10 classes: chance is 0.1
    events = [json.loads(line) for line in (project / "ledger.jsonl").read_text().splitlines()]
    started = [e for e in events if e["event"] == "started"]
    assert {e["study"] for e in started} == {"r4"}
    assert [e["trial"] for e in started] == [t["trial"] for t in result.trials]
    report = api.sweep_report("r4", project=project)
    assert report.files["page"].is_file() and (project / "sweeps" / "r4" / "history.png").is_file()
