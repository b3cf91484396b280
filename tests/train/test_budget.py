"""Runs planned to a time budget: the plan, a schedule that never jumps, the run's end."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from tests.train.conftest import make_blocks

from imgclf import api
from imgclf.config import Config
from imgclf.train.budget import DRIFT, BudgetSchedule, StageCost, plan_epochs
from imgclf.train.parts import Stage


def _stage(name: str, epochs: int, blocks) -> Stage:
    train = Config().train.model_copy(update={"epochs": epochs})
    return Stage(name, None, blocks, train)


def test_the_last_stage_fills_what_the_earlier_ones_leave(blocks) -> None:
    stages = [_stage("head", 5, blocks), _stage("finetune", 3, blocks)]
    costs = {"head": StageCost(0.01, 10, 0.0), "finetune": StageCost(0.5, 10, 1.0)}
    assert plan_epochs(costs, stages, 100.0) == {"head": 5, "finetune": 16}  # (100 - .5) / 6
    # earlier stages that would take over half of the time are cut to half of it
    costs["head"] = StageCost(1.0, 10, 0.0)
    assert plan_epochs(costs, stages, 60.0) == {"head": 3, "finetune": 5}
    # too little time still trains one epoch (the deadline then stops inside it)
    assert plan_epochs(costs, stages, 1.0) == {"head": 1, "finetune": 1}


@pytest.mark.parametrize("shape", ["constant", "cosine", "onecycle"])
def test_re_planning_moves_the_schedule_on_without_a_jump(shape: str) -> None:
    schedule = BudgetSchedule(shape, steps=100, warmup=0.1)
    before = [schedule(step) for step in range(60)]
    schedule.replan(60, steps_left=200)  # slower than planned: many more steps left
    after = [schedule(step) for step in range(60, 260)]
    assert abs(after[0] - before[-1]) < 0.05
    assert max(abs(b - a) for a, b in zip(after, after[1:], strict=False)) < 0.05
    assert schedule.progress(260) == pytest.approx(1.0)
    if shape != "constant":
        assert after[-1] < 0.01  # the new end is the schedule's end
    assert before[0] < before[15]  # warm-up from (near) zero


def test_the_schedule_s_anchors_live_in_the_scheduler_state() -> None:
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    schedule = BudgetSchedule("cosine", steps=10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    schedule.replan(4, steps_left=40)
    saved = scheduler.state_dict()
    fresh = BudgetSchedule("cosine", steps=10)
    torch.optim.lr_scheduler.LambdaLR(optimizer, fresh).load_state_dict(saved)
    assert fresh.progress(20) == pytest.approx(schedule.progress(20))


def test_a_budgeted_run_ends_within_seconds_of_its_budget(tmp_path) -> None:
    images, labels = make_blocks(n_per_class=60)
    budget = 12.0
    began = time.perf_counter()
    run = api.train(
        (images, labels),
        model="mlp",
        budget=f"{budget:g}s",
        batch_size=8,
        schedule="cosine",
        project=tmp_path,
        quiet=True,
    )
    wall = time.perf_counter() - began
    plan = run.metrics["budget"]
    assert plan["budget"] == budget
    assert run.metrics["epochs_run"] >= 2  # the budget was filled, not a default epoch count
    assert abs(wall - budget) < 4.0, (wall, plan)
    ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    finished = ledger[-1]
    assert finished["epochs_run"] == run.metrics["epochs_run"]
    assert finished["epochs_planned"] >= 1
    lrs = [row["lr"] for row in run.history]
    assert lrs == sorted(lrs, reverse=True)  # cosine over the progress, through the re-plans


def test_a_budget_of_one_epoch_still_trains_one_and_the_limit_cuts_it(tmp_path) -> None:
    images, labels = make_blocks(n_per_class=60)
    run = api.train(
        (images, labels), model="mlp", budget=0.5, project=tmp_path, quiet=True, epochs=50
    )
    assert run.metrics["budget"]["planned_epochs"] == {"train": 1}
    assert run.metrics["epochs_run"] <= 1


def test_the_budget_is_read_as_a_duration_and_must_be_positive() -> None:
    assert Config.model_validate({"train": {"budget": "1h30m"}}).train.budget == 5400
    with pytest.raises(ValueError):
        Config.model_validate({"train": {"budget": 0}})


def test_only_a_drift_over_ten_percent_re_plans(blocks) -> None:
    from imgclf.train.budget import BudgetPlan, BudgetReplanner, apply_plan
    from imgclf.train.callbacks import TrainState

    stages = [_stage("train", 10, blocks)]
    apply_plan(stages, {"train": 10}, Config())
    plan = BudgetPlan(100.0, 0.0, 0.0, {"train": StageCost(0.9, 10, 1.0)}, {"train": 10})
    replanner = BudgetReplanner(plan, stages)
    state = TrainState(epochs=10, steps=10, stage_epochs=10)
    state.started -= 9.5  # 9.5 s of the 100 spent
    state.history.append({"time": 10.0 * (1 + DRIFT * 0.9)})
    replanner.on_epoch_end(1, state.history[-1], state)
    assert plan.replans == [] and stages[0].epochs == 10
    state.history.append({"time": 5.0})  # twice as fast as planned: mean 7.95 s
    replanner.on_epoch_end(2, state.history[-1], state)
    assert [r["epoch"] for r in plan.replans] == [2]
    assert stages[0].epochs == state.epochs == 2 + int((100 - 9.5) // 7.95)


def test_a_budgeted_run_resumed_finishes_the_epochs_it_planned(tmp_path) -> None:
    import os
    import signal

    from imgclf.errors import TrainingInterrupted
    from imgclf.train.callbacks import Callback

    class CtrlCAtEpoch2(Callback):
        def on_epoch_end(self, epoch, logs, state) -> None:
            if epoch == 2:
                os.kill(os.getpid(), signal.SIGINT)

    data = make_blocks(n_per_class=60)
    settings = {"model": "mlp", "budget": 10, "batch_size": 8, "schedule": "cosine"}
    with pytest.raises(TrainingInterrupted):
        api.train(data, project=tmp_path, name="b", quiet=True, callbacks=[CtrlCAtEpoch2()],
                  **settings)  # fmt: skip
    run = api.train(data, resume=tmp_path / "b")
    assert run.metrics["epochs_run"] == run.metrics["epochs_planned"] > 2
    lrs = [row["lr"] for row in run.history]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.05 * lrs[0]  # one curve, to its end


def test_imgclf_train_budget_plans_and_a_bad_budget_is_one_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from imgclf.cli import app

    images, labels = make_blocks(n_per_class=20)
    data = tmp_path / "blocks.npz"
    np.savez(data, x=images, y=labels)
    project = tmp_path / "runs"
    runner = CliRunner()
    common = ["train", str(data), "--model", "mlp", "--project", str(project), "--name", "b"]
    bad = runner.invoke(app, [*common, "--budget", "soon"])
    assert bad.exit_code == 2 and "a duration like 90s" in bad.output
    assert "Traceback" not in bad.output and not project.exists()
    result = runner.invoke(app, [*common, "--budget", "6s"])
    assert result.exit_code == 0, result.output
    assert "budget 6.0s: " in result.output and " epochs planned" in result.output
    metrics = json.loads((project / "b" / "metrics.json").read_text())
    assert metrics["budget"]["planned_epochs"]["train"] >= 1


def test_the_final_reserve_counts_the_test_rows_without_a_validation_split(blocks) -> None:
    from imgclf.train.budget import REPORT_SECONDS, REPORT_SECONDS_PER_CLASS, final_reserve

    stages = [_stage("train", 3, blocks)]
    costs = {"train": StageCost(0.1, 10, 0.0, row=0.002)}
    report = REPORT_SECONDS + REPORT_SECONDS_PER_CLASS * len(blocks.classes)
    assert final_reserve(costs, stages, 1000) == pytest.approx(2.0 + report)


def _stripes(n_per_class: int = 8, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Colour stripes, horizontal, vertical or diagonal by class (Lite0 reads 3 channels)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    images, labels = [], []
    for label, pattern in enumerate([(yy // 4) % 2, (xx // 4) % 2, ((xx + yy) // 4) % 2]):
        for _ in range(n_per_class):
            image = pattern[..., None] * rng.integers(60, 255, 3) + rng.integers(
                0, 40, (size,) * 2 + (3,)
            )
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels)


STAGE_KINDS = {  # which stages a budgeted Lite0 run trains, by what they read
    "embeddings": ({"mode": "feature_extract"}, ["head"]),
    "activations": ({}, ["head", "finetune"]),
    "pixels": ({"embedding_cache": False, "activation_cache": False}, ["head", "finetune"]),
    "progressive": ({"progressive_sizes": [16, 24]}, ["head", "finetune"]),
}


def test_a_budgeted_staged_finetune_plans_and_trains_both_cached_stages(tmp_path) -> None:
    """End to end, the default Lite0 run: a head on cached embeddings, then the top on cached
    activations (issue 23: the probe did not find the head's module in its copy and crashed)."""
    settings, names = dict(STAGE_KINDS["activations"][0]), STAGE_KINDS["activations"][1]
    settings.update(budget=20, batch_size=8, finetune_epochs=2, project=tmp_path, name="b")
    run = api.train(_stripes(), model="efficientnet_lite0", quiet=True, **settings)
    plan = run.metrics["budget"]
    assert list(plan["planned_epochs"]) == names and min(plan["planned_epochs"].values()) >= 1
    assert all(plan["costs"][name]["step"] > 0 for name in names)
    assert {row.get("stage", names[0]) for row in run.history} == set(names)
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("kind", list(STAGE_KINDS))
def test_the_probe_times_every_kind_of_stage_on_copies(kind: str) -> None:
    """Embeddings, cached activations, pixels and progressive sizes: each stage is timed on a
    copy of its module, and the model is left as it was."""
    import torch

    from imgclf.config_loader import build_config
    from imgclf.models.network import build_model
    from imgclf.runtime import Runtime
    from imgclf.train.activations import FromActivations
    from imgclf.train.budget import probe_costs
    from imgclf.train.parts import TrainData
    from imgclf.train.setup import configure_torch
    from imgclf.train.stages import plan_stages

    images, labels = _stripes()
    rows = np.arange(len(labels))
    data = TrainData(images, labels, rows[rows % 4 != 0], rows[rows % 4 == 0], ["h", "v", "d"])
    settings, names = STAGE_KINDS[kind]
    cfg = build_config({}, model="efficientnet_lite0", batch_size=8, seed=5, **settings)
    configure_torch(cfg)
    model = build_model(cfg.model, data.classes, 3, (32, 32))
    stages, _ = plan_stages(model, data, cfg)
    if kind == "activations":
        assert stages[0].embeddings is not None and isinstance(stages[1].module, FromActivations)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    costs = probe_costs(model, stages, cfg, Runtime.create("cpu", "32", cfg.train.threads))
    assert list(costs) == names and all(c.step > 0 for c in costs.values())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
