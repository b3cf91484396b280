"""Trackers are callbacks of the registry's kind ``tracker``: registered when imgclf.track is
imported, kept apart from the plain callbacks, and refused by name with one message."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.errors import ConfigError
from imgclf.track import TRACKERS, require
from imgclf.train.callbacks import create_callback, list_callbacks


def test_trackers_are_the_registry_kind_tracker_in_their_order() -> None:
    assert list_callbacks("tracker", sort=False) == ["tensorboard", "mlflow"] == list(TRACKERS)
    assert not set(TRACKERS) & set(list_callbacks())  # not plain, argument-free callbacks


@pytest.mark.parametrize("check", ["create", "require"])
def test_an_unknown_tracker_is_one_message_before_and_at_creation(
    check: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as error:
        if check == "create":
            create_callback("wandb", kind="tracker", run_path=tmp_path, config={})
        else:
            require("wandb", tmp_path)
    assert str(error.value) == "Unknown tracker 'wandb'. Choose one of tensorboard, mlflow."


def test_a_tracker_name_is_not_a_plain_callback() -> None:
    with pytest.raises(ConfigError, match=r"Unknown callback 'tensorboard'\. Registered: "):
        create_callback("tensorboard")
