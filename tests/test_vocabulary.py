"""One vocabulary for settings: each set of choices is declared once in the config schema, and
the CLI's choices and help, the runtime's checks and the optimizers are read from it. These
tests fail when one of them drifts from the schema."""

from __future__ import annotations

import inspect
import re
from typing import get_args

import pytest
import typer
from typer.testing import CliRunner

from imgclf import api, config
from imgclf.classifier import ImageClassifier
from imgclf.cli import app
from imgclf.cli import train as train_cli
from imgclf.config import DEVICE_PATTERN, DEVICES, NOTES, PrecisionSetting, TrainConfig
from imgclf.errors import ConfigError
from imgclf.runtime import AUTO_PRECISION, PRECISIONS, check_precision, resolve_device
from imgclf.train.optim import OPTIMIZERS

runner = CliRunner()


def _option(command: str, name: str):
    """The click parameter behind ``imgclf COMMAND --NAME``."""
    group = typer.main.get_command(app)
    params = group.commands[command].params
    return next(p for p in params if p.name == name)


@pytest.mark.parametrize(
    ("command", "option", "key"),
    [
        ("train", "optimizer", "train.optimizer"),
        ("train", "schedule", "train.schedule"),
        ("train", "mode", "model.mode"),
        ("train", "embed_backend", "train.embed_backend"),
        ("train", "precision", "train.precision"),
        ("lr-find", "precision", "train.precision"),
        ("predict", "precision", "train.precision"),
        ("evaluate", "precision", "train.precision"),
        ("summary", "mode", "model.mode"),
    ],
)
def test_cli_choices_are_the_schemas(command: str, option: str, key: str) -> None:
    section, _, name = key.rpartition(".")
    schema = config.Config.model_fields[section].annotation.model_fields[name].annotation
    usage = runner.invoke(app, [command, "--help"]).output
    flag = "--" + option.replace("_", "-")
    shown = re.search(rf"{flag} <([^>]*)>", usage).group(1)  # click's list of the choices
    assert shown.split("|") == list(get_args(schema))


@pytest.mark.parametrize("command", ["train", "lr-find", "predict", "evaluate"])
@pytest.mark.parametrize("key", ["train.device", "train.precision"])
def test_device_and_precision_help_is_the_schemas_description(command: str, key: str) -> None:
    described = TrainConfig.model_fields[key.partition(".")[2]].description
    assert described == api.setting_help(key)
    assert _option(command, key.partition(".")[2]).help.startswith(described)
    for word in DEVICES if key == "train.device" else get_args(PrecisionSetting):
        assert word in described


def test_a_bad_choice_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["train", "digits", "--optimizer", "lion"], prog_name="imgclf")
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert "'--optimizer'" in line and "'lion'" in line
    for name in get_args(config.Optimizer):
        assert f"'{name}'" in line


def test_the_runtime_checks_with_the_schemas_precisions_and_devices() -> None:
    assert (*PRECISIONS, AUTO_PRECISION) == get_args(PrecisionSetting)
    with pytest.raises(ConfigError) as raised:
        check_precision("fp8", resolve_device("cpu"))
    assert "Use 32, 16-mixed, bf16-mixed or auto." in str(raised.value)
    for device in DEVICES:
        assert re.fullmatch(DEVICE_PATTERN, device.replace(":N", ":3"))
    assert TrainConfig.model_fields["device"].metadata[0].pattern == f"^({DEVICE_PATTERN})$"


def test_notes_explain_declared_choices_only() -> None:
    assert set(NOTES["device"]) <= set(DEVICES)
    assert set(NOTES["precision"]) <= set(get_args(PrecisionSetting))


def test_every_optimizer_of_the_schema_is_built() -> None:
    assert list(OPTIMIZERS) == list(get_args(config.Optimizer))


def test_train_passes_every_plain_option_as_a_config_key(monkeypatch) -> None:
    seen = {}

    def fake_train(data, config=None, resume=None, started=None, **overrides):
        seen.update(overrides)
        raise ConfigError("stop here")

    monkeypatch.setattr(api, "train", fake_train)
    result = runner.invoke(app, ["train", "digits", "--optimizer", "sgd", "--label-column", "y"])
    assert result.exit_code == 2 and "stop here" in result.output
    assert seen["optimizer"] == "sgd" and seen["label_column"] == "y"
    options = set(inspect.signature(train_cli.train).parameters)
    special = {"data", "config", "resume", "augment", "set_", "callback", "track"}
    launch = {"nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint"}
    assert set(seen) - {"train.callbacks", "run.track"} == options - special - launch
    given = {k: v for k, v in seen.items() if v is not None}
    api.make_config(**given)  # each is a config key


def test_the_estimators_named_parameters_are_its_signature() -> None:
    from imgclf import classifier

    signature = inspect.signature(ImageClassifier).parameters
    assert classifier._NAMED == tuple(name for name in signature if name != "params")
    assert set(ImageClassifier().get_params()) == set(classifier._NAMED)
