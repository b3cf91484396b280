"""The model bundle: exact round trips, atomic saves, and a clear error for every damaged bundle."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch

from imgclf.config import ModelConfig
from imgclf.errors import ModelError
from imgclf.export.onnx import exported
from imgclf.models.bundle import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    is_bundle,
    load_bundle,
    read_bundle_json,
    save_bundle,
)
from imgclf.models.network import SPEC_FORMAT, ImageModel, build_model, model_from_spec

CLASSES = ["a", "b", "c"]
CUSTOM_LAYERS = [
    {"type": "conv", "filters": 4, "kernel": 3, "padding": "same"},
    {"type": "batchnorm"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 8},
]


def _cnn() -> ImageModel:
    return build_model(ModelConfig(name="cnn"), classes=CLASSES, channels=1, image_size=(12, 12))


def _custom() -> ImageModel:
    cfg = ModelConfig(name="custom", layers=CUSTOM_LAYERS)
    return build_model(cfg, classes=CLASSES, channels=3, image_size=(8, 8))


def _resnet() -> ImageModel:
    cfg = ModelConfig(name="resnet18", pretrained=False)
    return build_model(cfg, classes=["cat", "dog"], channels=3, image_size=(32, 32))


def _perturbed(model: ImageModel) -> ImageModel:
    """Weights and BatchNorm statistics a fresh build cannot reproduce by chance."""
    with torch.no_grad():
        for tensor in model.state_dict().values():  # not the preprocessing constants
            if tensor.is_floating_point():
                tensor.add_(torch.rand_like(tensor) * 0.01)
    return model.eval()


def _pixels(model: ImageModel, seed: int) -> torch.Tensor:
    spec = model.preprocess_spec
    generator = torch.Generator().manual_seed(seed)
    shape = (2, spec.channels, *spec.image_size)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)


@pytest.fixture
def bundle(tmp_path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    return save_bundle(_perturbed(_cnn()), tmp_path / "bundle")


@pytest.mark.parametrize("make", [_cnn, _custom, _resnet], ids=["cnn", "custom", "resnet18"])
def test_round_trip_gives_identical_outputs(make, tmp_path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    model = _perturbed(make())
    path = save_bundle(model, tmp_path / "bundle")
    loaded = load_bundle(path)
    x = _pixels(model, seed)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
        assert not torch.equal(model_from_spec(model.spec).eval()(x), model(x))  # weights matter
    assert not loaded.training
    assert loaded.classes == model.classes
    assert loaded.preprocess_spec == model.preprocess_spec
    assert loaded.spec == json.loads(json.dumps(model.spec))
    assert loaded.frozen_bn == model.frozen_bn


def test_channels_last_weights_are_saved_contiguous(tmp_path: Path) -> None:
    model = _cnn()
    assert not all(t.is_contiguous() for t in model.state_dict().values())  # the case under test
    load_bundle(save_bundle(model, tmp_path / "bundle"))


def test_weights_file_is_plain_safetensors(bundle: Path) -> None:
    raw = (bundle / WEIGHTS_NAME).read_bytes()
    header_size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_size])
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    data_size = max(end for info in tensors.values() for end in info["data_offsets"])
    assert len(raw) == 8 + header_size + data_size  # nothing but header and raw tensor bytes
    with safetensors.safe_open(str(bundle / WEIGHTS_NAME), framework="pt") as handle:
        assert sorted(handle.keys()) == sorted(load_bundle(bundle).state_dict())


def test_bundle_is_as_readable_as_any_new_file(tmp_path: Path) -> None:
    path = save_bundle(_cnn(), tmp_path / "bundle")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "file").write_text("x")
    assert path.stat().st_mode == plain.stat().st_mode  # not mkdtemp's private 0o700
    modes = {p.name: p.stat().st_mode for p in path.iterdir()}
    assert modes == dict.fromkeys([CONFIG_NAME, WEIGHTS_NAME], (plain / "file").stat().st_mode)


def test_model_json_holds_spec_counts_and_extra(tmp_path: Path) -> None:
    model = _cnn()
    extra = {"val_accuracy": np.float32(0.75), "epochs": np.int64(3), "run": tmp_path}
    path = save_bundle(model, tmp_path / "bundle", extra=extra)
    data = read_bundle_json(path)
    assert data["format"] == SPEC_FORMAT
    assert data["classes"] == CLASSES
    assert data["num_parameters"] == sum(p.numel() for p in model.parameters())
    assert data["tensors"] == len(model.state_dict())
    assert data["extra"] == {"val_accuracy": 0.75, "epochs": 3, "run": str(tmp_path)}
    assert load_bundle(path).spec == json.loads(json.dumps(model.spec))  # extra is not spec


def test_extra_that_is_not_json_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot be written"):
        save_bundle(_cnn(), tmp_path / "bundle", extra={"fn": print})
    assert list(tmp_path.iterdir()) == []


def test_only_image_models_are_saved(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="needs an imgclf ImageModel, received Linear"):
        save_bundle(torch.nn.Linear(2, 2), tmp_path / "bundle")


def test_run_directory_loads_its_model_folder(tmp_path: Path) -> None:
    model = _cnn()
    save_bundle(model, tmp_path / "run" / "model")
    assert load_bundle(tmp_path / "run").classes == CLASSES


def _edit_json(bundle: Path, **changes) -> None:
    data = json.loads((bundle / CONFIG_NAME).read_text())
    data.update(changes)
    (bundle / CONFIG_NAME).write_text(json.dumps(data))


def test_other_version_with_same_format_loads(bundle: Path) -> None:
    _edit_json(bundle, imgclf_version="0.0.1")
    assert load_bundle(bundle).spec["imgclf_version"] == "0.0.1"


def test_future_format_asks_for_an_upgrade(bundle: Path) -> None:
    _edit_json(bundle, format=SPEC_FORMAT + 1, imgclf_version="9.0")
    with pytest.raises(ModelError, match=r"format 2 \(saved by imgclf 9.0\).*Upgrade imgclf"):
        load_bundle(bundle)


def test_edited_class_count_names_both_counts(bundle: Path) -> None:
    _edit_json(bundle, classes=["a", "b", "c", "d"])
    with pytest.raises(
        ModelError, match=r"classes in model.json \(4\) do not match the weights \(3\)"
    ):
        load_bundle(bundle)


def test_weights_of_another_architecture_are_named(bundle: Path, tmp_path: Path) -> None:
    other = save_bundle(_custom(), tmp_path / "other")
    (bundle / WEIGHTS_NAME).write_bytes((other / WEIGHTS_NAME).read_bytes())
    with pytest.raises(ModelError, match="does not fit the architecture.*missing"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / CONFIG_NAME).unlink(), "model.json is missing .*partial bundle"),
        (lambda b: (b / WEIGHTS_NAME).unlink(), "partial: model.safetensors is missing"),
        (lambda b: (b / CONFIG_NAME).write_text("{'format': 1"), "is not valid JSON"),
        (lambda b: (b / CONFIG_NAME).write_text("[1, 2]"), "must hold a JSON object"),
        (lambda b: _edit_json(b, format="one"), "'format' must be a whole number"),
        (lambda b: _truncate(b / WEIGHTS_NAME), "truncated or corrupt"),
        (lambda b: (b / WEIGHTS_NAME).write_bytes(b""), "truncated or corrupt"),
        (lambda b: _drop_key(b, "preprocess"), r"lacks the required keys \['preprocess'\]"),
        (lambda b: _edit_json(b, model={"name": "cnn", "bogus": 1}), "cannot be built"),
    ],
    ids=[
        "no-json", "no-weights", "bad-json", "json-list", "bad-format", "truncated", "empty",
        "no-preprocess", "bad-model",
    ],
)  # fmt: skip
def test_damaged_bundle_fails_clearly(bundle: Path, damage, message: str) -> None:
    damage(bundle)
    with pytest.raises(ModelError, match=message):
        load_bundle(bundle)


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _drop_key(bundle: Path, key: str) -> None:
    data = json.loads((bundle / CONFIG_NAME).read_text())
    del data[key]
    (bundle / CONFIG_NAME).write_text(json.dumps(data))


def test_missing_path_and_file_path_fail_clearly(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="is not a directory"):
        load_bundle(bundle / CONFIG_NAME)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_existing_bundle_is_kept_without_overwrite(bundle: Path) -> None:
    before = _snapshot(bundle)
    with pytest.raises(ModelError, match="already exists.*overwrite=True"):
        save_bundle(_custom(), bundle)
    assert _snapshot(bundle) == before
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]


def test_overwrite_replaces_the_bundle(bundle: Path) -> None:
    replacement = build_model(
        ModelConfig(name="cnn"), classes=["x", "y"], channels=1, image_size=(12, 12)
    )
    save_bundle(replacement, bundle, overwrite=True)
    assert load_bundle(bundle).classes == ["x", "y"]
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]  # no temp or old dirs


def test_non_bundle_directory_is_never_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"not really")
    with pytest.raises(ModelError, match="exists and is not a model bundle"):
        save_bundle(_cnn(), folder, overwrite=True)
    assert _snapshot(folder) == {"cat.jpg": b"not really"}
    assert not is_bundle(folder) and not is_bundle(tmp_path)


def test_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    assert is_bundle(save_bundle(_cnn(), tmp_path / "bundle"))


def _failing_save_file(*args, **kwargs) -> None:
    raise OSError("disk full")


def test_failed_save_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safetensors.torch, "save_file", _failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(_cnn(), tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_bundle(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _snapshot(bundle)
    monkeypatch.setattr(safetensors.torch, "save_file", _failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(_custom(), bundle, overwrite=True)
    assert _snapshot(bundle) == before
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]


def _export_into(bundle: Path) -> dict[str, bytes]:
    """What imgclf export writes into a bundle folder (the graph's bytes do not matter here)."""
    files = {"model.onnx": b"graph", "onnx.json": b"{}", "parity.json": b'{"passed": true}'}
    for name, data in files.items():
        (bundle / name).write_bytes(data)
    return files


def test_an_exported_bundle_saved_again_keeps_its_export(bundle: Path) -> None:
    files = _export_into(bundle)
    (bundle / ".model.onnx.candidate").write_bytes(b"an export cut short")
    assert is_bundle(bundle)
    save_bundle(load_bundle(bundle), bundle, overwrite=True, extra={"scored": "again"})
    assert {name: (bundle / name).read_bytes() for name in files} == files  # the same model
    assert exported(bundle) and not (bundle / ".model.onnx.candidate").exists()
    assert read_bundle_json(bundle)["extra"] == {"scored": "again"}


def test_an_export_of_an_earlier_model_is_kept_but_no_longer_passes(bundle: Path) -> None:
    files = _export_into(bundle)
    save_bundle(_perturbed(load_bundle(bundle)), bundle, overwrite=True)
    assert (bundle / "model.onnx").read_bytes() == files["model.onnx"]
    parity = json.loads((bundle / "parity.json").read_text())
    assert parity["passed"] is False and "export it again" in parity["stale"]
    assert not exported(bundle)  # predict's auto backend falls back to torch
    (bundle / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="exists and is not a model bundle"):
        save_bundle(_cnn(), bundle, overwrite=True)  # anything else is still never replaced
