"""Pretrained weights: the offline Lite0 mapping classifies real photos; files load safely."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgclf.config import ModelConfig
from imgclf.data.pipeline.decode import fit_image
from imgclf.errors import ModelError
from imgclf.models.backbones import backbone_preprocess, create_backbone
from imgclf.models.preprocess import Preprocess, PreprocessSpec
from imgclf.models.weights import lite0_state_dict, map_in_order, read_state_dict

EGYPTIAN_CAT, ESPRESSO = 285, 967


def _imgclf_input(pixels: np.ndarray) -> torch.Tensor:
    """imgclf's own path: the default fit (resize to 224) and the backbone's preprocessing."""
    spec = PreprocessSpec(**_preprocess_values(), channels=3)
    fitted = fit_image(Image.fromarray(pixels), spec.image_size, spec.fit)
    batch = torch.from_numpy(fitted).permute(2, 0, 1).unsqueeze(0)
    return Preprocess(spec, network_channels=3)(batch)


def _preprocess_values() -> dict:
    values = backbone_preprocess(ModelConfig(name="efficientnet_lite0"))
    values["image_size"] = values.pop("input_size")
    assert values["mean"] == values["std"] == (0.5, 0.5, 0.5)
    return values


@pytest.fixture(scope="module")
def imagenet_lite0() -> torch.nn.Module:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    state = lite0_state_dict()
    mapped = map_in_order(state, model)
    mapped["classifier.weight"], mapped["classifier.bias"] = state["_fc.weight"], state["_fc.bias"]
    model.load_state_dict(mapped, strict=True)
    return model.eval()


@pytest.mark.parametrize(("photo", "expected"), [("chelsea", EGYPTIAN_CAT), ("coffee", ESPRESSO)])
def test_offline_lite0_classifies_real_photos(imagenet_lite0, photo: str, expected: int) -> None:
    from skimage import data

    with torch.inference_mode():
        logits = imagenet_lite0(_imgclf_input(getattr(data, photo)()))
    assert int(logits.argmax()) == expected


def test_backbone_loads_the_same_offline_weights(imagenet_lite0) -> None:
    backbone = create_backbone(ModelConfig(name="efficientnet_lite0")).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(backbone(x), imagenet_lite0.forward_features(x))


def test_local_weight_file_wins(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("resnet18", pretrained=False, num_classes=0, global_pool="")
    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "w.safetensors"
    )
    torch.save(source.state_dict(), tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        cfg = ModelConfig(name="resnet18", weights=tmp_path / name)
        loaded = create_backbone(cfg)
        for key, value in source.state_dict().items():
            assert torch.equal(loaded.model.state_dict()[key], value)


def test_offline_hub_download_is_a_clear_error(monkeypatch) -> None:
    import timm

    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return create_model(*args, **kwargs)

    create_model = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ModelError) as info:
        create_backbone(ModelConfig(name="resnet18", pretrained=True))
    message = str(info.value)
    assert "resnet18" in message and "--weights PATH" in message and "hub" in message


def test_unknown_model_suggests(monkeypatch) -> None:
    with pytest.raises(ModelError, match="Did you mean 'resnet18'"):
        create_backbone(ModelConfig(name="resnet_18"))


@pytest.mark.parametrize(
    ("content", "phrase"),
    [(b"", "cannot be read"), (b"not a torch file", "cannot be read")],
)
def test_bad_weight_files(tmp_path: Path, content: bytes, phrase: str) -> None:
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(ModelError, match=phrase):
        read_state_dict(tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pt")


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"weight": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="cannot be read"):
        read_state_dict(tmp_path / "evil.pt")


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="do not fit the model"):
        create_backbone(ModelConfig(name="resnet18", weights=tmp_path / "other.pt"))


def test_pretrained_path_is_a_weight_file(tmp_path: Path) -> None:
    import timm

    from imgclf.config_loader import build_config

    source = timm.create_model("resnet18", pretrained=False, num_classes=0)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    cfg = build_config({"model": {"name": "resnet18", "pretrained": str(tmp_path / "w.pt")}}).model
    assert cfg.weights == tmp_path / "w.pt"
    loaded = create_backbone(cfg)
    assert torch.equal(loaded.model.conv1.weight, source.conv1.weight)
