"""Experiments: the project's runs from its ledger, one run's record, external scores, removal,
comparisons, and the sidecar that ties a Kaggle submission to the run that made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgclf.layout import is_run_folder
from imgclf.runs.registry import COLUMNS
from imgclf.runs.registry import cell_text as cell_text  # the tables' one style, for the CLI
from imgclf.runs.registry import column_headers as column_headers

RUN_COLUMNS = COLUMNS  # the keys of every row of ``runs``, in order (external scores follow)
SIDECAR_SUFFIX = ".imgclf.json"


def runs(
    project: str | Path = "runs",
    *,
    where: dict[str, Any] | None = None,
    sort: str | None = None,
    best: str | None = None,
    limit: int | None = None,
    warn=None,
) -> list[dict[str, Any]]:
    """The project's runs (newest first, or by ``sort``), one row each: settings, scores
    (external ones too, by name; None where a run has none), status, training and wall time.
    See runs.registry.query_runs."""
    from imgclf.runs.registry import query_runs

    return query_runs(project, where=where, sort=sort, best=best, limit=limit, warn=warn)


def ranking_disagreements(rows: list[dict[str, Any]], score: str) -> list[tuple[str, str, str]]:
    """Pairs of ``runs`` rows that the external ``score`` ranks the other way round from
    their test (else val) accuracy: (ahead by ours, ahead by the score, our column)."""
    from imgclf.runs.registry import ranking_disagreements as disagreements

    return disagreements(rows, score)


def show_run(run: str | Path, project: str | Path | None = None) -> dict[str, Any]:
    """Everything the ledger knows of one run: the config, data fingerprint, runtime, stop,
    metrics, timings and external scores. ``run`` is a run folder, a name in ``project``, or
    a Kaggle submission written by ``imgclf predict --format kaggle``."""
    from imgclf.runs.registry import find_run

    project, name = resolve_run(run, project)
    return find_run(project, name)


def score_run(
    run: str | Path,
    name: str,
    value: float,
    note: str | None = None,
    project: str | Path | None = None,
) -> dict[str, Any]:
    """Attach an external score (e.g. ``kaggle_public``) to a run; it keeps every score."""
    from imgclf.runs.registry import add_score

    project, run_name = resolve_run(run, project)
    return add_score(project, run_name, name, value, note)


def remove_runs(runs: list[str | Path], project: str | Path | None = None) -> list[Path]:
    """Delete runs' folders and record it in the ledger (every run is checked first)."""
    from imgclf.runs.registry import remove_runs as remove

    resolved = [resolve_run(run, project) for run in runs]
    projects = {folder for folder, _ in resolved}
    if len(projects) > 1:
        from imgclf.errors import ConfigError

        raise ConfigError("Remove runs of one project at a time.")
    return remove(projects.pop(), [name for _, name in resolved]) if resolved else []


def compare(
    runs: list[str | Path] | None = None,
    *,
    project: str | Path | None = None,
    where: dict[str, Any] | None = None,
    out: str | Path | None = None,
):
    """Compare runs (named, or those matching ``where``): the settings that differ, scores
    and wall times, and ``compare.html`` with the learning curves, score against time (Pareto
    front), parallel coordinates, per-class F1 deltas of the first two and seed groups.

    Args:
        runs: run folders or names; None: every run matching ``where``.
        project: the project folder (default: the runs' own, else ``runs``).
        out: folder for compare.html and its PNGs (default: PROJECT/compare).

    Returns:
        The Comparison; ``files`` maps each picture and the page to its path.
    """
    from imgclf.runs.compare import compare_runs
    from imgclf.runs.compare_report import write_compare_report

    resolved = [resolve_run(run, project) for run in runs or []]
    folder = resolved[0][0] if resolved else Path(project or "runs")
    comparison = compare_runs(folder, [name for _, name in resolved] or None, where=where)
    comparison.files = write_compare_report(comparison, out or folder / "compare")
    return comparison


def resolve_run(run: str | Path, project: str | Path | None = None) -> tuple[Path, str]:
    """(project folder, run name) for a run folder path, a run name, or a submission file."""
    path = Path(run)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if path.is_file() and sidecar.is_file():
        path = Path(json.loads(sidecar.read_text(encoding="utf-8"))["run"])
    if project is None and is_run_folder(path):
        return path.parent, path.name
    return Path(project or "runs"), path.name


def prediction_output(output: str | Path | None, overwrite: bool = False) -> Path:
    """The file ``write_predictions`` would write, checked before predicting so that a refused
    ``output`` costs nothing."""
    from imgclf.predict.predictions import output_path

    return output_path(output, overwrite)


def prediction_grid_output(path: str | Path, overwrite: bool = False) -> Path:
    """The PNG ``save_prediction_grid`` would write, checked before predicting."""
    from imgclf.predict.grid import grid_path

    return grid_path(path, overwrite)


def save_prediction_grid(predictions, path: str | Path) -> Path:
    """The first 25 predicted images in a grid titled with their answers (R3's), as a PNG."""
    from imgclf.predict.grid import save_grid

    return save_grid(predictions, path)


def write_predictions(
    predictions,
    output: str | Path | None,
    model,
    format: str = "csv",
    overwrite: bool = False,
    **kwargs,
) -> Path:
    """Write ``predictions`` as ``format`` (csv or kaggle) and return the file written.

    ``output`` None writes ``predictions.csv`` or, when it exists, the next free
    ``predictions-N.csv``; an existing ``output`` is replaced only with ``overwrite``. A Kaggle
    file gets a sidecar naming the run, so ``imgclf runs score SUBMISSION NAME VALUE`` finds it.
    """
    from imgclf.fileio import atomic_write_text

    path = predictions.to_csv(prediction_output(output, overwrite), format=format, **kwargs)
    run = Path(model) if isinstance(model, str | Path) else None
    if format == "kaggle" and run is not None and is_run_folder(run):
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        record = {"run": str(run.resolve()), "submission": path.name}
        atomic_write_text(sidecar, json.dumps(record, indent=2))
    return path
