"""Comparing runs: only the settings that differ, the scores and wall times, the learning
curves, per-class F1, and runs that differ only by seed grouped as mean ± std."""

from __future__ import annotations

import functools
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError
from imgclf.runs.recording import flatten_config, is_place
from imgclf.runs.registry import COLUMNS, find_run, query_runs, run_states
from imgclf.runs.rundir import RunDir, read_history, read_metrics

_ROW_KEYS = set(COLUMNS)  # the rest of a row's keys are external scores
_MODES = frozenset({"feature_extract", "finetune", "scratch"})


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

    @property
    def outcomes(self) -> list[str]:
        """Each run's outcome (see ``outcome``): finished, pruned, cut, failed, ..."""
        return [outcome(row) for row in self.rows]

    def __repr__(self) -> str:
        columns, rows = self.table()
        lines = ["  ".join(columns), *("  ".join(_shown(v) for v in row) for row in rows)]
        return f"Comparison of {len(self.runs)} runs:\n" + "\n".join(lines)

    def plot_pareto(self):
        """Score against wall time of the runs with both, the front over finished runs only."""
        from imgclf.evaluate.compare_plots import pareto_figure

        score, rows, outcomes = self.score, self.rows, self.outcomes
        timed = [i for i, row in enumerate(rows)
                 if row.get("wall_seconds") is not None and row.get(score) is not None]  # fmt: skip
        return pareto_figure(
            [rows[i]["name"] for i in timed],
            [rows[i]["wall_seconds"] for i in timed],
            [rows[i][score] for i in timed],
            [timed.index(i) for i in self.front()],
            score,
            [outcomes[i] for i in timed],
        )

    def _repr_html_(self) -> str:
        """The table of what differs and the scores, and score against time, for a notebook."""
        from imgclf import notebook

        columns, rows = self.table()
        shown = [[_shown(value) for value in row] for row in rows]
        return notebook.card(
            f"Comparison of {len(self.runs)} runs (ranked by {self.score})",
            notebook.table(columns, shown), notebook.png(self.plot_pareto(), dpi=55),
        )  # fmt: skip

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """(columns, rows): name, the outcome (when not every run finished), the differing
        settings, scores, the external scores some run has, training and wall seconds."""
        external = [key for row in self.rows for key in row
                    if key not in _ROW_KEYS and row[key] is not None]  # fmt: skip
        outcomes = self.outcomes
        status = ["status"] if set(outcomes) != {"finished"} else []
        columns = ["name", *status, *self.settings, "val_accuracy", "test_accuracy"]
        columns += [*dict.fromkeys(external), "train_seconds", "wall_seconds"]
        rows = []
        for i, row in enumerate(self.rows):
            values = {"status": outcomes[i]} | {k: v[i] for k, v in self.settings.items()}
            rows.append([values[key] if key in values else row.get(key) for key in columns])
        return columns, rows

    def front(self) -> list[int]:
        """Indices of the runs on the Pareto front of wall seconds and ``score``, ordered by
        seconds; only finished runs take part (a pruned, cut or failed trial never does)."""
        timed = [row.get("wall_seconds") is not None and row.get(self.score) is not None
                 for row in self.rows]  # fmt: skip
        outcomes = self.outcomes
        eligible = [i for i, ok in enumerate(timed) if ok and outcomes[i] == "finished"]
        points = [(self.rows[i]["wall_seconds"], self.rows[i][self.score]) for i in eligible]
        return [eligible[i] for i in pareto_front(points)]


def outcome(row: dict[str, Any]) -> str:
    """How a run ended, as a comparison marks it: its status, except that a finished run the
    pruner stopped is ``pruned``, and a sweep trial stopped by the sweep's deadline is ``cut``
    (Optuna counts both as pruned: their scores are not the trial's full result)."""
    status = row.get("status") or "unknown"
    if status != "finished":
        return status
    if row.get("stop") == "pruned":
        return "pruned"
    return "cut" if row.get("stop") == "time_limit" and row.get("trial") is not None else status


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
    flat = [flatten_config(state.get("config") or {}) for state in states]
    used = [_used(config, row["mode"]) for config, row in zip(flat, rows, strict=True)]
    folders = [RunDir(project / state["run"]) for state in states]
    return Comparison(
        runs=[state["run"] for state in states],
        settings=_differing(used),
        rows=rows,
        histories={run.name: read_history(run) for run in folders},
        class_f1={run.name: _class_f1(run) for run in folders},
        seed_groups=_seed_groups(rows, used),
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
    """The keys whose values differ among the runs that use them (None where a run does not)."""
    keys = dict.fromkeys(key for config in flat for key in config)
    differing = {}
    for key in keys:
        if is_place(key):
            continue
        values = [config.get(key) for config in flat]
        used = [
            json.dumps(config[key], sort_keys=True, default=str) for config in flat if key in config
        ]
        if len(set(used)) > 1:
            differing[key] = values
    return differing


def _used(config: dict[str, Any], mode: str | None) -> dict[str, Any]:
    """The flat config without the settings its run's mode (a row's: ``scratch`` for recipes
    and custom stacks) does not use."""
    if mode is None:  # a record without its model section: nothing to leave out
        return config
    return {key: value for key, value in config.items() if mode in modes_using(key)}


@functools.cache
def modes_using(key: str) -> frozenset[str]:
    """The modes that use a dotted config key, from the schema's own description of it: a
    setting described as for ``finetune`` is finetune's, one for a ``frozen backbone`` or its
    ``embedding cache`` is feature_extract's and finetune's; any other is every mode's."""
    field = _schema_field(key)
    text = (field.description or "").lower() if field is not None else ""
    if re.search(r"\bfinetune\b", text):
        return frozenset({"finetune"})
    if text.startswith("frozen backbone") or "embedding cache" in text:
        return frozenset({"feature_extract", "finetune"})
    return _MODES


def _schema_field(key: str):
    """The pydantic field of a dotted config key (None for keys the schema lacks)."""
    from imgclf.config import Config

    section: Any = Config
    field = None
    for part in key.split("."):
        fields = getattr(section, "model_fields", {})
        if part not in fields:
            return None
        field = fields[part]
        section = field.annotation
    return field


def _class_f1(run: RunDir) -> dict[str, float]:
    metrics = read_metrics(run)
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


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
