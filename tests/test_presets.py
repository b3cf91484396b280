"""Presets: settings by name under the user's, the ``fast`` alias picked by the data, budgeted
unless epochs are given, and one clear error for an unknown name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from imgclf import runtime as runtime_module
from imgclf.api import make_config
from imgclf.api.training import _preset_for_data
from imgclf.cli import app
from imgclf.data.formats.resolve import peek_channels
from imgclf.errors import ConfigError
from imgclf.presets import list_presets, preset_values, resolve_preset

runner = CliRunner()


def test_a_preset_sits_under_what_the_user_gives() -> None:
    cfg = make_config(preset="fast_cifar", lr=0.05, horizontal_flip=False)
    assert cfg.preset == "fast_cifar" and cfg.model.name == "fast_cifar"
    assert cfg.train.lr == 0.05 and cfg.augment.horizontal_flip is False  # the user's
    assert cfg.train.optimizer == "sgd" and cfg.train.nesterov  # the preset's
    assert cfg.augment.translate == 2 and cfg.train.tta == "flip"
    assert cfg.train.precision == "auto"


def test_a_yaml_file_names_a_preset_and_flags_still_win(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("preset: fast_mnist\ntrain: {batch_size: 64}\n")
    cfg = make_config(file, batch_size=32)
    assert cfg.model.name == "fast_mnist" and cfg.train.batch_size == 32
    assert cfg.train.optimizer == "adamw"


def test_the_fast_presets_are_defined_by_their_work_and_a_budget_is_the_user_s() -> None:
    """Issue 23: a preset's time budget cut CIFAR-10 short on a slower CPU; its epochs do not."""
    assert make_config(preset="fast_mnist").train.epochs == 2
    assert make_config(preset="fast_cifar").train.epochs == 1
    assert make_config(preset="fast_cifar").train.budget is None
    assert make_config(preset="fast_cifar", budget="2m").train.budget == 120.0
    assert make_config(preset="fast_cifar", epochs=5).train.epochs == 5


def test_fast_picks_the_recipe_by_channels_then_by_colour_mode() -> None:
    assert resolve_preset("fast", channels=1) == "fast_mnist"
    assert resolve_preset("fast", channels=3) == "fast_cifar"
    assert resolve_preset("fast", color_mode="grayscale") == "fast_mnist"
    assert resolve_preset("FAST") == "fast_cifar"
    assert make_config(preset="fast", color_mode="grayscale").model.name == "fast_mnist"
    assert list_presets() == ["fast", "fast_cifar", "fast_mnist"]


def test_the_data_tells_fast_its_channels_where_known_before_reading(tmp_path: Path) -> None:
    assert peek_channels("mnist") == 1 and peek_channels("Fashion_MNIST") == 1
    assert peek_channels("cifar10") == 3
    assert peek_channels((np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1])) == 1
    assert peek_channels((np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 0, 1])) == 3
    assert peek_channels(tmp_path) is None  # a folder: only the scan knows
    assert _preset_for_data(None, {"preset": "fast"}, "mnist")["preset"] == "fast_mnist"
    assert _preset_for_data(None, {"preset": "fast"}, "cifar10")["preset"] == "fast_cifar"
    assert _preset_for_data(None, {"lr": 0.1}, "mnist") == {"lr": 0.1}


def test_an_unknown_preset_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match="Unknown preset 'fast_cifr'. Did you mean 'fast_cifar'"):
        make_config(preset="fast_cifr")


def test_preset_values_are_fresh_copies() -> None:
    preset_values("fast_cifar")["train"]["lr"] = 99.0
    assert preset_values("fast_cifar")["train"]["lr"] == 0.1


def test_train_with_the_fast_preset_end_to_end(shapes: Path, monkeypatch) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: False)
    result = runner.invoke(
        app,
        ["train", str(shapes), "--preset", "fast", "--epochs", "2", "--image-size", "32",
         "--quiet", "--name", "f"],  # its stride-2 stem and three pools take 18 px or more
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load(Path("runs/f/config.yaml").read_text())
    assert saved["preset"] == "fast_cifar" and saved["model"]["name"] == "fast_cifar"
    assert saved["train"]["budget"] is None and saved["train"]["epochs"] == 2
    assert saved["train"]["tta"] == "flip" and saved["augment"]["translate"] == 2
    metrics = yaml.safe_load(Path("runs/f/metrics.json").read_text())
    assert metrics["runtime"]["precision"] == "32"  # auto, on a CPU without native bf16
    assert metrics["epochs_run"] == 2


def test_the_cli_refuses_an_unknown_preset_in_one_line(shapes: Path) -> None:
    result = runner.invoke(app, ["train", str(shapes), "--preset", "quick", "--quiet"])
    assert result.exit_code == 2
    assert "Unknown preset 'quick'" in result.output and "Traceback" not in result.output
    assert not Path("runs").exists()
