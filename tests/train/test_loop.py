"""The loop learns, is deterministic, resumes exactly, and its callbacks stop it cleanly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.config_loader import build_config
from imgclf.models.inference import predict_rows
from imgclf.models.network import build_model
from imgclf.train.callbacks import BestCheckpoint, Callback, EarlyStopping, TimeBudget
from imgclf.train.checkpoint import load_resume_state
from imgclf.train.loop import Stage, configure_torch, fit

TINY = [
    {"type": "conv", "filters": 8, "padding": "same"},
    {"type": "maxpool"},
    {"type": "dropout", "rate": 0.1},
    {"type": "flatten"},
    {"type": "dense", "units": 16},
]


def _setup(data, **overrides):
    base = {"model": {"name": "custom", "layers": TINY}}
    settings = {"seed": 3, "epochs": 6, "batch_size": 16, "lr": 3e-3, **overrides}
    cfg = build_config(base, **settings)
    configure_torch(cfg)  # as run_training does: the seed decides the initial weights too
    model = build_model(cfg.model, data.classes, 1, (8, 8))
    return cfg, model


def _run(data, tmp_path=None, callbacks=(), resume=None, **overrides):
    cfg, model = _setup(data, **overrides)
    stages = [Stage("train", model, data, cfg.train)]
    state = fit(model, stages, cfg, list(callbacks), tmp_path, resume)
    return model, state


def test_it_learns_the_blocks(blocks) -> None:
    model, state = _run(blocks)
    assert state.history[-1]["val_accuracy"] >= 0.9
    assert state.history[-1]["loss"] < state.history[0]["loss"]


def test_same_seed_same_metrics_to_the_last_digit(blocks) -> None:
    _, first = _run(blocks)
    _, second = _run(blocks)
    strip = [{k: v for k, v in row.items() if k != "time"} for row in first.history]
    assert strip == [{k: v for k, v in row.items() if k != "time"} for row in second.history]


def test_resume_equals_an_uninterrupted_run(blocks, tmp_path: Path) -> None:
    class Kill(Callback):
        def on_epoch_end(self, epoch, logs, state):
            if epoch == 3:
                state.stop_reason = "killed"

    full_model, full = _run(blocks, tmp_path / "a")
    _run(blocks, tmp_path / "b", callbacks=[Kill()])
    saved = load_resume_state(tmp_path / "b" / "last.pt")
    assert saved["state"]["epoch"] == 3
    resumed_model, resumed = _run(blocks, tmp_path / "b", resume=saved)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in full.history]
    for a, b in zip(
        full_model.state_dict().values(), resumed_model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_best_checkpoint_tracks_the_best_epoch(blocks) -> None:
    saves = []
    _, state = _run(blocks, callbacks=[BestCheckpoint("val_accuracy", lambda: saves.append(1))])
    values = [row["val_accuracy"] for row in state.history]
    assert state.best_value == max(values)
    assert state.best_epoch == values.index(max(values)) + 1
    assert len(saves) >= 1


def test_early_stopping_stops_after_patience(blocks) -> None:
    _, state = _run(blocks, callbacks=[EarlyStopping("val_loss", patience=1, min_delta=10.0)])
    assert state.epoch == 2 and "early stopping" in state.stop_reason


def test_time_budget_stops_at_an_epoch_boundary(blocks) -> None:
    budget = TimeBudget(1e-9)
    _, state = _run(blocks, callbacks=[budget])
    assert state.epoch == 1 and len(state.history) == 1
    assert state.stop_reason.startswith("time limit: 1 of 6 epochs fitted")


def test_class_weights_change_the_loss(blocks) -> None:
    _, plain = _run(blocks, epochs=1)
    _, weighted = _run(blocks, epochs=1, class_weight={"bottom": 5.0})
    assert plain.history[0]["loss"] != weighted.history[0]["loss"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"optimizer": "sgd", "nesterov": True, "schedule": "cosine", "warmup_epochs": 1},
        {"optimizer": "rmsprop", "schedule": "onecycle"},
        {"optimizer": "adamw", "weight_decay": 0.01, "label_smoothing": 0.1, "grad_clip": 1.0},
        {"class_weight": "balanced", "horizontal_flip": True, "zoom_range": 0.1},
        {"mixup": 0.2, "cutmix": 1.0},
    ],
)
def test_every_optimizer_schedule_and_regulariser_trains(blocks, overrides) -> None:
    _, state = _run(blocks, epochs=2, **overrides)
    assert len(state.history) == 2 and np.isfinite(state.history[-1]["loss"])


def test_predict_rows_matches_the_model(blocks) -> None:
    model, _ = _run(blocks, epochs=1)
    probs = predict_rows(model, blocks.images, blocks.val, batch_size=7)
    model.eval()
    with torch.inference_mode():
        direct = torch.softmax(
            model(torch.from_numpy(blocks.images[blocks.val]).permute(0, 3, 1, 2)), 1
        )
    np.testing.assert_allclose(probs, direct.numpy(), atol=1e-6)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
