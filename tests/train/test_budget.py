"""Runs planned to a time budget: the plan, a schedule that never jumps, the run's end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from tests.train.conftest import make_blocks

from imgclf import api
from imgclf.config import Config
from imgclf.train.budget import BudgetSchedule, plan_steps
from imgclf.train.callbacks import Callback
from imgclf.train.parts import Stage
from imgclf.train.probe import StageCost


def _stage(name: str, epochs: int, blocks) -> Stage:
    train = Config().train.model_copy(update={"epochs": epochs})
    return Stage(name, None, blocks, train)


def test_the_last_stage_fills_what_the_earlier_ones_leave(blocks) -> None:
    stages = [_stage("head", 5, blocks), _stage("finetune", 3, blocks)]
    costs = {"head": StageCost(0.01, 10, 0.0), "finetune": StageCost(0.5, 10, 1.0)}
    # 99.5 s left: 165 steps of 0.5 s and the 17 validation passes they reach (16.5 epochs)
    assert plan_steps(costs, stages, 100.0) == {"head": 50, "finetune": 165}
    # earlier stages that would take over half of the time are cut to half of it
    costs["head"] = StageCost(1.0, 10, 0.0)
    assert plan_steps(costs, stages, 60.0) == {"head": 30, "finetune": 50}
    # too little time still trains a step of each
    assert plan_steps(costs, stages, 1.0) == {"head": 1, "finetune": 1}


def test_steps_count_each_validation_pass_and_skip_a_last_sliver_of_an_epoch() -> None:
    cost = StageCost(step=0.1, steps=10, val=0.5)
    assert cost.seconds(25) == pytest.approx(2.5 + 3 * 0.5)  # 3 epochs, the last part-way
    assert cost.seconds(25, done=20) == pytest.approx(0.5 + 0.5)  # from the third epoch's start
    assert cost.steps_within(0.6) == 1  # under one epoch: the steps that fit, and one pass
    assert cost.steps_within(1.0) == 5
    assert cost.steps_within(3.2) == 20  # 21 would fit, but 1 step of an epoch is left out
    assert cost.steps_within(1.25, done=20) == 27  # (from step 20 on: 7 more and a pass)


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


@pytest.mark.slow  # it trains for its budget; slow units start first (tests/conftest.py)
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


class _SlowSteps(Callback):
    """Every training step ``seconds`` slower than the probe saw it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_batch_end(self, batch, logs, state) -> None:
        time.sleep(self.seconds)


@pytest.mark.parametrize("shape", ["cosine", "onecycle"])
def test_a_budget_under_one_epoch_trains_a_whole_schedule(tmp_path, shape: str) -> None:
    """Issue 23: the plan is in optimizer steps, so a budget worth part of an epoch still goes
    through warm-up, peak and anneal; the probe cannot see the slow steps, so the re-planner
    finds them, and the run ends on its plan, not on the deadline."""
    images, labels = make_blocks(n_per_class=60)
    budget = 7.0
    began = time.perf_counter()
    run = api.train((images, labels), model="mlp", budget=budget, batch_size=4, schedule=shape,
                    project=tmp_path, quiet=True, callbacks=[_SlowSteps(0.15)])  # fmt: skip
    wall = time.perf_counter() - began
    plan = run.metrics["budget"]
    per_epoch = plan["costs"]["train"]["steps"]
    assert plan["cut"] is None and run.metrics.get("stop_reason") is None, plan
    assert len(run.history) == 1 and plan["replans"], plan
    assert plan["replans"][-1]["steps"] < per_epoch  # a fraction of an epoch, planned
    peak = Config().train.lr
    assert run.history[-1]["lr"] < peak / 1000  # the schedule ran to its end
    assert abs(wall - budget) < 3.0, (wall, plan)


def test_a_wrong_plan_is_cut_by_the_guard_and_said_loudly(blocks, capsys) -> None:
    from imgclf.cli.output import print_result
    from imgclf.train.budget import BudgetPlan, BudgetPlanner, apply_plan
    from imgclf.train.callbacks import TrainState

    stages = [_stage("train", 10, blocks)]
    apply_plan(stages, {"train": 100}, {"train": 10})
    plan = BudgetPlan(10.0, 1.0, 1.0, {"train": StageCost(0.08, 10, 0.0)}, {"train": 100})
    planner = BudgetPlanner(plan, stages)
    state = TrainState(epochs=10, steps=10, stage_epochs=10, epoch=2, stage_start=1)
    planner.on_epoch_begin(3, state)
    planner.on_batch_end(4, {}, state)
    assert state.stop_reason is None  # within the plan
    state.started -= 9.5  # 8 s planned (plus 1 s grace), 9.5 spent at step 25 of 100
    planner.on_batch_end(4, {}, state)
    assert state.stop_reason.startswith("budget 10.0s: the deadline cut training at step 25 ")
    assert plan.cut["after_steps"] == 25 and plan.cut["wrong_by_percent"] > 50
    assert "the plan was wrong by" in state.stop_reason
    print_result({"stop_reason": state.stop_reason, "budget": plan.to_dict()}, Path("."))
    assert "the run trained less than planned" in capsys.readouterr().err


def test_the_budget_is_read_as_a_duration_and_must_be_positive() -> None:
    assert Config.model_validate({"train": {"budget": "1h30m"}}).train.budget == 5400
    with pytest.raises(ValueError):
        Config.model_validate({"train": {"budget": 0}})


def test_the_measured_speed_re_plans_the_steps_left_all_run_long(blocks) -> None:
    from imgclf.train.budget import CHECKS, BudgetPlan, BudgetPlanner, apply_plan
    from imgclf.train.callbacks import TrainState

    stages = [_stage("train", 10, blocks)]
    apply_plan(stages, {"train": 400}, {"train": 40})
    plan = BudgetPlan(100.0, 0.0, 0.0, {"train": StageCost(0.25, 40, 0.0)}, {"train": 400})
    planner = BudgetPlanner(plan, stages)
    state = TrainState(epochs=10, steps=40, stage_epochs=10)
    planner.on_stage_begin("train", state)
    planner.on_epoch_begin(1, state)
    planner._mark = (time.perf_counter() - 5 * 0.5, 0)  # 5 steps at 0.5 s: twice as slow
    planner.on_batch_end(4, {}, state)
    first = plan.replans[-1]
    assert first["step_seconds"] == pytest.approx(0.375, rel=0.02)  # half the window, half before
    assert first["steps"] == pytest.approx(100 / 0.375, rel=0.05) and stages[0].steps < 400
    state.epoch = 7  # later on, the machine speeds up: the plan grows again
    planner._mark = (time.perf_counter() - 20 * 0.05, 260)
    planner._next_check = 0
    planner.on_batch_end(19, {}, state)
    assert len(plan.replans) == 2 and plan.replans[-1]["steps"] > first["steps"]
    assert state.epochs == stages[0].epochs == -(-stages[0].steps // 40)
    assert planner._next_check == 300 + max(5, stages[0].steps // CHECKS)


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
    assert "budget 6.0s: " in result.output and " train steps (" in result.output
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


@pytest.mark.slow  # it trains for its budget; slow units start first (tests/conftest.py)
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
    from imgclf.train.parts import TrainData
    from imgclf.train.probe import probe_costs
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


def test_a_budgeted_stage_goes_through_every_size_within_part_of_an_epoch(blocks) -> None:
    """Progressive sizes follow the schedule's progress, batch by batch: a plan of 30 steps
    in an epoch of 100 still trains at 16, then 24, then the full size."""
    from imgclf.train.parts import epoch_batches, sizes_of_epoch

    stage = _stage("train", 1, blocks)
    stage.sizes, stage.steps = [16, 24], 30
    stage.schedule = BudgetSchedule("cosine", steps=30)
    size_at = sizes_of_epoch(stage, 0, per_epoch=100)
    assert [size_at(batch) for batch in (0, 9, 10, 19, 20, 29)] == [
        (16, 16), (16, 16), (24, 24), (24, 24), None, None
    ]  # fmt: skip
    assert epoch_batches(stage, 0, 100) == 30
    stage.schedule = None  # an unbudgeted stage: an equal share of its 100 steps each
    stage.steps = None
    sizes = [sizes_of_epoch(stage, 0, 100)(batch) for batch in range(100)]
    assert sizes == [(16, 16)] * 34 + [(24, 24)] * 33 + [None] * 33
    assert epoch_batches(stage, 0, 100) == 100
