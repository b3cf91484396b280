"""A frozen backbone's stage features for the unknown score are computed once and read back by
the next run on the same images: equal to a fresh pass, keyed by the weights, the stages and
the rows, and computed again when the file is damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.config import ModelConfig
from imgclf.models.features import taps
from imgclf.models.inference import layer_rows
from imgclf.models.network import build_model
from imgclf.runtime import Runtime


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(name="cnn"), ["a", "b"], channels=3, image_size=(12, 12))


def test_the_taps_are_kept_and_read_back(model, tmp_path: Path, monkeypatch) -> None:
    images = np.random.default_rng(0).integers(0, 256, (20, 12, 12, 3), dtype=np.uint8)
    rows, stages, runtime = np.arange(3, 17), ["1", "4"], Runtime()
    fresh = layer_rows(model, images, rows, stages, 8, runtime)[:2]  # the stages, not the pool
    first = taps.cached_stage_rows(model, images, rows, stages, 8, runtime, tmp_path, "set")
    (kept,) = list(tmp_path.glob("*.npz"))
    assert all(np.array_equal(a, b) for a, b in zip(first, fresh, strict=True))

    def no_pass(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(taps, "layer_rows", no_pass)
    again = taps.cached_stage_rows(model, images, rows, stages, 8, runtime, tmp_path, "set")
    assert all(np.array_equal(a, b) for a, b in zip(again, fresh, strict=True))
    monkeypatch.undo()

    taps.cached_stage_rows(model, images, rows[:5], stages, 8, runtime, tmp_path, "set")
    taps.cached_stage_rows(model, images, rows, stages[:1], 8, runtime, tmp_path, "set")
    original = {name: value.clone() for name, value in model.state_dict().items()}
    with torch.no_grad():
        next(model.features.parameters()).add_(1.0)  # other weights: another file
    taps.cached_stage_rows(model, images, rows, stages, 8, runtime, tmp_path, "set")
    assert len(list(tmp_path.glob("*.npz"))) == 4

    kept.write_bytes(b"not a zip")  # damaged: computed again and replaced
    model.load_state_dict(original)
    repaired = taps.cached_stage_rows(model, images, rows, stages, 8, runtime, tmp_path, "set")
    assert all(np.array_equal(a, b) for a, b in zip(repaired, fresh, strict=True))
    assert kept.read_bytes()[:2] == b"PK"
