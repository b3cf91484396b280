"""The embed-once pass on ONNX Runtime: features within 1e-4 of torch's, a cache key per
backend's numerics, auto's choice, and the fall-backs to torch (a refused graph, a failed
export), on a pretrained Lite0 at 32 px."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.train.test_stages import _setup, _train, stripes  # noqa: F401 (a fixture)

from imgclf.errors import ConfigError
from imgclf.models.features import backend as embed_backend
from imgclf.runtime import Runtime
from imgclf.train.embeddings import embed_images
from imgclf.train.parts import TrainData


def _embed(model, data: TrainData, folder: Path, backend: str, **kwargs):
    return embed_images(model, data.images, train=data.train, cache_dir=folder, backend=backend,
                        **kwargs)  # fmt: skip


def test_onnx_runtime_features_agree_with_torch(stripes, tmp_path: Path) -> None:  # noqa: F811
    _, model = _setup(stripes)
    on_torch = _embed(model, stripes, tmp_path, "torch")
    on_onnx = _embed(model, stripes, tmp_path, "onnx")
    assert on_torch.backend == "torch" and on_onnx.backend == "onnx" and on_onnx.note is None
    assert np.abs(np.asarray(on_onnx.clean) - np.asarray(on_torch.clean)).max() <= 1e-4
    # the backend's numerics are part of the key: two files, each reused by its own backend
    assert on_onnx.path != on_torch.path
    again = _embed(model, stripes, tmp_path, "onnx")
    assert again.reused and again.path == on_onnx.path and again.backend == "onnx"


def test_augmented_views_run_on_the_same_backend(stripes, tmp_path: Path) -> None:  # noqa: F811
    cfg, model = _setup(stripes, horizontal_flip=True)
    views = {
        backend: _embed(model, stripes, tmp_path, backend, views=2, augment=cfg.augment, seed=3)
        for backend in ("torch", "onnx")
    }
    assert views["onnx"].views.shape == (2, len(stripes.train), 1280)
    assert np.abs(np.asarray(views["onnx"].views) - np.asarray(views["torch"].views)).max() <= 1e-4


def test_auto_uses_onnx_runtime_only_for_passes_that_repay_the_export(
    stripes,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, model = _setup(stripes)
    assert _embed(model, stripes, tmp_path, "auto").backend == "torch"  # 72 images at 32 px
    monkeypatch.setattr(embed_backend, "AUTO_MIN_PIXELS", 1)
    assert _embed(model, stripes, tmp_path, "auto").backend == "onnx"
    bf16 = Runtime(precision="bf16-mixed")
    assert embed_backend.planned_backend("auto", bf16, 10**9) == "torch"
    with pytest.raises(ConfigError, match="CPU at 32 bits"):
        embed_backend.planned_backend("onnx", bf16, 10**9)
    with pytest.raises(ConfigError, match="Unknown embed_backend 'ort'"):
        embed_backend.planned_backend("ort", Runtime(), 1)


@pytest.mark.parametrize("failure", ["refused", "export"])
def test_a_graph_that_fails_leaves_the_pass_on_torch_under_torchs_key(
    stripes,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    _, model = _setup(stripes)
    on_torch = _embed(model, stripes, tmp_path / "torch", "torch")
    if failure == "refused":
        monkeypatch.setattr(embed_backend, "MAX_FEATURE_DIFF", -1.0)
    else:

        def broken(*_):
            raise RuntimeError("exporter exploded")

        monkeypatch.setattr(embed_backend, "_exported_session", broken)
    fallen = _embed(model, stripes, tmp_path / "torch", "onnx")
    assert fallen.backend == "torch" and fallen.path == on_torch.path and fallen.reused
    says = "differ from torch's" if failure == "refused" else "exporter exploded"
    assert says in fallen.note


def test_a_feature_extract_run_on_onnx_runtime_learns_what_torch_learns(stripes) -> None:  # noqa: F811
    _, on_torch, _, _ = _train(stripes, mode="feature_extract", embed_backend="torch")
    _, on_onnx, _, notes = _train(stripes, mode="feature_extract", embed_backend="onnx")
    assert any("on ONNX Runtime" in note for note in notes)
    for torch_row, onnx_row in zip(on_torch.history, on_onnx.history, strict=True):
        assert onnx_row["val_accuracy"] == torch_row["val_accuracy"]
        assert onnx_row["val_loss"] == pytest.approx(torch_row["val_loss"], abs=1e-4)
