"""The run directory: self-describing, never silently overwritten.

``runs/<name>/`` holds config.yaml (the full resolved config, re-runnable with
``imgclf train --config``), data_report.json, history.csv, metrics.json, report.html, plots/,
model/ (the bundle) and checkpoints/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgclf._version import __version__
from imgclf.config import Config
from imgclf.errors import ConfigError
from imgclf.fileio import atomic_write_text


@dataclass(frozen=True)
class RunDir:
    """Paths of one run's files."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    config = property(lambda self: self.path / "config.yaml")
    data_report = property(lambda self: self.path / "data_report.json")
    history = property(lambda self: self.path / "history.csv")
    metrics = property(lambda self: self.path / "metrics.json")
    report = property(lambda self: self.path / "report.html")
    plots = property(lambda self: self.path / "plots")
    model = property(lambda self: self.path / "model")
    checkpoints = property(lambda self: self.path / "checkpoints")

    def write_config(self, cfg: Config) -> None:
        import yaml

        data = {"imgclf_version": __version__, **cfg.model_dump(mode="json")}
        atomic_write_text(self.config, yaml.safe_dump(data, sort_keys=False))

    def write_json(self, path: Path, value: Any) -> None:
        atomic_write_text(path, json.dumps(value, indent=2, allow_nan=False, default=str))


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
    run = RunDir(Path(path))
    if not run.config.is_file():
        raise ConfigError(
            f"{path} is not an imgclf run folder (no config.yaml). Pass a folder under runs/."
        )
    return run


def read_run_config(run: RunDir) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    data.pop("imgclf_version", None)
    return data


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"
