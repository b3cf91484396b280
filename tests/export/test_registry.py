"""The exporter seam: formats are registered by name, listed by the API and the CLI, and an
unknown name is one clear error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError
from imgclf.export import get_exporter, list_exporters, register_exporter
from imgclf.models.extras import ONNX


def test_the_registry_lists_onnx_with_its_extra_and_file() -> None:
    assert "onnx" in list_exporters() and api.export_formats() == list_exporters()
    onnx = get_exporter("onnx")
    assert onnx.extra == ONNX and onnx.filename == "model.onnx" and onnx.label == "ONNX"


def test_an_unknown_format_is_one_error_with_a_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"Unknown export format 'onx'\. Did you mean 'onnx'\?"):
        get_exporter("onx")
    with pytest.raises(ConfigError, match="Formats: onnx"):
        api.export("no-such-run", "tflite")


def test_a_format_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_exporter("onnx", extra=ONNX, filename="model.onnx")(lambda *a: {})


def test_imgclf_export_help_lists_the_registered_formats() -> None:
    result = CliRunner().invoke(app, ["export", "--help"])
    assert result.exit_code == 0, result.output
    assert f"The format: {', '.join(list_exporters())}." in " ".join(result.output.split())
