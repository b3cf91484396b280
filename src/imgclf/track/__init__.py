"""Optional experiment tracking: one training callback per tracker (``--track NAME``).

The run folder stays the record; a tracker mirrors it into a tool people already browse:
the resolved config as hyperparameters, each epoch's numbers, and at the run's end its final
scores (and, for MLflow, report.html and the model bundle). The libraries are optional
(``pip install 'imgclf[track]'``) and imported only when a tracker is created, so importing
imgclf stays cheap and a missing one is a one-line ConfigError before training starts.
Trackers are callbacks of the registry's kind ``tracker`` (created with the run folder and the
config); importing this package registers them, so whoever creates them imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError
from imgclf.train.callbacks import (
    Callback,
    create_callback,
    list_callbacks,
    register_callback,
    unknown_callback,
)


@register_callback("tensorboard", kind="tracker")
def _tensorboard(run_path: Path, config: dict) -> Callback:
    from imgclf.track.tensorboard import TensorBoardTracker

    return TensorBoardTracker(Path(run_path), config)


@register_callback("mlflow", kind="tracker")
def _mlflow(run_path: Path, config: dict) -> Callback:
    from imgclf.track.mlflow import MLflowTracker

    return MLflowTracker(Path(run_path), config)


TRACKERS = tuple(list_callbacks("tracker", sort=False))
"""The names ``create_tracker`` (and ``--track``) accepts: the registry's kind ``tracker``."""


def create_tracker(name: str, run_path: Path, config: dict) -> Callback:
    """The tracking callback ``name`` for the run folder ``run_path``.

    Args:
        name: one of ``TRACKERS``.
        run_path: the run folder (its parent is the project folder).
        config: the run's resolved config, a nested JSON-able dict (logged as hyperparameters).

    Raises:
        ConfigError: ``name`` is unknown, or its library is not installed.
    """
    return create_callback(name, kind="tracker", run_path=run_path, config=config)


def require(name: str, project: Path) -> None:
    """Check, before a run folder exists, that tracker ``name`` can be created for a run in
    ``project``: a known name whose libraries are installed (the same ConfigErrors)."""
    import importlib.util

    if name not in list_callbacks("tracker"):
        raise unknown_callback(name, kind="tracker")
    packages = ["tensorboard"]
    if name == "mlflow":
        from imgclf.track.mlflow import tracking_uri

        sqlite = tracking_uri(Path(project))[0].startswith("sqlite")
        packages = ["mlflow"] + (["sqlalchemy", "alembic"] if sqlite else [])
    for package in packages:
        if importlib.util.find_spec(package) is None:
            raise missing(name, package)


def missing(tracker: str, package: str) -> ConfigError:
    """The one-line error for a tracker whose optional library is not installed."""
    return ConfigError(
        f"--track {tracker} needs the {package} package: pip install 'imgclf[track]'."
    )


def flatten(config: dict) -> dict[str, Any]:
    """The config as dotted keys (``train.lr``, as the ledger flattens it); a leaf stays an int,
    float, str or bool, and anything else (None, lists) becomes its str(), as trackers take
    only scalars."""
    from imgclf.runs.recording import flatten_config

    return {
        key: value if isinstance(value, int | float | str | bool) else str(value)
        for key, value in flatten_config(config).items()
    }


def numeric(logs: dict) -> dict[str, float]:
    """An epoch's numbers, by name: the epoch itself (the step) and strings (stage) left out."""
    return {k: float(v) for k, v in logs.items() if k != "epoch" and _is_number(v)}


def final_metrics(metrics: dict) -> dict[str, float]:
    """The run's headline numbers from metrics.json, under ``final/`` so they never land on an
    epoch curve of the same name (the evaluated val_accuracy is not the last epoch's): each
    split's accuracy, loss and top-k, the best epoch and its monitored value, epochs run, and
    the seconds of each part (``final/wall_seconds`` the whole run). Per-class reports are left
    to report.html: with many classes they would be thousands of metrics."""
    final: dict[str, float] = {}
    for split in ("val", "test"):
        scores = metrics.get(split)
        if not isinstance(scores, dict):
            continue
        for name in ("accuracy", "loss"):
            final[f"{split}_{name}"] = scores.get(name)
        for name, value in (scores.get("top_k") or {}).items():
            final[f"{split}_{name}"] = value
    best = metrics.get("best_val") or {}
    final.update({f"best_{k}": v for k, v in best.items() if k != "epoch"})
    final["best_epoch"] = metrics.get("best_epoch", best.get("epoch"))
    final["epochs_run"] = metrics.get("epochs_run")
    timings = metrics.get("timings") or {}
    final["wall_seconds"] = timings.get("total")
    final.update({f"seconds_{k}": v for k, v in timings.items() if k != "total"})
    return {f"final/{k}": float(v) for k, v in final.items() if _is_number(v)}


def _is_number(value: Any) -> bool:
    """An int or float (NaN too: a loss that diverged is worth seeing), not a bool or None."""
    return isinstance(value, int | float) and not isinstance(value, bool)
