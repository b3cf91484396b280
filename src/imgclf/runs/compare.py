"""Comparing runs: only the settings that differ, the scores and wall times, the learning
curves, per-class F1, and runs that differ only by seed grouped as mean ± std."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError
from imgclf.runs.recording import flatten_config, is_place
from imgclf.runs.registry import COLUMNS, find_run, query_runs, run_states
from imgclf.runs.rundir import RunDir, read_history

_ROW_KEYS = {*COLUMNS, "wall_seconds"}  # the rest of a row's keys are external scores


@dataclass
class Comparison:
    """The compared runs (in the order given) and what tells them apart."""

    runs: list[str]
    settings: dict[str, list[Any]]  # dotted key -> each run's value, only keys that differ
    rows: list[dict[str, Any]]  # the runs' list rows: scores, external scores, seconds
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    class_f1: dict[str, dict[str, float]] = field(default_factory=dict)  # test, else val
    seed_groups: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # compare.html and its PNGs, once written

    @property
    def score(self) -> str:
        """The score the comparison ranks by: test accuracy when every run has one, else val."""
        has_test = all(row.get("test_accuracy") is not None for row in self.rows)
        return "test_accuracy" if has_test else "val_accuracy"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """(headers, rows): name, the differing settings, scores, external scores, training
        and wall seconds."""
        external = [key for row in self.rows for key in row if key not in _ROW_KEYS]
        external = list(dict.fromkeys(external))
        headers = ["name", *self.settings, "val_accuracy", "test_accuracy", *external]
        headers += ["train_seconds", "wall_seconds"]
        rows = []
        for i, row in enumerate(self.rows):
            values = [self.settings[key][i] for key in self.settings]
            rest = [row.get(key) for key in headers[1 + len(self.settings) :]]
            rows.append([row["name"], *values, *rest])
        return headers, rows


def compare_runs(
    project: str | Path = "runs", names: list[str] | None = None, where: dict | None = None
) -> Comparison:
    """Compare the named runs of ``project``, or those matching ``where`` (at least two).

    Raises:
        ConfigError: an unknown run, or fewer than two runs to compare.
    """
    project = Path(project)
    every = run_states(project)
    if names:
        states = [find_run(project, name, every) for name in names]
        by_name = {row["name"]: row for row in query_runs(project)}
        rows = [by_name[state["run"]] for state in states]
    else:
        rows = list(reversed(query_runs(project, where=where)))  # oldest first
        states = [every[row["name"]] for row in rows]
    if len(rows) < 2:
        raise ConfigError(
            f"Compare needs at least two runs; {len(rows)} matched in {project}. Name them "
            "(imgclf runs compare RUN RUN ...) or widen --where."
        )
    walls = [state.get("wall_seconds") for state in states]
    rows = [{**row, "wall_seconds": wall} for row, wall in zip(rows, walls, strict=True)]
    flat = [flatten_config(state.get("config") or {}) for state in states]
    settings = _differing(flat)
    folders = [RunDir(project / state["run"]) for state in states]
    return Comparison(
        runs=[state["run"] for state in states],
        settings=settings,
        rows=rows,
        histories={run.name: read_history(run) for run in folders},
        class_f1={run.name: _class_f1(run) for run in folders},
        seed_groups=_seed_groups(rows, flat),
    )


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (lower seconds, higher score),
    ordered by seconds."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _differing(flat: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = dict.fromkeys(key for config in flat for key in config)
    differing = {}
    for key in keys:
        if is_place(key):
            continue
        values = [config.get(key) for config in flat]
        if len({json.dumps(value, sort_keys=True, default=str) for value in values}) > 1:
            differing[key] = values
    return differing


def _class_f1(run: RunDir) -> dict[str, float]:
    try:
        metrics = json.loads(run.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    split = metrics.get("test") or metrics.get("val") or {}
    report = split.get("report", {})
    return {
        name: scores["f1-score"]
        for name, scores in report.items()
        if isinstance(scores, dict) and name not in ("macro avg", "weighted avg", "micro avg")
    }


def _seed_groups(rows: list[dict[str, Any]], flat: list[dict[str, Any]]) -> list[dict]:
    """Runs whose settings differ only by seed: their score as mean ± std."""
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(flat):
        rest = {k: v for k, v in config.items() if k != "seed" and not is_place(k)}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(i)
    result = []
    for members in groups.values():
        seeds = {flat[i].get("seed") for i in members}
        if len(members) < 2 or len(seeds) < 2:
            continue
        entry: dict[str, Any] = {"runs": [rows[i]["name"] for i in members], "n": len(members)}
        for score in ("val_accuracy", "test_accuracy"):
            values = [rows[i][score] for i in members if rows[i].get(score) is not None]
            if len(values) >= 2:
                entry[score] = (statistics.fmean(values), statistics.stdev(values))
        result.append(entry)
    return result
