"""The search space: config keys, ranges and lists, and what is wrong with a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.errors import ConfigError
from imgclf.sweep.space import load_space, nest


def test_ranges_lists_and_nested_keys_are_read_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(
        "train.lr: {log_float: [1.0e-4, 1.0e-2]}\n"
        "data.image_size: [128, 160, 224]\n"
        "model.head.pooling: [avg, max]\n"
        "augment.vertical_flip: [false, true]\n"
        "train.epochs: {int: [2, 8]}\n"
        "train.optimizer: {choice: [adam, sgd]}\n"
    )
    space = load_space(path)
    kinds = {p.key: (p.kind, p.log) for p in space.params}
    assert kinds["train.lr"] == ("float", True)
    assert kinds["train.epochs"] == ("int", False)
    assert kinds["model.head.pooling"] == ("choice", False)
    assert space.params[3].choices == (False, True)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"train.lrr": [0.1]}, "not a config key. Did you mean 'train.lr'?"),
        ({"model.head.poling": ["avg"]}, "Did you mean 'model.head.pooling'?"),
        ({"train.lr": {"log_float": [1e-2, 1e-4]}}, "low 0.01 is above high 0.0001"),
        ({"train.batch_size": []}, "has an empty list"),
        ({"train.lr": {"log_flot": [1e-4, 1e-2]}}, "unknown kind 'log_flot'. Did you mean"),
        ({"train.lr": {"log_float": [0, 1e-2]}}, "a log range needs low > 0"),
        ({"train.lr": {"float": [1e-4]}}, "needs [low, high]"),
        ({"train.optimizer": ["adam", "lion"]}, "'lion' is not a valid value"),
        ({"train.batch_size": {"int": [0, 8]}}, "0 is not a valid value"),
        ({}, "The search space is empty"),
    ],
)
def test_a_bad_space_says_what_is_wrong(space: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_space(space)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_or_broken_space_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_space(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train.lr: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_space(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- train.lr\n")
    with pytest.raises(ConfigError, match="must map config keys"):
        load_space(listed)


def test_the_grid_needs_lists_only() -> None:
    space = load_space({"train.lr": [0.1, 0.01], "train.batch_size": [8, 16]})
    assert space.grid() == {"train.lr": [0.1, 0.01], "train.batch_size": [8, 16]}
    with pytest.raises(ConfigError, match="train.lr are ranges"):
        load_space({"train.lr": {"float": [0.1, 0.2]}}).grid()


def test_dotted_settings_nest_into_a_copy_of_the_config() -> None:
    base = {"model": {"name": "mlp", "head": {"pooling": "avg"}}}
    nested = nest({"model.head.pooling": "max", "train.lr": 0.1}, base)
    assert nested == {"model": {"name": "mlp", "head": {"pooling": "max"}}, "train": {"lr": 0.1}}
    assert base["model"]["head"]["pooling"] == "avg"


def test_list_choices_go_to_optuna_as_text_and_come_back_as_lists() -> None:
    import optuna

    space = load_space({"model.head.dense": [[], [256], [512, 256]]})
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space.grid()))
    seen = [space.suggest(study.ask())["model.head.dense"] for _ in range(3)]
    assert sorted(seen, key=len) == [[], [256], [512, 256]]
