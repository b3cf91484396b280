"""The loop learns, is deterministic, resumes exactly, and its callbacks stop it cleanly."""

from __future__ import annotations

import copy
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.config_loader import build_config
from imgclf.models.inference import predict_rows
from imgclf.models.network import build_model
from imgclf.train.callbacks import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    StopOnSignal,
    TimeLimit,
)
from imgclf.train.checkpoint import load_resume_state
from imgclf.train.loop import fit
from imgclf.train.parts import Stage
from imgclf.train.setup import configure_torch

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
    _, state = _run(blocks, callbacks=[BestCheckpoint(lambda: saves.append(1))])
    values = [row["val_accuracy"] for row in state.history]
    assert state.best_value == max(values)
    assert state.best_epoch == values.index(max(values)) + 1
    assert len(saves) >= 1


def test_early_stopping_stops_after_patience(blocks) -> None:
    _, state = _run(blocks, callbacks=[EarlyStopping("val_loss", patience=1, min_delta=10.0)])
    assert state.epoch == 2 and "early stopping" in state.stop_reason


class Clock:
    """A fake perf_counter that moves one second per training batch (no sleeps, no timing)."""

    def __init__(self, monkeypatch) -> None:
        self.now = 0.0
        monkeypatch.setattr(time, "perf_counter", lambda: self.now)

    def tick(self) -> Callback:
        clock = self

        class Tick(Callback):
            def on_batch_end(self, batch, logs, state):
                clock.now += 1.0

        return Tick()


def _strip(history):
    return [{k: v for k, v in row.items() if k != "time"} for row in history]


def test_time_limit_spent_inside_the_first_epoch_stops_at_that_batch(blocks, monkeypatch):
    clock = Clock(monkeypatch)
    _, state = _run(blocks, callbacks=[clock.tick(), TimeLimit(3.5)])
    assert state.history == [] and state.stopped_in == (1, 4, 6)  # 4 of 6 batches, 1 s each
    assert state.stop_reason == (
        "time limit 3.5s: reached in epoch 1 at batch 4 of 6; stopped after 4.0s with 0 of 6 "
        "epochs complete"
    )


def test_time_limit_does_not_start_an_epoch_that_will_not_fit(blocks, monkeypatch):
    clock = Clock(monkeypatch)
    _, state = _run(blocks, callbacks=[clock.tick(), TimeLimit(9)])
    assert len(state.history) == 1 and state.stopped_in is None
    assert state.stop_reason.startswith("time limit 9.0s: epoch 2 would end after 12.0s;")


def test_first_epoch_of_a_session_is_predicted_from_a_timing_probe(blocks, monkeypatch, tmp_path):
    _run(blocks, tmp_path, epochs=1)
    saved = load_resume_state(tmp_path / "last.pt")
    clock = Clock(monkeypatch)
    _, state = _run(blocks, tmp_path, [clock.tick(), TimeLimit(4)], resume=saved, epochs=3)
    assert len(state.history) == 1 and state.stopped_in == (2, 3, 6)
    assert "epoch 2 would end after 6.0s (timed on 3 of its 6 batches)" in state.stop_reason


class Interrupt(Callback):
    """Send this process SIGINT after batch ``batch`` of epoch ``epoch`` (as Ctrl-C does)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch, self.epoch_now = epoch, batch, 0

    def on_epoch_begin(self, epoch, state):
        self.epoch_now = epoch

    def on_batch_end(self, batch, logs, state):
        if (self.epoch_now, batch) == (self.epoch, self.batch):
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interrupted_anywhere_then_resumed_equals_an_uninterrupted_run(blocks, tmp_path, seed):
    before = signal.getsignal(signal.SIGINT)  # (SIG_IGN where started in the background)
    rng = np.random.default_rng(seed)
    epoch, batch = int(rng.integers(1, 7)), int(rng.integers(0, 6))  # 6 epochs of 6 batches
    augment = {"horizontal_flip": True, "zoom_range": 0.2}  # per-batch randomness, and dropout
    full_model, full = _run(blocks, tmp_path / "full", [StopOnSignal()], **augment)
    stop = StopOnSignal()
    _, cut = _run(blocks, tmp_path / "cut", [Interrupt(epoch, batch), stop], **augment)
    assert stop.received == "SIGINT" and cut.stop_reason == "interrupted (SIGINT)"
    assert len(cut.history) == epoch - (batch < 5)  # the last batch ends the epoch
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    saved = load_resume_state(tmp_path / "cut" / "last.pt")
    resumed_model, resumed = _run(blocks, tmp_path / "cut", resume=saved, **augment)
    assert _strip(resumed.history) == _strip(full.history)
    pairs = zip(full_model.state_dict().values(), resumed_model.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_a_second_signal_stops_at_once(blocks) -> None:
    class Twice(Callback):
        def on_batch_end(self, batch, logs, state):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        _run(blocks, callbacks=[StopOnSignal(), Twice()])
    assert signal.getsignal(signal.SIGINT) is before


def test_added_epochs_continue_a_constant_schedule_exactly(blocks, tmp_path: Path) -> None:
    full_model, full = _run(blocks, tmp_path / "full", epochs=5)
    _run(blocks, tmp_path / "short", epochs=3)
    saved = load_resume_state(tmp_path / "short" / "last.pt")
    model, extended = _run(blocks, tmp_path / "short", resume=saved, epochs=5)
    assert _strip(extended.history) == _strip(full.history) and extended.epochs == 5
    for a, b in zip(full_model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_added_epochs_get_a_fresh_cycle_of_a_decaying_schedule(blocks, tmp_path: Path) -> None:
    _, short = _run(blocks, tmp_path, epochs=3, schedule="cosine")
    saved = load_resume_state(tmp_path / "last.pt")
    _, extended = _run(blocks, tmp_path, resume=saved, epochs=5, schedule="cosine")
    lrs = [row["lr"] for row in extended.history]
    assert _strip(extended.history[:3]) == _strip(short.history)
    assert lrs[2] < 1e-4 < lrs[3] and lrs[4] < lrs[3]  # the schedule restarts, then decays


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
        {"translate": 2, "tta": "flip"},
    ],
)
def test_every_optimizer_schedule_and_regulariser_trains(blocks, overrides) -> None:
    _, state = _run(blocks, epochs=2, **overrides)
    assert len(state.history) == 2 and np.isfinite(state.history[-1]["loss"])


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_fused_optimizers_take_torchs_one_tensor_step(name: str) -> None:
    """Adam, AdamW and SGD train with torch's fused kernel on the CPU (every tensor in one
    call), and take the steps torch's one-tensor-at-a-time loop takes; RMSprop has none."""
    from imgclf.config import TrainConfig
    from imgclf.train.optim import OPTIMIZERS, build_optimizer

    cfg = TrainConfig(optimizer=name, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3)
    torch.manual_seed(0)
    fused_net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    plain_net = copy.deepcopy(fused_net)
    fused = build_optimizer([{"params": list(fused_net.parameters()), "lr": cfg.lr}], cfg)
    kind, takes = OPTIMIZERS[name]
    extra = {k: getattr(cfg, k) for k in takes}
    plain = kind(plain_net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)
    assert bool(fused.defaults.get("fused")) == (name != "rmsprop")
    for step in range(3):
        x = torch.randn(8, 6, generator=torch.Generator().manual_seed(step))
        for net, optimizer in ((fused_net, fused), (plain_net, plain)):
            optimizer.zero_grad()
            net(x).square().mean().backward()
            optimizer.step()
    for a, b in zip(fused_net.parameters(), plain_net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


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


@pytest.mark.parametrize(
    ("augment", "prefetch"),
    [({}, False), ({"horizontal_flip": True, "translate": 2}, False),
     ({"zoom_range": 0.1}, True), ({"mixup": 0.2}, True)],
)  # fmt: skip
def test_only_dear_batches_of_large_images_are_built_in_a_thread(augment, prefetch) -> None:
    from imgclf.data.batches.augment import build_augment, build_batch_mix
    from imgclf.data.batches.loader import worth_a_thread

    cfg = build_config({}, **augment)
    dear = build_augment(cfg.augment), build_batch_mix(cfg.augment, 3)
    assert worth_a_thread(*dear, (128, 128)) is prefetch
    assert worth_a_thread(*dear, (32, 32)) is False  # small images: inline whatever the work


def test_flip_tta_scores_validation_on_both_views(blocks) -> None:
    from imgclf.train.loop import validate

    cfg, model = _setup(blocks, tta="flip")
    flipped = validate(model, blocks, cfg)
    plain = validate(
        model,
        blocks,
        cfg.model_copy(update={"train": cfg.train.model_copy(update={"tta": "none"})}),
    )
    probs = predict_rows(model, blocks.images, blocks.val, tta="flip")
    assert flipped["val_accuracy"] == float((probs.argmax(1) == blocks.labels[blocks.val]).mean())
    assert flipped["val_loss"] != plain["val_loss"]
