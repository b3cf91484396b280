"""Run folders made directly (config.yaml, metrics.json, status.json): no training needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml


def _make_run(
    project: Path,
    name: str,
    model: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """A run folder under ``project`` as training leaves it (metrics.json only when given)."""
    path = project / name
    path.mkdir(parents=True)
    config = {
        "imgclf_version": "0.0.0",
        "data": {"source": "/data/flowers", "image_size": 224},
        "model": {
            "name": "efficientnet_lite0",
            "mode": "finetune",
            "pretrained": True,
            **(model or {}),
        },
        "train": {"epochs": 3, "finetune_epochs": 3, "lr": 0.001, **(train or {})},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    if metrics is not None:
        (path / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return path


def _record_run(
    project: Path,
    name: str,
    config: dict[str, Any] | None = None,
    status: str = "finished",
    **fields: Any,
) -> None:
    """A run as the ledger records it (``started``, then ``status`` with ``fields``), without
    a run folder; ``config``'s ``run`` section gives a sweep's study and trial."""
    from imgclf.runs.ledger import append_record

    config = {"model": {"name": "cnn"}, **(config or {})}
    run = config.get("run", {})
    append_record(project, "started", name, config=config, study=run.get("study"),
                  trial=run.get("trial"))  # fmt: skip
    if status != "running":
        append_record(project, status, name, **fields)


@pytest.fixture
def record_run():
    """``record_run(project, name, config=..., status=..., **fields)`` writes ledger events."""
    return _record_run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The folder of run folders."""
    return tmp_path / "runs"


@pytest.fixture
def make_run():
    """``make_run(project, name, model=..., train=..., metrics=...)`` makes a run folder."""
    return _make_run
