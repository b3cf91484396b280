"""The runs under a project folder, with their key settings and metrics (``imgclf runs list``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgclf.config import ModelConfig, TrainConfig
from imgclf.runs.rundir import RunDir, read_run_config, read_status

COLUMNS = (
    "name",
    "model",
    "mode",
    "data",
    "image_size",
    "optimizer",
    "lr",
    "batch_size",
    "epochs",
    "best_epoch",
    "val_accuracy",
    "test_accuracy",
    "train_seconds",
    "status",
    "error",
)
"""The keys of every row, in this order."""


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
    status = read_status(run)
    train, model, data = config.get("train", {}), config.get("model", {}), config.get("data", {})
    best, seconds = metrics.get("best_epoch"), metrics.get("timings", {}).get("train")
    return {
        "name": run.name,
        "model": model.get("name"),
        "mode": "scratch" if _from_scratch(model) else model.get("mode"),
        "data": Path(str(data.get("source"))).name if data.get("source") else "-",
        "image_size": data.get("image_size"),
        "optimizer": train.get("optimizer"),
        "lr": train.get("lr"),
        "batch_size": train.get("batch_size"),
        "epochs": f"{metrics.get('epochs_run', '?')}/{_epochs_planned(config, metrics) or '?'}",
        "best_epoch": int(best) if isinstance(best, int | float) else None,
        "val_accuracy": metrics.get("val", {}).get("accuracy"),
        "test_accuracy": metrics.get("test", {}).get("accuracy"),
        "train_seconds": round(seconds, 1) if isinstance(seconds, int | float) else None,
        "status": status["status"],
        "error": status["error"],
    }


def _from_scratch(model: dict[str, Any]) -> bool:
    """Recipes and custom layer stacks always train from random weights, whatever the mode."""
    from imgclf.models.recipes import is_recipe

    name = str(model.get("name"))
    return name == "custom" or bool(model.get("layers")) or is_recipe(name)


def _epochs_planned(config: dict[str, Any], metrics: dict[str, Any]) -> int | None:
    """All stages' epochs: a staged pretrained fine-tune adds finetune_epochs to the head's.

    The rule of ``imgclf.train.stages.plan_stages``; metrics.json's ``epochs_planned`` (when
    above 0) wins.
    """
    planned = metrics.get("epochs_planned")
    if isinstance(planned, int) and planned > 0:  # 0: not recorded
        return planned
    train, model = config.get("train", {}), config.get("model", {})
    epochs = train.get("epochs")
    if not isinstance(epochs, int):
        return None
    staged = (
        model.get("mode", _default(ModelConfig, "mode")) == "finetune"
        and bool(model.get("pretrained", _default(ModelConfig, "pretrained")))
        and not _from_scratch(model)
    )
    if staged:
        epochs += int(train.get("finetune_epochs", _default(TrainConfig, "finetune_epochs")))
    return epochs


def _default(section: type[ModelConfig | TrainConfig], key: str) -> Any:
    return section.model_fields[key].default


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
