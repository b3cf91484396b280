"""One embed-once pass gives what later runs on the same images need: the features of the other
global pooling (a sweep over avg and max embeds once) and every image's stage means (the unknown
score makes no pass of its own), on both backends; a damaged stage file costs one pass, not a
wrong score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.train.test_stages import _setup, stripes  # noqa: F401 (a fixture)

from imgclf.config_loader import build_config
from imgclf.models.features import embeddings as embed_pass
from imgclf.models.inference import eval_mode, layer_rows
from imgclf.models.network import build_model
from imgclf.models.unknown import model_stages
from imgclf.runs import unknowing
from imgclf.runtime import Runtime
from imgclf.train.embeddings import embed_images
from imgclf.train.parts import TrainData


def _embed(model, data, folder: Path, backend: str = "torch", **kwargs):
    return embed_images(model, data.images, train=data.train, cache_dir=folder, backend=backend,
                        **kwargs)  # fmt: skip


def _no_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("the backbone ran again")

    monkeypatch.setattr(embed_pass, "_embed_into", refuse)
    monkeypatch.setattr(embed_pass, "_embed_views", refuse)
    monkeypatch.setattr(unknowing, "layer_rows", refuse)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_other_pooling_is_kept_by_the_same_pass(
    stripes,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    big = TrainData(
        stripes.images.repeat(2, 1).repeat(2, 2),
        stripes.labels,
        stripes.train,
        stripes.val,
        stripes.classes,
    )  # 64 px: a 2x2 map, where max is not avg
    cfg = build_config({}, model="efficientnet_lite0", horizontal_flip=True)
    by_avg = build_model(cfg.model, big.classes, 3, (64, 64))
    by_max = build_model(cfg.model.model_copy(update={"head": cfg.model.head.model_copy(
        update={"pooling": "max"})}), big.classes, 3, (64, 64))  # fmt: skip
    first = _embed(by_avg, big, tmp_path, backend, views=2, augment=cfg.augment)
    assert not first.reused and first.backend == backend
    _no_pass(monkeypatch)
    other = _embed(by_max, big, tmp_path, backend, views=2, augment=cfg.augment)
    assert other.reused and other.path != first.path
    with eval_mode(by_max), torch.inference_mode():
        pixels = torch.from_numpy(big.images).permute(0, 3, 1, 2)
        expected = by_max.embed(pixels).numpy()
    assert not np.allclose(first.clean, expected)
    assert np.abs(np.asarray(other.clean) - expected).max() <= 1e-4
    assert other.views.shape == first.views.shape
    assert not np.allclose(other.views, first.views)  # max-pooled views, not the avg ones


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_stage_means_of_every_image_come_from_the_same_pass(
    stripes,  # noqa: F811
    tmp_path: Path,
    backend: str,
) -> None:
    _, model = _setup(stripes)
    embedded = _embed(model, stripes, tmp_path, backend)
    stages = model_stages(model, stripes.images)
    assert embedded.stage_names == stages and len(stages) >= 4
    rows = np.arange(len(stripes.images))
    fresh = layer_rows(model, stripes.images, rows, stages, 16, Runtime())[: len(stages)]
    for kept, computed in zip(embedded.stages, fresh, strict=True):
        assert kept.shape == computed.shape
        assert np.abs(kept - computed).max() <= 1e-4 * max(1.0, np.abs(computed).max())


def test_the_unknown_score_of_a_feature_extract_run_makes_no_pass(
    stripes,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, model = _setup(stripes)
    embedded = _embed(model, stripes, tmp_path)
    rows = {"train": stripes.train, "val": stripes.val}
    args = (rows, stripes.labels, stripes.images, Runtime(), 16)
    fitted_by_pass = unknowing.fit_unknown(model, *args)
    _no_pass(monkeypatch)
    fitted = unknowing.fit_unknown(model, *args, embedded=embedded)
    assert fitted["stages"] == fitted_by_pass["stages"] == embedded.stage_names
    assert fitted["unknown_share"]["val"] == pytest.approx(fitted_by_pass["unknown_share"]["val"])


def test_a_damaged_stage_file_means_one_pass_not_a_wrong_score(
    stripes,  # noqa: F811
    tmp_path: Path,
) -> None:
    _, model = _setup(stripes)
    _embed(model, stripes, tmp_path)
    stage_files = sorted((tmp_path / "embeddings").glob("*-stage*.npy"))
    assert stage_files
    stage_files[0].write_bytes(b"not an array")
    again = _embed(model, stripes, tmp_path)
    assert again.reused and again.stages is None  # the features are fine; the stages are not
    rows = {"train": stripes.train, "val": stripes.val}
    fitted = unknowing.fit_unknown(
        model, rows, stripes.labels, stripes.images, Runtime(), 16, embedded=again
    )
    assert fitted["stages"] == again.stage_names and "skipped" not in fitted
