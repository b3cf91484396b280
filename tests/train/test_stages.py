"""Embed once and the staged fine-tune on a tiny pretrained Lite0 (offline weights, 32 px)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.config_loader import build_config
from imgclf.errors import ConfigError
from imgclf.models.network import build_model
from imgclf.train.callbacks import BestCheckpoint, Callback, EarlyStopping
from imgclf.train.checkpoint import BEST_WEIGHTS, load_resume_state, save_weights
from imgclf.train.embeddings import EmbeddingLoader, embed_images
from imgclf.train.loop import fit
from imgclf.train.parts import TrainData, epoch_size, sizes_of_epoch
from imgclf.train.setup import configure_torch
from imgclf.train.stages import plan_stages

SIZE = 32


@pytest.fixture(scope="module")
def stripes() -> TrainData:
    """3 classes of 32 px colour images: stripes that are horizontal, vertical or diagonal."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    patterns = [(yy // 4) % 2, (xx // 4) % 2, ((xx + yy) // 4) % 2]
    images, labels = [], []
    for label, pattern in enumerate(patterns):
        for _ in range(24):
            colour = rng.integers(60, 255, 3)
            image = pattern[..., None] * colour + rng.integers(0, 40, (SIZE, SIZE, 3))
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(label)
    order = np.random.default_rng(1).permutation(len(labels))
    return TrainData(
        images=np.stack(images),
        labels=np.array(labels),
        train=np.sort(order[:54]),
        val=np.sort(order[54:]),
        classes=["horizontal", "vertical", "diagonal"],
    )


def _setup(data: TrainData, **overrides):
    settings = {
        "model": "efficientnet_lite0",
        "seed": 5,
        "epochs": 3,
        "batch_size": 16,
        "lr": 3e-3,
        "finetune_epochs": 2,
        **overrides,
    }
    cfg = build_config({}, **settings)
    configure_torch(cfg)
    model = build_model(cfg.model, data.classes, 3, (SIZE, SIZE))
    return cfg, model


def _train(data, tmp_path=None, callbacks=(), resume=None, **overrides):
    cfg, model = _setup(data, **overrides)
    stages, notes = plan_stages(model, data, cfg)
    if tmp_path is not None:
        save = BestCheckpoint(lambda: save_weights(model, tmp_path / BEST_WEIGHTS))
        callbacks = [save, *callbacks]
    state = fit(model, stages, cfg, list(callbacks), tmp_path, resume)
    return model, state, stages, notes


def _without_time(history):
    return [{k: v for k, v in row.items() if k != "time"} for row in history]


def test_feature_extract_trains_the_head_on_cached_embeddings(stripes) -> None:
    model, state, stages, notes = _train(stripes, mode="feature_extract")
    assert [s.name for s in stages] == ["head"]
    assert stages[0].embeddings is not None and stages[0].data.images.shape == (72, 1280)
    assert any(note.startswith("embeddings of 72 images computed") for note in notes)
    assert len(state.history) == 3 and "stage" not in state.history[0]


def test_embed_once_equals_the_backbone_every_epoch(stripes) -> None:
    """Without augmentation the two ways see the same features in the same order."""
    _, cached, _, _ = _train(stripes, mode="feature_extract", epochs=4)
    _, slow, stages, _ = _train(stripes, mode="feature_extract", epochs=4, embedding_cache=False)
    assert stages[0].embeddings is None and stages[0].data.images.ndim == 4
    for fast_row, slow_row in zip(cached.history, slow.history, strict=True):
        assert fast_row["val_loss"] == pytest.approx(slow_row["val_loss"], abs=1e-4)
        assert fast_row["loss"] == pytest.approx(slow_row["loss"], abs=1e-4)


def test_embeddings_are_reused_and_keyed_by_the_weights(stripes, tmp_path: Path) -> None:
    _, model = _setup(stripes)
    first = embed_images(model, stripes.images, train=stripes.train, cache_dir=tmp_path)
    again = embed_images(model, stripes.images, train=stripes.train, cache_dir=tmp_path)
    assert not first.reused and again.reused and first.path == again.path
    assert np.array_equal(first.clean, again.clean)
    with torch.no_grad():
        next(model.features.parameters()).add_(0.01)
    changed = embed_images(model, stripes.images, train=stripes.train, cache_dir=tmp_path)
    assert not changed.reused and changed.path != first.path
    assert not np.allclose(changed.clean, first.clean)


def test_augmented_views_are_stored_and_drawn_per_epoch(stripes, tmp_path: Path) -> None:
    cfg, model = _setup(stripes, horizontal_flip=True, zoom_range=0.2, augment_views=3)
    emb = embed_images(
        model, stripes.images, train=stripes.train, views=3, augment=cfg.augment, cache_dir=tmp_path
    )
    assert emb.views.shape == (3, len(stripes.train), 1280)
    assert not np.allclose(emb.views[0], emb.clean[stripes.train])
    loader = EmbeddingLoader(
        embeddings=emb, labels=stripes.labels, indices=stripes.train, batch_size=64, seed=1
    )
    epoch0 = next(iter(loader))[0]
    assert torch.equal(epoch0, next(iter(loader))[0])  # same epoch, same draw
    loader.set_epoch(1)
    rows = loader.shard(1)
    features = next(iter(loader))[0].numpy()
    plain = np.isclose(features, emb.clean[rows]).all(axis=1)
    assert 0 < plain.sum() < len(rows)  # some rows plain, the others one of the views


def test_augmentation_without_views_is_reported(stripes) -> None:
    _, _, _, notes = _train(stripes, mode="feature_extract", epochs=1, horizontal_flip=True)
    assert any("augment_views" in note for note in notes)


def test_staged_finetune_trains_head_then_unfrozen_blocks(stripes, tmp_path: Path) -> None:
    _, reference = _setup(stripes)
    model, state, stages, _ = _train(stripes, tmp_path)
    assert [s.name for s in stages] == ["head", "finetune"]
    assert [row["stage"] for row in state.history] == ["head"] * 3 + ["finetune"] * 2
    assert stages[1].train.schedule == "onecycle" and stages[1].train.epochs == 2
    before, after = reference.state_dict(), model.state_dict()
    first_block = [k for k in after if k.startswith("features.model.blocks.0.")]
    assert first_block and all(torch.equal(after[k], before[k]) for k in first_block)
    conv_head = [k for k in after if k.startswith("features.model.conv_head.")]
    assert any(not torch.equal(after[k], before[k]) for k in conv_head)


def test_early_stopping_ends_the_head_stage_not_the_run(stripes, tmp_path: Path) -> None:
    stop = EarlyStopping("val_loss", patience=1, min_delta=100.0)
    _, state, _, _ = _train(stripes, tmp_path, callbacks=[stop], epochs=5)
    assert [row["stage"] for row in state.history] == ["head"] * 2 + ["finetune"] * 2
    assert state.epochs == 4 and state.stop_reason.startswith("early stopping")


def test_resume_in_the_finetune_stage_equals_an_uninterrupted_run(stripes, tmp_path) -> None:
    class Kill(Callback):
        def on_epoch_end(self, epoch, logs, state):
            if epoch == 4:
                state.stop_reason = "killed"

    full_model, full, _, _ = _train(stripes, tmp_path / "a")
    _train(stripes, tmp_path / "b", callbacks=[Kill()])
    saved = load_resume_state(tmp_path / "b" / "last.pt")
    assert (saved["stage"], saved["stage_epochs"], saved["stage_finished"]) == (1, 1, False)
    model, resumed, _, _ = _train(stripes, tmp_path / "b", resume=saved)
    assert _without_time(resumed.history) == _without_time(full.history)
    for a, b in zip(full_model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_progressive_sizes_split_the_pixel_stage(stripes) -> None:
    _, state, stages, _ = _train(stripes, epochs=1, finetune_epochs=3, progressive_sizes=[16, 24])
    assert [epoch_size(stages[1], i) for i in range(3)] == [(16, 16), (24, 24), None]
    assert [row.get("image_size") for row in state.history] == [None, 16, 24, 32]


def test_progressive_sizes_need_a_resizable_network(stripes) -> None:
    with pytest.raises(ConfigError, match="smaller than the image size 32"):
        _train(stripes, progressive_sizes=[32])
    cfg = build_config({}, model="cnn", progressive_sizes=[16])
    model = build_model(cfg.model, stripes.classes, 3, (SIZE, SIZE))
    with pytest.raises(ConfigError, match="accepts any input size.*end in global pooling"):
        plan_stages(model, stripes, cfg)
    cfg = build_config({}, model="fast_cifar", progressive_sizes=[8])
    model = build_model(cfg.model, stripes.classes, 3, (SIZE, SIZE))
    with pytest.raises(ConfigError, match="progressive size 8 is too small for this network"):
        plan_stages(model, stripes, cfg)


def test_fractions_of_the_image_size_are_resolved_and_those_the_network_cannot_take_skipped(
    stripes,
) -> None:
    assert build_config({}, progressive_sizes="0.5,0.75").train.progressive_sizes == [0.5, 0.75]
    cfg = build_config({}, model="fast_cifar", progressive_sizes=[0.25, 0.5, 0.75])
    model = build_model(cfg.model, stripes.classes, 3, (SIZE, SIZE))
    stages, notes = plan_stages(model, stripes, cfg)
    assert stages[0].sizes == [24]  # its stride-2 stem and three pools need more than 16 px
    assert "progressive sizes [8, 16] px ([0.25, 0.5, 0.75] of 32 px) skipped" in notes[0]
    cfg = build_config({}, model="cnn", progressive_sizes=[0.5])
    model = build_model(cfg.model, stripes.classes, 3, (SIZE, SIZE))
    stages, notes = plan_stages(model, stripes, cfg)
    assert stages[0].sizes == [] and "the network takes one input size" in notes[0]


def test_layers_ending_in_global_pooling_go_through_every_size_in_one_epoch(stripes) -> None:
    """One epoch: each size an equal share of its steps (4 batches of 16)."""
    layers = [{"type": "conv", "filters": 8, "padding": "same"}, {"type": "global_maxpool"}]
    model = {"name": "custom", "layers": layers}
    _, state, stages, _ = _train(stripes, model=model, epochs=1, progressive_sizes=[16, 24])
    shares = sizes_of_epoch(stages[0], 0, 4)
    assert [shares(batch) for batch in range(4)] == [(16, 16), (16, 16), (24, 24), None]
    assert len(state.history) == 1 and state.history[0]["image_size"] == 32


@pytest.mark.parametrize("bad", [[16, 8], [4], "x", [0.5, 16], [0.5, 1.0], "0.75,0.5"])
def test_progressive_sizes_are_validated(bad) -> None:
    with pytest.raises(ConfigError, match="progressive_sizes"):
        build_config({}, progressive_sizes=bad)


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b""),
        lambda path: path.write_bytes(path.read_bytes()[:200]),
        lambda path: np.save(path, np.zeros((3, 7), np.float32)),
    ],
    ids=["empty", "truncated", "wrong-shape"],
)
def test_a_damaged_embedding_file_is_computed_again(stripes, tmp_path: Path, damage) -> None:
    """Writes are atomic, so only a disk error or a hand edit damages a file: never trust it."""
    _, model = _setup(stripes)
    first = embed_images(model, stripes.images, train=stripes.train, cache_dir=tmp_path)
    expected = np.array(first.clean)
    damage(first.path)
    again = embed_images(model, stripes.images, train=stripes.train, cache_dir=tmp_path)
    assert not again.reused and again.path == first.path
    assert np.array_equal(again.clean, expected)


def test_transfer_settings_a_run_cannot_use_are_reported(stripes) -> None:
    cfg = build_config({}, model="cnn", finetune_epochs=5, augment_views=2)
    model = build_model(cfg.model, stripes.classes, 3, (SIZE, SIZE))
    _, notes = plan_stages(model, stripes, cfg)
    assert notes == ["augment_views, finetune_epochs ignored: only used with a frozen or staged "
                     "pretrained backbone"]  # fmt: skip
    _, _, _, notes = _train(stripes, mode="feature_extract", epochs=1, finetune_lr=0.01)
    assert "finetune_epochs, finetune_lr ignored: only used with mode finetune" in notes
    _, _, _, notes = _train(stripes, mode="feature_extract", epochs=1, augment_views=2)
    assert "augment_views ignored: no augmentation is enabled to make the views" in notes


def test_stage_2_on_cached_activations_equals_stage_2_on_pixels(stripes) -> None:
    from imgclf.train.activations import FoldedPrefix, FromActivations

    cached_model, cached, stages, notes = _train(stripes)
    assert isinstance(stages[1].module, FromActivations) and stages[1].data.images.ndim == 2
    assert any("finetune trains from" in note for note in notes)
    pixel_model, pixels, pixel_stages, _ = _train(stripes, activation_cache=False)
    on_pixels = pixel_stages[1].module  # the frozen blocks folded (models/fold.py)
    assert isinstance(on_pixels, FoldedPrefix) and on_pixels.model is pixel_model
    assert pixel_stages[1].data.images.ndim == 4
    for a, b in zip(cached.history, pixels.history, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key
    for (name, a), b in zip(
        cached_model.state_dict().items(), pixel_model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)


def test_pixel_augmentation_keeps_stage_2_on_pixels(stripes) -> None:
    cfg, model = _setup(stripes, horizontal_flip=True)
    stages, _ = plan_stages(model, stripes, cfg)
    assert stages[1].module.model is model and stages[1].data.images.ndim == 4


def test_the_folded_frozen_blocks_follow_the_weights_loaded(stripes) -> None:
    """Stage 2 on pixels folds its frozen blocks once, and again after weights are loaded (a
    stage starts from the best weights so far; a resume loads its checkpoint)."""
    cfg, model = _setup(stripes, horizontal_flip=True)
    stages, _ = plan_stages(model, stripes, cfg)
    module = stages[1].module.eval()
    pixels = torch.from_numpy(stripes.images[:4]).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        before = module(pixels)
        state = {name: value.clone() for name, value in model.state_dict().items()}
        for name, value in state.items():
            if ".blocks.0." in name and name.endswith("running_var"):  # frozen statistics
                value.mul_(4.0)
        module.load_state_dict(state)
        after, plain = module(pixels), model(pixels)
    assert not torch.allclose(before, after, atol=1e-3)
    torch.testing.assert_close(after, plain, atol=1e-4, rtol=1e-4)
