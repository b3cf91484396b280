"""model_summary: Keras's parameter counts and output shapes for the tutorials' networks."""

from __future__ import annotations

import io

import pytest
from torch import nn

from imgclf.config import ModelConfig
from imgclf.errors import ModelError
from imgclf.models.freeze import apply_policy
from imgclf.models.network import ImageModel, build_model
from imgclf.models.summary import ModelSummary, model_summary

VGG16_HEAD = {"pooling": "flatten", "dense": [128, 64, 32]}


def _classes(n: int) -> list[str]:
    return [f"class{i}" for i in range(n)]


def _recipe(name: str, channels: int, size: int, classes: int) -> ImageModel:
    return build_model(ModelConfig(name=name), _classes(classes), channels, (size, size))


def _by_module(summary: ModelSummary) -> dict[str, object]:
    return {row.module: row for row in summary.rows}


@pytest.fixture(scope="module")
def small_cnn() -> ModelSummary:
    return model_summary(_recipe("small_cnn", 3, 32, 10))


@pytest.fixture(scope="module")
def vgg16_summaries() -> dict[str, ModelSummary]:
    """R2's VGG16 base frozen, then with block5_conv3 unfrozen (one build: it is the slow part)."""
    cfg = ModelConfig(name="vgg16", pretrained=False, mode="feature_extract", head=VGG16_HEAD)
    model = build_model(cfg, _classes(3), 3, (224, 224))
    summaries = {"feature_extract": model_summary(model)}
    apply_policy(model, cfg.model_copy(update={"mode": "finetune", "unfreeze": ["block5_conv3"]}))
    summaries["finetune"] = model_summary(model)
    return summaries


@pytest.fixture(scope="module")
def lite0() -> ImageModel:
    return build_model(ModelConfig(name="efficientnet_lite0"), _classes(3), 3, load_weights=False)


def test_small_cnn_matches_keras(small_cnn: ModelSummary) -> None:
    assert (small_cnn.total, small_cnn.trainable, small_cnn.non_trainable) == (122_570, 122_570, 0)
    layers = [row for row in small_cnn.rows if row.name != "preprocess"]
    assert [row.output_shape for row in layers] == [
        (32, 30, 30), (32, 15, 15), (64, 13, 13), (64, 6, 6), (64, 4, 4), (1024,), (64,), (10,),
    ]  # fmt: skip
    assert [row.name for row in layers][:3] == ["conv2d", "max_pooling2d", "conv2d_1"]
    assert layers[0].type == "Conv2d + ReLU"  # the activation is folded into its layer
    assert {row.trainable for row in layers if row.params} == {"yes"}
    assert sum(row.params for row in small_cnn.rows) == small_cnn.total


def test_the_forward_flops_per_image_are_counted_layer_by_layer(small_cnn: ModelSummary) -> None:
    def conv(cin: int, cout: int, side: int) -> int:  # 3x3, 2 flops per multiply-add
        return 2 * cin * cout * 9 * side * side

    expected = conv(3, 32, 30) + conv(32, 64, 13) + conv(64, 64, 4) + 2 * (1024 * 64 + 64 * 10)
    assert small_cnn.flops == expected == 9_097_216
    assert small_cnn.totals()["FLOPs per image (forward)"] == expected
    assert "FLOPs per image (forward): 9,097,216" in str(small_cnn)


@pytest.mark.parametrize(
    ("name", "channels", "size", "classes", "total"),
    [
        ("mlp", 1, 28, 10, 335_114),
        ("cnn", 1, 28, 10, 217_194),
        ("deep_cnn", 1, 28, 10, 329_962),
        ("animal_cnn", 3, 224, 3, 2_283_779),
    ],
)
def test_recipe_totals_match_the_tutorials(name, channels, size, classes, total) -> None:
    summary = model_summary(_recipe(name, channels, size, classes))
    assert summary.total == summary.trainable == total
    assert sum(row.params for row in summary.rows) == total
    assert summary.rows[-1].output_shape == (classes,)
    assert summary.input_shape == (channels, size, size)


def test_vgg16_feature_extraction_matches_r2(vgg16_summaries: dict[str, ModelSummary]) -> None:
    summary = vgg16_summaries["feature_extract"]
    assert (summary.total, summary.trainable, summary.non_trainable) == (
        17_936_515, 3_221_827, 14_714_688,
    )  # fmt: skip
    assert sum(row.params for row in summary.rows) == summary.total
    conv = _by_module(summary)["features.model.features.28"]
    assert (conv.name, conv.output_shape, conv.trainable) == ("block5_conv3", (512, 14, 14), "no")


def test_vgg16_finetune_unfreezes_block5_conv3(vgg16_summaries: dict[str, ModelSummary]) -> None:
    summary = vgg16_summaries["finetune"]
    assert summary.trainable == 5_581_635
    assert _by_module(summary)["features.model.features.28"].trainable == "yes"
    assert _by_module(summary)["features.model.features.26"].trainable == "no"


def test_backbone_depth_opens_blocks_and_keeps_totals(lite0: ImageModel) -> None:
    shallow, deep = model_summary(lite0, depth=1), model_summary(lite0, depth=2)
    assert "blocks.6" in [row.name for row in shallow.rows]
    assert "blocks.1.1" in [row.name for row in deep.rows]
    assert len(deep.rows) > len(shallow.rows)
    assert (shallow.total, shallow.trainable) == (deep.total, deep.trainable)
    for summary in (shallow, deep):
        assert sum(row.params for row in summary.rows) == summary.total


def test_frozen_batchnorm_is_marked_and_training_mode_restored(lite0: ImageModel) -> None:
    lite0.train()
    summary = model_summary(lite0)
    rows = {row.name: row for row in summary.rows}
    assert rows["bn1"].bn_frozen and rows["bn1"].trainable == "no"
    assert "no (BN frozen)" in str(summary)
    assert not rows["dense"].bn_frozen
    modules = dict(lite0.named_modules())
    assert lite0.training and not modules[lite0.frozen_bn[0]].training


def test_input_size_overrides_the_preprocessing_size(lite0: ImageModel) -> None:
    summary = model_summary(lite0, input_size=(96, 128))
    assert summary.rows[0].output_shape == (3, 96, 128)
    with pytest.raises(ModelError, match="depth"):
        model_summary(lite0, depth=0)


def test_text_frame_and_rich_output_use_keras_wording(small_cnn: ModelSummary) -> None:
    text = str(small_cnn)
    for line in ("Total params: 122,570", "Trainable params: 122,570", "Non-trainable params: 0"):
        assert line in text
    frame = small_cnn.to_frame()
    assert frame.attrs["Total params"] == 122_570
    assert frame.attrs["Non-trainable params"] == 0
    assert frame["params"].sum() == 122_570
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120)
    small_cnn.print(console)
    assert "Total params: 122,570" in console.file.getvalue()


def test_image_model_summary_returns_the_result(capsys: pytest.CaptureFixture) -> None:
    model = build_model(
        ModelConfig(name="custom", layers=[{"type": "conv", "filters": 4}]), _classes(2), 1, (8, 8)
    )
    result = model.summary(print_table=False)
    assert isinstance(result, ModelSummary) and capsys.readouterr().out == ""
    assert result.total == 4 * 9 + 4 + 4 * 6 * 6 * 2 + 2
    assert isinstance(dict(model.named_modules())[result.rows[1].module], nn.Conv2d)
