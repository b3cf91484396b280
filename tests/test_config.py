"""The one config schema: defaults, key routing, precedence, validation and YAML loading."""

from __future__ import annotations

import pytest

from imgclf.config import AugmentConfig, DataConfig
from imgclf.config_loader import build_config, load_yaml
from imgclf.errors import ConfigError

# ---------------------------------------------------------------- defaults and routing


def test_defaults():
    config = build_config()

    assert config.seed == 0
    assert config.data == DataConfig()
    assert config.data.val_split == 0.2
    assert config.data.test_split == 0.0
    assert config.data.image_size is None
    assert config.data.path_column == "path"
    assert config.augment.zoom_range == (1.0, 1.0)
    assert config.augment.rescale == pytest.approx(1 / 255)
    assert not config.augment.geometric


def test_flat_keywords_are_routed_to_the_section_that_owns_them():
    config = build_config(val_split=0.1, rotation_range=15, seed=7)

    assert config.data.val_split == 0.1
    assert config.augment.rotation_range == 15.0
    assert config.seed == 7


def test_dotted_keys_name_the_section():
    config = build_config(**{"data.val_split": 0.3, "augment.horizontal_flip": True})

    assert config.data.val_split == 0.3
    assert config.augment.horizontal_flip is True


def test_dotted_keys_reach_sub_mappings_in_a_dict_and_as_keywords():
    """A sweep's space names 'model.head.pooling'; a config dict (an enqueued trial) may too.
    The dotted key wins over its nested section, as a keyword wins over both."""
    config = build_config(
        {"train.optimizer": "sgd", "model.head.pooling": "max", "model": {"head": {"dense": [8]}}},
        **{"model.head.dropout": 0.1, "train.lr": 0.5},
    )

    assert config.train.optimizer == "sgd" and config.train.lr == 0.5
    assert (config.model.head.pooling, config.model.head.dense) == ("max", [8])
    assert config.model.head.dropout == 0.1
    with pytest.raises(ConfigError, match="Unknown key 'optimiser' in section 'train'"):
        build_config({"train.optimiser": "sgd"})


def test_none_overrides_are_ignored():
    """An unset CLI flag (None) must not replace the YAML value."""
    config = build_config({"data": {"val_split": 0.4}}, val_split=None)

    assert config.data.val_split == 0.4


def test_overrides_win_over_the_yaml_base_which_wins_over_defaults():
    base = {"seed": 3, "data": {"val_split": 0.3, "test_split": 0.1}, "augment": {"cval": 9}}

    config = build_config(base, val_split=0.05, **{"augment.cval": 1})

    assert config.seed == 3  # base
    assert config.data.val_split == 0.05  # override
    assert config.data.test_split == 0.1  # base
    assert config.augment.cval == 1.0  # dotted override
    assert config.data.image_size is None  # default
    assert base == {
        "seed": 3,
        "data": {"val_split": 0.3, "test_split": 0.1},
        "augment": {"cval": 9},
    }


def test_an_empty_yaml_section_means_its_defaults():
    """'augment:' with nothing under it loads as None; a flag for that section still works."""
    config = build_config({"data": None, "augment": None}, val_split=0.1)

    assert config.data.val_split == 0.1
    assert config.augment == AugmentConfig()


# ---------------------------------------------------------------- unknown keys


def test_unknown_top_level_key_suggests_the_close_one():
    with pytest.raises(ConfigError) as caught:
        build_config(val_splt=0.1)

    message = str(caught.value)
    assert "Unknown config key 'val_splt'" in message
    assert "Did you mean 'data.val_split'?" in message
    assert "Top-level keys: seed, preset, data, augment" in message


def test_unknown_yaml_section_suggests_the_close_one():
    with pytest.raises(ConfigError, match="Unknown config key 'augmnet'.*Did you mean 'augment'"):
        build_config({"augmnet": {"cval": 1}})


def test_unknown_key_inside_a_section_names_the_section_and_the_allowed_keys():
    with pytest.raises(ConfigError) as caught:
        build_config({"augment": {"rotaton_range": 10}})

    message = str(caught.value)
    assert "Unknown key 'rotaton_range' in section 'augment'" in message
    assert "Did you mean 'rotation_range'?" in message
    assert "Allowed: rotation_range, width_shift_range" in message
    assert "cutmix" in message


def test_dotted_key_with_a_key_of_the_wrong_section():
    with pytest.raises(ConfigError, match="Unknown key 'val_split' in section 'augment'"):
        build_config(**{"augment.val_split": 0.1})


def test_dotted_key_into_something_that_is_not_a_section():
    with pytest.raises(ConfigError) as caught:
        build_config({"seed": 3}, **{"seed.value": 1})

    message = str(caught.value)
    assert "'seed' is not a section" in message
    assert "Sections: data, augment" in message


def test_a_section_that_is_not_a_mapping_is_a_config_error():
    with pytest.raises(ConfigError, match="section 'data' must be a mapping"):
        build_config({"data": 5}, val_split=0.1)
    with pytest.raises(ConfigError, match=r"data: .*\(received 5\)"):
        build_config({"data": 5})


# ---------------------------------------------------------------- value validation


def test_image_size_int_means_square():
    assert build_config(image_size=32).data.image_size == (32, 32)
    assert build_config(image_size="24").data.image_size == (24, 24)
    assert build_config(image_size=[16, 48]).data.image_size == (16, 48)


@pytest.mark.parametrize("size", [0, -3, (8, 0)])
def test_image_size_must_be_positive(size):
    with pytest.raises(ConfigError) as caught:
        build_config(image_size=size)

    message = str(caught.value)
    assert "data.image_size" in message
    assert "image_size must be positive" in message


def test_single_zoom_range_becomes_a_symmetric_pair():
    config = build_config(zoom_range=0.2)

    assert config.augment.zoom_range == pytest.approx((0.8, 1.2))
    assert config.augment.geometric


def test_single_zoom_range_of_one_or_more_is_refused():
    with pytest.raises(ConfigError) as caught:
        build_config(zoom_range=1.5)

    message = str(caught.value)
    assert "augment.zoom_range" in message
    assert "a single zoom_range must be in [0, 1), received 1.5" in message


def test_brightness_range_must_be_ordered_and_positive():
    assert build_config(brightness_range=(0.5, 1.5)).augment.brightness_range == (0.5, 1.5)
    with pytest.raises(ConfigError, match=r"augment.brightness_range.*0 < lower <= upper"):
        build_config(brightness_range=(1.5, 0.5))
    with pytest.raises(ConfigError, match="lower <= upper"):
        build_config(brightness_range=(0.0, 1.0))


def test_val_and_test_splits_must_leave_training_data():
    with pytest.raises(ConfigError) as caught:
        build_config(val_split=0.6, test_split=0.4)

    assert "val_split + test_split must be below 1, received 0.6 + 0.4" in str(caught.value)


def test_a_single_split_must_be_below_one():
    with pytest.raises(ConfigError, match=r"data.val_split: .*less than 1.*received 1.0"):
        build_config(val_split=1.0)


def test_randaugment_and_trivialaugment_are_exclusive():
    with pytest.raises(ConfigError, match="choose one of randaugment and trivialaugment"):
        build_config(randaugment=True, trivialaugment=True)


def test_a_literal_option_lists_what_is_allowed():
    with pytest.raises(ConfigError) as caught:
        build_config(fit="stretch")

    message = str(caught.value)
    assert "data.fit" in message and "'stretch'" in message
    assert "resize" in message and "letterbox" in message


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("rotation_range", 10),
        ("width_shift_range", 0.1),
        ("height_shift_range", 0.1),
        ("shear_range", 5),
        ("zoom_range", (0.9, 1.0)),
    ],
)
def test_geometric_is_true_for_each_affine_knob(knob, value):
    assert AugmentConfig(**{knob: value}).geometric


def test_geometric_is_false_for_non_affine_options():
    augment = AugmentConfig(horizontal_flip=True, brightness_range=(0.8, 1.2), randaugment=True)

    assert not augment.geometric


def test_sections_validate_assignments():
    data = DataConfig()

    with pytest.raises(ValueError, match="val_split"):
        data.val_split = 2.0


# ---------------------------------------------------------------- YAML files


def test_load_yaml_reads_a_mapping_that_build_config_accepts(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 5\ndata:\n  val_split: 0.1\naugment:\n  zoom_range: 0.1\n")

    loaded = load_yaml(path)
    config = build_config(loaded, seed=6)

    assert loaded == {"seed": 5, "data": {"val_split": 0.1}, "augment": {"zoom_range": 0.1}}
    assert config.seed == 6
    assert config.augment.zoom_range == pytest.approx((0.9, 1.1))


def test_load_yaml_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError) as caught:
        load_yaml(missing)

    assert f"Config file {missing} does not exist" in str(caught.value)


def test_load_yaml_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: [unclosed\n")

    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        load_yaml(path)


def test_load_yaml_list_instead_of_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- seed\n- 3\n")

    with pytest.raises(ConfigError) as caught:
        load_yaml(path)

    assert "must hold a mapping of sections, received list" in str(caught.value)


def test_load_yaml_empty_file_is_an_empty_config(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")

    assert load_yaml(path) == {}
    assert build_config(load_yaml(path)) == build_config()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"image_size": 0}, "data.image_size: image_size must be positive, received (0, 0)"),
        ({"time_limit": "abc"}, "a duration like 90s, 45m, 2h or 1h30m, received 'abc'"),
    ],
)
def test_what_was_received_is_said_once(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(**overrides)
    message = str(caught.value)
    assert expected in message and message.count("received") == 1
    assert "Value error" not in message
