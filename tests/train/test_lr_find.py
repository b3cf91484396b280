"""The learning-rate range test: the curve, early stopping, the suggestion, the stages it tests
(recipe, head on embeddings, finetune with its parameter groups), and that it changes nothing."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch

import imgclf.train.lr_find as lr_find_module
from imgclf.config_loader import build_config
from imgclf.errors import ConfigError
from imgclf.models.network import build_model
from imgclf.train.callbacks import Callback
from imgclf.train.lr_find import lr_range_test, steepest, suggestion_window, valley
from imgclf.train.parts import TrainData
from imgclf.train.setup import configure_torch
from imgclf.train.stages import plan_stages

SIZE = 32
TINY = [
    {"type": "conv", "filters": 8, "padding": "same"},
    {"type": "maxpool"},
    {"type": "flatten"},
    {"type": "dense", "units": 16},
]


def _recipe(data: TrainData, **overrides):
    cfg = build_config(
        {"model": {"name": "custom", "layers": TINY}},
        **{"seed": 3, "batch_size": 16, **overrides},
    )
    configure_torch(cfg)
    model = build_model(cfg.model, data.classes, 1, (8, 8))
    stages, _ = plan_stages(model, data, cfg)
    return cfg, model, stages


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _assert_same(before: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[name], after[name]) for name in before)


@pytest.fixture
def optimizers(monkeypatch) -> list[torch.optim.Optimizer]:
    """The optimizers the range test builds, to look at their groups afterwards."""
    built: list[torch.optim.Optimizer] = []
    original = lr_find_module.build_parts

    def spy(model, stage, cfg, *args, **kwargs):  # (kwargs: the runtime)
        parts = original(model, stage, cfg, *args, **kwargs)
        built.append(parts.optimizer)
        return parts

    monkeypatch.setattr(lr_find_module, "build_parts", spy)
    return built


# ---------------------------------------------------------------- the curve on a recipe


def test_recipe_curve_has_every_step_at_exponential_lrs(blocks, optimizers) -> None:
    cfg, model, stages = _recipe(blocks)
    result = lr_range_test(model, stages, cfg, num_steps=30, start_lr=1e-6, end_lr=1e-2)
    assert result.stage == "train" and result.steps == 30  # 6 batches an epoch: cycled 5 times
    assert result.stop_reason == "completed all 30 steps"
    assert result.lrs[0] == pytest.approx(1e-6) and result.lrs[-1] == pytest.approx(1e-2)
    assert np.allclose(np.diff(np.log10(result.lrs)), 4 / 29)
    average, expected = 0.0, []
    for step, raw in enumerate(result.raw_losses, start=1):
        average = 0.98 * average + 0.02 * raw
        expected.append(average / (1 - 0.98**step))
    assert result.losses == pytest.approx(expected, rel=1e-12)
    assert result.losses[0] == result.raw_losses[0]
    assert result.losses[-1] < result.losses[0]  # it learned at the larger lrs
    trained = {id(p) for group in optimizers[0].param_groups for p in group["params"]}
    assert trained == {id(p) for p in model.parameters()}  # a recipe: the whole network


def test_stops_early_when_the_loss_diverges(blocks) -> None:
    cfg, model, stages = _recipe(blocks)
    result = lr_range_test(model, stages, cfg)  # Adam, 1e-7 to 10 over 100 steps
    assert 50 < result.steps < 100 and "passed 4x its best at lr" in result.stop_reason
    assert result.lrs[-1] < 10 and result.lrs == pytest.approx(
        list(np.logspace(-7, 1, 100)[: result.steps])
    )
    last, before = result.losses[-1], result.losses[:-1]
    assert (not math.isfinite(last)) or last > 4 * min(before)
    assert all(loss <= 4 * min(before[: i + 1]) for i, loss in enumerate(before))


def test_suggestions_lie_inside_the_tested_range(blocks) -> None:
    cfg, model, stages = _recipe(blocks)
    result = lr_range_test(model, stages, cfg, num_steps=40)
    for lr in (result.suggestion, result.minimum, result.steepest):
        assert math.isfinite(lr) and result.lrs[0] <= lr <= result.lrs[-1]
        assert lr in result.lrs
    assert result.suggestion < result.minimum  # the valley is on the way down, not at the bottom


def test_weights_and_rng_are_restored_and_runs_repeat(blocks) -> None:
    cfg, model, stages = _recipe(blocks, horizontal_flip=True)
    before = _weights(model)
    model.eval()
    rng = torch.get_rng_state()
    first = lr_range_test(model, stages, cfg, num_steps=12, start_lr=1e-3, end_lr=1.0)
    _assert_same(before, model)
    assert not model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(p.requires_grad for p in model.parameters())
    again = lr_range_test(model, stages, cfg, num_steps=12, start_lr=1e-3, end_lr=1.0)
    assert again.raw_losses == first.raw_losses


# ---------------------------------------------------------------- reading a curve


def test_valley_is_half_way_down_the_longest_descent() -> None:
    flat, descent, rise = [1.0] * 10, list(1.0 - 0.01 * np.arange(1, 41)), [0.7, 0.9, 1.5]
    losses = np.array(flat + descent + rise)
    # the descent with the last flat point: 41 falling values ending at index 49
    assert valley(losses) == 49 - 41 + 41 // 3 + 41 // 6 == 27
    bumpy = losses.copy()
    bumpy[30] += 0.05  # a bump costs the valley one point; it does not cut it in two
    assert valley(bumpy) == 49 - 40 + 40 // 3 + 40 // 6 == 28


def test_steepest_is_the_largest_drop_per_log_lr() -> None:
    lrs = np.logspace(-5, 0, 6)
    losses = np.array([2.0, 1.9, 1.2, 1.0, 0.9, 3.0])
    assert steepest(lrs, losses) == 1  # 1.9 -> 1.2 happens from lrs[1]


def test_the_window_skips_the_settling_start_and_the_diverging_end() -> None:
    lrs, losses = list(range(1, 101)), [1.0] * 98 + [math.nan, math.nan]
    window_lrs, window_losses = suggestion_window(lrs, losses, 100)
    assert window_lrs[0] == 11 and window_lrs[-1] == 93  # [10 : 98 - 5]
    short_lrs, _ = suggestion_window(lrs[:8], losses[:8], 100)  # an early stop: read whole
    assert list(short_lrs) == lrs[:8]


# ---------------------------------------------------------------- validation


def test_bad_arguments_say_what_is_allowed(blocks) -> None:
    cfg, model, stages = _recipe(blocks)
    with pytest.raises(ConfigError, match="num_steps must be at least 5 .* received 2"):
        lr_range_test(model, stages, cfg, num_steps=2)
    with pytest.raises(ConfigError, match="0 < start_lr < end_lr, received start_lr=1.0"):
        lr_range_test(model, stages, cfg, start_lr=1.0, end_lr=1.0)
    with pytest.raises(ConfigError, match="0 < start_lr"):
        lr_range_test(model, stages, cfg, start_lr=0.0)
    with pytest.raises(ConfigError, match="no stage 'finetune'; its stages are: train. The"):
        lr_range_test(model, stages, cfg, stage="finetune")


# ---------------------------------------------------------------- a pretrained backbone


@pytest.fixture(scope="module")
def patterns() -> TrainData:
    """3 classes of 32 px colour stripes (horizontal, vertical, diagonal), 8 per class."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images, labels = [], []
    for label, pattern in enumerate([(yy // 4) % 2, (xx // 4) % 2, ((xx + yy) // 4) % 2]):
        for _ in range(8):
            image = pattern[..., None] * rng.integers(60, 255, 3) + rng.integers(0, 40, (32, 32, 3))
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(label)
    order = np.random.default_rng(1).permutation(len(labels))
    train, val = np.sort(order[:16]), np.sort(order[16:])
    return TrainData(np.stack(images), np.array(labels), train, val, ["h", "v", "d"])


@pytest.fixture(scope="module")
def lite0(patterns, tmp_path_factory):
    """A tiny pretrained Lite0 (offline weights) planned as head then finetune; shared, since
    the range test leaves it as it was (which the tests check)."""
    cfg = build_config(
        {},
        cache_dir=tmp_path_factory.mktemp("lite0-cache"),
        model="efficientnet_lite0",
        seed=5,
        epochs=3,
        batch_size=8,
        lr=0.01,
        unfreeze=2,
        backbone_lr=0.1,
        layer_decay=0.5,
    )
    configure_torch(cfg)
    model = build_model(cfg.model, patterns.classes, 3, (SIZE, SIZE))
    stages, _ = plan_stages(model, patterns, cfg)
    return cfg, model, stages


def test_head_stage_trains_the_head_on_embeddings(lite0, optimizers) -> None:
    cfg, model, stages = lite0
    before = _weights(model)
    result = lr_range_test(model, stages, cfg, num_steps=30)
    assert result.stage == "head" and result.steps == 30  # 2 batches an epoch: cycled
    assert stages[0].embeddings is not None
    trained = [p for group in optimizers[0].param_groups for p in group["params"]]
    assert {id(p) for p in trained} == {id(p) for p in model.classifier.parameters()}
    assert math.isfinite(result.suggestion) and 1e-7 <= result.suggestion <= 10
    _assert_same(before, model)


def test_finetune_stage_fits_the_head_first_and_keeps_group_ratios(lite0, optimizers) -> None:
    cfg, model, stages = lite0
    before = _weights(model)
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    head = lr_range_test(model, stages, cfg, num_steps=5)
    result = lr_range_test(model, stages, cfg, stage="finetune", num_steps=5, end_lr=1e-3)
    assert result.stage == "finetune" and result.steps == 5
    assert result.raw_losses[0] < head.raw_losses[0] - 0.1  # starts from a fitted head
    groups = optimizers[-1].param_groups
    assert [g["name"] for g in groups] == ["head", "block-7", "block-6"]
    assert groups[0]["lr"] == pytest.approx(1e-3)  # the last lr, in the head group
    ratios = [g["lr"] / groups[0]["lr"] for g in groups]
    assert ratios == pytest.approx([1.0, 0.1, 0.05])  # backbone_lr, then layer_decay
    _assert_same(before, model)
    assert [name for name, p in model.named_parameters() if not p.requires_grad] == frozen


def test_an_unknown_stage_names_the_stages(lite0) -> None:
    cfg, model, stages = lite0
    message = "no stage 'haed'; its stages are: head, finetune. Did you mean 'head'?"
    with pytest.raises(ConfigError, match=re.escape(message)):
        lr_range_test(model, stages, cfg, stage="haed")


def test_finetune_stage_starts_from_the_best_head_as_training_does(lite0) -> None:
    """The head stage overshoots at lr 1.0; the range test must start from its best epoch."""
    cfg, model, stages = lite0
    loud = cfg.train.model_copy(update={"lr": 1.0, "epochs": 4})
    head = [dataclasses.replace(stages[0], train=loud)]
    history = []

    class Record(Callback):
        def on_epoch_end(self, epoch, logs, state):
            history.append((logs["val_accuracy"], _weights(model)))

    with lr_find_module._restored(model, cfg.seed):  # the module's model stays as it was
        reference = _weights(model)
        lr_find_module.fit(model, head, cfg, [Record()])
        best = max(range(len(history)), key=lambda i: (history[i][0], -i))
        assert best != len(history) - 1  # the last epoch is not the best: the test can tell
        model.load_state_dict(reference)
        lr_find_module._fit_earlier_stages(model, head, cfg, progress=False)
        for name, value in model.state_dict().items():
            assert torch.equal(value, history[best][1][name]), name
