"""train.sampler balanced: each class equally likely, seeded per epoch, the same epoch in any
number of processes (pixels and cached features alike), refused with class_weight balanced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from imgclf.cli import app
from imgclf.config_loader import build_config
from imgclf.data.batches.loader import IGNORE_LABEL, BatchLoader
from imgclf.data.batches.sampling import balanced_order
from imgclf.errors import ConfigError
from imgclf.models.features.embeddings import Embeddings
from imgclf.runtime import Runtime
from imgclf.train import distributed
from imgclf.train.loop import fit
from imgclf.train.parts import Stage, TrainData
from imgclf.train.setup import build_parts, configure_torch

runner = CliRunner()
COUNTS = (60, 12, 3)  # a long tail: imbalance ratio 20


def _long_tail() -> TrainData:
    """75 training rows of 3 classes (60, 12, 3) among 80; the top row of image i is i (so
    horizontal flips keep it)."""
    labels = np.repeat(np.arange(3), COUNTS)
    images = np.random.default_rng(0).integers(0, 256, (len(labels) + 5, 4, 4, 1), np.uint8)
    images[:, 0, :, 0] = np.arange(len(images))[:, None]
    labels = np.r_[labels, np.zeros(5, np.int64)]
    train, val = np.arange(75), np.arange(75, 80)
    return TrainData(images, labels, train, val, ["many", "some", "few"])


def _rows(inputs: torch.Tensor) -> list[int]:
    """The image rows of a batch of pixels (pixel (0, 0)) or of features (column 0)."""
    column = inputs[:, 0, 0, 0] if inputs.ndim == 4 else inputs[:, 0]
    return [int(v) for v in column]


def test_each_class_equally_likely_and_an_epoch_as_long() -> None:
    rows = np.arange(100, 175)
    labels = np.repeat(np.arange(3), COUNTS)
    order = balanced_order(rows, labels, np.random.default_rng(0))
    assert len(order) == len(rows) and set(order) <= set(rows)
    many = np.concatenate(
        [balanced_order(rows, labels, np.random.default_rng(s)) for s in range(200)]
    )
    shares = np.bincount(labels[many - 100]) / len(many)
    assert np.allclose(shares, 1 / 3, atol=0.01)
    assert set(many) == set(rows)  # every row of every class is drawn


def test_the_order_is_seeded_by_seed_and_epoch() -> None:
    data = _long_tail()
    make = lambda seed: BatchLoader(  # noqa: E731
        images=data.images, labels=data.labels, indices=data.train, batch_size=8,
        balanced=True, seed=seed,
    )  # fmt: skip
    first, again, other = make(1), make(1), make(2)
    assert np.array_equal(first.shard(3), again.shard(3))
    assert not np.array_equal(first.shard(3), first.shard(4))
    assert not np.array_equal(first.shard(3), other.shard(3))
    shuffled = BatchLoader(images=data.images, labels=data.labels, indices=data.train,
                           batch_size=8, seed=1)  # fmt: skip
    assert sorted(shuffled.shard(3)) == list(data.train)  # the default: each row once


class _Head(torch.nn.Module):
    """The least a stage's module needs for its optimizer: a head, no backbone."""

    has_backbone = False

    def __init__(self) -> None:
        super().__init__()
        self.features, self.head = torch.nn.Identity(), torch.nn.Linear(3, 3)


def _parts(stage: Stage, cfg, monkeypatch, rank: int, world_size: int):
    """The stage's training parts as rank ``rank`` of ``world_size`` processes builds them."""
    monkeypatch.setattr(distributed, "active", lambda: world_size > 1)
    return build_parts(stage.module, stage, cfg, runtime=Runtime(rank=rank, world_size=world_size))


def _features(data: TrainData) -> TrainData:
    """The rows as cached features (N, 3): column 0 holds the row."""
    features = np.random.default_rng(1).normal(size=(len(data.images), 3)).astype(np.float32)
    features[:, 0] = np.arange(len(features))
    return TrainData(features, data.labels, data.train, data.val, data.classes)


@pytest.mark.parametrize("kind", ["pixels", "features", "views"])
@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_share_out_the_one_process_balanced_epoch(monkeypatch, kind, world_size) -> None:
    """Each rank's rows are its share [r::W] of each global batch of the one process's
    epoch: disjoint places, together that epoch (the training loader, as build_parts makes it)."""
    cfg = build_config(seed=4, batch_size=8, sampler="balanced", horizontal_flip=True)
    data, embeddings = _long_tail(), None
    if kind != "pixels":
        data = _features(data)
    if kind == "views":  # stored views: column 0 still says the row, the rest differ
        views = np.repeat(data.images[None, data.train], 2, axis=0)
        views[:, :, 1:] += 1.0
        embeddings = Embeddings(data.images, views, data.train, Path("."), False, 0.0)
    stage = Stage("train", _Head(), data, cfg.train, embeddings=embeddings)
    whole = _parts(stage, cfg, monkeypatch, 0, 1).loader
    ranks = [_parts(stage, cfg, monkeypatch, r, world_size).loader for r in range(world_size)]
    for loader in (whole, *ranks):
        loader.set_epoch(2)
    assert len(whole) == len(ranks[0]) == -(-75 // 8)  # an epoch stays 75 images long
    epoch = []
    for one, *shares in zip(whole, *ranks, strict=True):
        epoch += _rows(one[0])
        for r, (inputs, labels) in enumerate(shares):
            kept = labels != IGNORE_LABEL
            assert torch.equal(inputs[kept], one[0][r::world_size])
            assert torch.equal(labels[kept], one[1][r::world_size])
    assert epoch == list(whole.shard(2)) and len(epoch) == 75
    assert len(set(epoch)) < 75  # drawn with replacement: the few rows come again


def test_balanced_loader_resumes_mid_epoch() -> None:
    data = _long_tail()
    settings = {"images": data.images, "labels": data.labels, "indices": data.train,
                "batch_size": 8, "balanced": True, "seed": 7}  # fmt: skip
    full = BatchLoader(**settings)
    full.set_epoch(1)
    expected = [_rows(images) for images, _ in full][4:]
    cut = BatchLoader(**settings)
    cut.set_epoch(1)
    for _ in zip(range(4), cut, strict=False):
        pass
    resumed = BatchLoader(**settings)
    resumed.load_state_dict(cut.state_dict())
    resumed.set_epoch(1)
    assert [_rows(images) for images, _ in resumed] == expected


def test_a_balanced_run_trains_the_same_twice(blocks) -> None:
    """On a long tail of the blocks (20, 5, 2 training images), with progressive sizes."""
    keep = np.r_[blocks.train[blocks.labels[blocks.train] == 0][:20],
                 blocks.train[blocks.labels[blocks.train] == 1][:5],
                 blocks.train[blocks.labels[blocks.train] == 2][:2]]  # fmt: skip
    data = TrainData(blocks.images, blocks.labels, np.sort(keep), blocks.val, blocks.classes)
    layers = [{"type": "conv", "filters": 4, "padding": "same"}, {"type": "global_avgpool"}]
    cfg = build_config(
        {"model": {"name": "custom", "layers": layers}},
        seed=2, epochs=2, batch_size=8, sampler="balanced",
    )  # fmt: skip
    histories = []
    for _ in range(2):
        configure_torch(cfg)
        from imgclf.models.network import build_model

        model = build_model(cfg.model, data.classes, 1, (8, 8))
        stage = Stage("train", model, data, cfg.train, sizes=[6])  # epoch 1 at 6x6
        state = fit(model, [stage], cfg, [], None, None)
        histories.append([{k: v for k, v in row.items() if k != "time"} for row in state.history])
    assert histories[0] == histories[1]
    assert [row["image_size"] for row in histories[0]] == [6, 8]


def test_balanced_sampler_with_balanced_weights_is_one_clear_error() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config(sampler="balanced", class_weight="balanced")
    [line] = str(raised.value).splitlines()
    assert "over-correct" in line and "keep one" in line
    build_config(sampler="balanced", class_weight={"a": 2.0})  # costs per class: allowed


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--sampler", "weighted"], "'weighted' is not one of 'shuffle', 'balanced'"),
        (["--sampler", "balanced", "--set", "train.class_weight=balanced"], "over-correct"),
    ],
)
def test_bad_sampler_is_one_line_and_exit_2(shapes: Path, args, phrase) -> None:
    result = runner.invoke(app, ["train", str(shapes), *args], prog_name="imgclf")
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert phrase in line


def test_cli_sampler_balanced_trains_and_is_recorded(shapes: Path) -> None:
    args = ["train", str(shapes), "--config", "tiny.yaml", "--quiet", "--sampler", "balanced"]
    result = runner.invoke(app, [*args, "--name", "balanced", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((shapes.parent / "runs" / "balanced" / "config.yaml").read_text())
    assert saved["train"]["sampler"] == "balanced"


def test_a_long_tail_without_a_correction_gets_a_one_line_hint() -> None:
    from imgclf.train.imbalance import imbalance_hint

    data, cfg = _long_tail(), build_config().train
    hint = imbalance_hint(data.labels, data.train, data.classes, cfg)
    assert hint == (
        "imbalanced training classes: ratio 20 (largest many 60, smallest few 3); --sampler "
        "balanced draws every class equally often (README, Imbalanced classes)"
    )
    mild = data.train[data.train >= 50]  # 10, 12 and 3: ratio 4
    assert imbalance_hint(data.labels, mild, data.classes, cfg) is None
    for corrected in ({"sampler": "balanced"}, {"class_weight": "balanced"}):
        assert imbalance_hint(data.labels, data.train, data.classes,
                              build_config(**corrected).train) is None  # fmt: skip


def test_the_hint_is_among_the_runs_notes() -> None:
    from imgclf.train.session import prepare_training

    data = _long_tail()
    layers = [{"type": "flatten"}]
    cfg = build_config({"model": {"name": "custom", "layers": layers}}, val_split=0.0)
    setup = prepare_training((data.images[:75], data.labels[:75]), cfg, progress=False)
    assert any(note.startswith("imbalanced training classes: ratio 20") for note in setup.notes)


def test_the_benchmarks_long_tail_table_is_read_as_it_is_cut(tmp_path: Path) -> None:
    from PIL import Image

    from benchmarks.long_tail import long_tail_table
    from imgclf.data.formats.resolve import read_source

    for split, n in (("train", 8), ("test", 2)):
        for name in ("a", "b", "c"):
            (tmp_path / "set" / split / name).mkdir(parents=True)
            for k in range(n):
                Image.new("RGB", (4, 4)).save(tmp_path / "set" / split / name / f"{k}.jpg")
    table, counts = long_tail_table(tmp_path / "set", 4, 0, tmp_path)
    assert counts == [8, 4, 2]
    source = read_source(str(table))
    assert list(np.bincount(source.labels[source.splits == "train"])) == [8, 4, 2]
    assert list(np.bincount(source.labels[source.splits == "test"])) == [2, 2, 2]
