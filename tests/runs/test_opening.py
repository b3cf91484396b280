"""open_model: one answer to "run or bundle", the run's config and data, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.config import ModelConfig
from imgclf.errors import ConfigError, ModelError
from imgclf.layout import RUN_BUNDLE_DIR, is_run_folder
from imgclf.models.bundle import save_bundle
from imgclf.models.network import build_model
from imgclf.runs.opening import open_model
from imgclf.runs.rundir import RunDir


def _save(path: Path) -> Path:
    model = build_model(
        ModelConfig(name="cnn"), classes=["a", "b"], channels=1, image_size=(12, 12)
    )
    return save_bundle(model, path)


def test_a_bundle_opens_without_a_run(tmp_path: Path) -> None:
    opened = open_model(_save(tmp_path / "bundle"))
    assert opened.network.classes == ["a", "b"] and not opened.network.training
    assert (opened.run_dir, opened.config, opened.data) == (None, None, None)
    assert not is_run_folder(tmp_path / "bundle")
    with pytest.raises(ConfigError, match="is a model bundle, not a run folder"):
        opened.scored_data(None)
    with pytest.raises(ConfigError, match="records no data for the parity gate"):
        opened.scored_data(None, purpose="the parity gate")
    assert opened.scored_data("elsewhere") == "elsewhere"


def test_a_run_opens_with_its_folder_config_and_data(project: Path, make_run) -> None:
    run = make_run(project, "r")
    _save(run / RUN_BUNDLE_DIR)
    opened = open_model(run)
    assert is_run_folder(run) and opened.run_dir == RunDir(run)
    assert opened.config["model"]["name"] == "efficientnet_lite0"
    assert opened.data == opened.scored_data(None) == "/data/flowers"
    assert opened.scored_data("other") == "other"


def test_a_run_that_records_no_data_says_so(project: Path, make_run) -> None:
    run = make_run(project, "r")
    (run / "config.yaml").write_text("data: {}\n", encoding="utf-8")
    _save(run / RUN_BUNDLE_DIR)
    with pytest.raises(ConfigError, match="does not record its data source"):
        open_model(run).scored_data(None)


def test_a_run_without_a_model_says_why_before_loading(project: Path, make_run) -> None:
    run = make_run(project, "r")
    RunDir(run).write_status("failed", error="disk on fire")
    with pytest.raises(ModelError, match="failed, so it has no model: disk on fire"):
        open_model(run)
