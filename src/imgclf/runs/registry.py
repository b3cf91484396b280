"""The runs under a project folder, with their key settings and metrics (``imgclf runs list``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgclf.runs.rundir import RunDir, read_run_config


def list_runs(project: str | Path = "runs") -> list[dict[str, Any]]:
    """One row per run folder (newest first): name, model, data, settings, scores, time."""
    project = Path(project)
    if not project.is_dir():
        return []
    runs = [RunDir(p) for p in project.iterdir() if (p / "config.yaml").is_file()]
    runs.sort(key=lambda run: run.config.stat().st_mtime, reverse=True)
    return [_row(run) for run in runs]


def _row(run: RunDir) -> dict[str, Any]:
    config = read_run_config(run)
    metrics = _read_json(run.metrics)
    train, model, data = config.get("train", {}), config.get("model", {}), config.get("data", {})
    timings = metrics.get("timings", {})
    return {
        "name": run.name,
        "model": model.get("name"),
        "mode": model.get("mode"),
        "data": Path(str(data.get("source"))).name if data.get("source") else "-",
        "image_size": data.get("image_size"),
        "optimizer": train.get("optimizer"),
        "lr": train.get("lr"),
        "batch_size": train.get("batch_size"),
        "epochs": f"{metrics.get('epochs_run', '?')}/{train.get('epochs')}",
        "best_epoch": metrics.get("best_epoch"),
        "val_accuracy": metrics.get("val", {}).get("accuracy"),
        "test_accuracy": metrics.get("test", {}).get("accuracy"),
        "train_seconds": timings.get("train"),
        "status": "finished" if metrics else "unfinished",
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
