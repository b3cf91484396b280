"""api.summarize (and `imgclf summary`): bad arguments fail on one line that names the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError, ImgclfError, ModelError
from imgclf.models.network import build_model

runner = CliRunner()


@pytest.mark.parametrize("channels", [0, 2, 4, True])
def test_channels_other_than_1_or_3_are_rejected(channels: int) -> None:
    with pytest.raises(ConfigError) as info:
        api.summarize("cnn", input_size=28, channels=channels)
    message = str(info.value)
    assert f"received {channels!r}" in message and "1 (grayscale) or 3 (RGB)" in message
    assert "--channels" in message and "\n" not in message


def test_cli_channels_4_exits_2_on_one_line() -> None:
    result = runner.invoke(app, ["summary", "cnn", "--input-size", "28", "--channels", "4"])
    assert result.exit_code == 2
    assert "received 4" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_1_and_3_are_summarised(channels: int) -> None:
    assert api.summarize("cnn", input_size=28, channels=channels).input_shape == (channels, 28, 28)


@pytest.mark.parametrize("model", ["cnn", "small_cnn"])
def test_a_recipe_without_a_size_names_the_flag(model: str) -> None:
    with pytest.raises(ConfigError) as info:
        api.summarize(model)
    message = str(info.value)
    assert f"Recipe '{model}' needs an input size" in message
    assert "--input-size N" in message and "input_size=N" in message and "28" in message


def test_a_yaml_config_without_a_size_names_the_flag(tmp_path: Path) -> None:
    config = tmp_path / "m.yaml"
    config.write_text("model:\n  name: cnn\n")
    with pytest.raises(ConfigError, match="--input-size N"):
        api.summarize(config)
    config.write_text("model:\n  name: cnn\ndata:\n  image_size: 28\n")
    assert api.summarize(config, channels=1).input_shape == (1, 28, 28)


def test_the_model_layer_keeps_its_own_message() -> None:
    from imgclf.config import ModelConfig

    with pytest.raises(ModelError, match="needs the image size of the data") as info:
        build_model(ModelConfig(name="cnn"), ["a", "b"], 1)
    assert "--input-size" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"classes": 1}, "at least 2 classes, received 1"),
        ({"classes": 0}, "at least 2 classes, received 0"),
        ({"depth": 0}, "depth must be an integer >= 1, received 0"),
        ({"depth": -1}, "depth must be an integer >= 1, received -1"),
    ],
)
def test_too_few_classes_or_a_depth_below_1_fail_on_one_line(kwargs: dict, expected: str) -> None:
    with pytest.raises(ImgclfError, match=expected) as info:
        api.summarize("cnn", input_size=28, **kwargs)
    assert "\n" not in str(info.value)
