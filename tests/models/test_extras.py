"""An optional extra: one check, and one message that names the package and the pip extra."""

from __future__ import annotations

import pytest

from imgclf.errors import ConfigError
from imgclf.models.extras import Extra


def test_a_missing_module_names_the_package_and_the_extra() -> None:
    extra = Extra("demo", ("json", "imgclf_no_such_module"))
    assert extra.installed("json") and not extra.installed()
    assert extra.missing() == "imgclf_no_such_module"
    extra.require("Demo export", "json")  # what the purpose needs is there
    with pytest.raises(ConfigError) as error:
        extra.require("Demo export")
    assert str(error.value) == (
        "Demo export needs the imgclf_no_such_module package: pip install 'imgclf[demo]'."
    )
