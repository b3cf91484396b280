"""The run directory: self-describing, never silently overwritten.

``runs/<name>/`` holds config.yaml (the full resolved config, re-runnable with
``imgclf train --config``), data_report.json, history.csv, metrics.json, report.html, plots/,
model/ (the bundle), checkpoints/ and status.json (running, finished, failed or interrupted).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from imgclf._version import __version__
from imgclf.config import Config
from imgclf.errors import ConfigError
from imgclf.fileio import atomic_write_text
from imgclf.layout import CONFIG_NAME, RUN_BUNDLE_DIR, RUN_CONFIG, is_run_folder

RUN_STATUSES = ("running", "finished", "failed", "interrupted")
"""The states training writes to status.json."""
_NO_DETAILS = {"error": None, "epoch": None, "batch": None}


@dataclass(frozen=True)
class RunDir:
    """Paths of one run's files."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    config = property(lambda self: self.path / RUN_CONFIG)
    data_report = property(lambda self: self.path / "data_report.json")
    history = property(lambda self: self.path / "history.csv")
    metrics = property(lambda self: self.path / "metrics.json")
    report = property(lambda self: self.path / "report.html")
    plots = property(lambda self: self.path / "plots")
    model = property(lambda self: self.path / RUN_BUNDLE_DIR)
    checkpoints = property(lambda self: self.path / "checkpoints")
    status = property(lambda self: self.path / "status.json")

    def write_config(self, cfg: Config) -> None:
        import yaml

        data = {"imgclf_version": __version__, **cfg.model_dump(mode="json")}
        atomic_write_text(self.config, yaml.safe_dump(data, sort_keys=False))

    def write_json(self, path: Path, value: Any) -> None:
        atomic_write_text(path, json.dumps(value, indent=2, allow_nan=False, default=str))

    def write_status(self, status: str, **details: Any) -> None:
        """Replace status.json (atomically) with ``status`` and ``details``, stamped with the time.

        Args:
            status: One of ``RUN_STATUSES``.
            **details: ``error`` (folded onto one line), ``epoch``, ``batch`` (each None when not
                given), or any other JSON-serialisable value.

        Raises:
            ValueError: ``status`` is not one of ``RUN_STATUSES``.
        """
        if status not in RUN_STATUSES:
            raise ValueError(
                f"Run status must be one of {', '.join(RUN_STATUSES)}; received {status!r}."
            )
        record = {"status": status, **_NO_DETAILS, **details}
        if record["error"] is not None:
            record["error"] = " ".join(str(record["error"]).split())
        record["updated"] = datetime.now().astimezone().isoformat(timespec="seconds")
        self.write_json(self.status, record)


def create_run_dir(cfg: Config, data_name: str) -> RunDir:
    """A new folder under ``cfg.run.project``: the given name, or ``<model>-<data>-<n>``.

    A given name that already exists is an error (pass --resume to continue it); a generated
    name takes the next free number.
    """
    project = Path(cfg.run.project)
    if cfg.run.name:
        path = project / cfg.run.name
        if path.exists():
            raise ConfigError(
                f"Run folder {path} already exists. Choose another --name, or continue it with "
                f"--resume {path}."
            )
    else:
        base = _slug(f"{cfg.model.name}-{Path(data_name).name or 'data'}")
        number = 1
        while (path := project / f"{base}-{number}").exists():
            number += 1
    path.mkdir(parents=True)
    for sub in ("plots", "checkpoints"):
        (path / sub).mkdir()
    return RunDir(path)


def open_run_dir(path: str | Path) -> RunDir:
    """An existing run folder (for --resume and evaluate), checked to be one."""
    if not is_run_folder(path):
        raise ConfigError(
            f"{path} is not an imgclf run folder (no {RUN_CONFIG}). Pass a folder under runs/."
        )
    return RunDir(Path(path))


def read_run_config(run: RunDir) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    data.pop("imgclf_version", None)
    return data


def read_history(run: RunDir) -> list[dict[str, Any]]:
    """history.csv as one dict per epoch (numbers as numbers; [] when there is none)."""
    import csv

    if not run.history.is_file():
        return []
    with open(run.history, newline="", encoding="utf-8") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text if text != "" else None


def read_status(run: RunDir) -> dict[str, Any]:
    """The run's status.json, with ``status``, ``error``, ``epoch``, ``batch`` and ``updated``.

    A run folder without a readable status.json (from before imgclf wrote one) is ``finished``
    when it has metrics.json, else ``unfinished``; its other keys are None.
    """
    try:
        record = json.loads(run.status.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("status"), str):
        record = {"status": "finished" if run.metrics.is_file() else "unfinished"}
    record = {**_NO_DETAILS, "updated": None, **record}
    if isinstance(record["error"], str):
        record["error"] = " ".join(record["error"].split())
    return record


def read_metrics(run: RunDir) -> dict[str, Any]:
    """The run's metrics.json, or {} when it is missing or cannot be read."""
    try:
        metrics = json.loads(run.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def require_model(path: str | Path) -> None:
    """A run folder without a model is one clear error saying why: it failed (and with what),
    was interrupted, or is still training. Bundles and runs with a model pass."""
    from imgclf.errors import ModelError

    run = RunDir(Path(path))
    if not is_run_folder(run.path) or (run.model / CONFIG_NAME).is_file():
        return
    status = read_status(run)
    fresh = f"imgclf train --config {run.config}"
    if status["status"] == "failed":
        raise ModelError(
            f"Run {run.path} failed, so it has no model: {status['error']}. Fix the cause and "
            f"train again: {fresh}"
        )
    if status["status"] == "interrupted":
        where = f" at epoch {status['epoch']}" if status.get("epoch") else ""
        raise ModelError(
            f"Run {run.path} was interrupted{where} before it saved a model. Resume it: "
            f"imgclf train --resume {run.path}"
        )
    raise ModelError(
        f"Run {run.path} has no model yet: it is still training, or it was killed (status "
        f"{status['status']}). If it is not running, resume it: imgclf train --resume {run.path}"
    )
