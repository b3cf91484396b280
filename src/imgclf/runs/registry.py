"""The runs of a project folder, from its ledger, with their key settings and metrics
(``imgclf runs list``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgclf.config import ModelConfig, TrainConfig
from imgclf.errors import ConfigError, did_you_mean
from imgclf.layout import is_run_folder
from imgclf.runs.ledger import append_record, fold_runs, ledger_path, read_ledger
from imgclf.runs.recording import config_hash, finished_fields, flatten_config
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
    "wall_seconds",
    "images_per_second",
    "percent_of_peak",
    "status",
    "stop",
    "study",
    "trial",
    "error",
)
"""The keys of every row, in this order."""

# The recipes of models/recipes.py by name: importing that registry imports imgclf.models and
# with it torch, which `imgclf runs list` must not wait for. tests/test_startup.py keeps the
# two in step; a recipe registered at run time is not seen here (its runs show their mode).
BUILTIN_RECIPES = frozenset(
    {"mlp", "cnn", "deep_cnn", "small_cnn", "animal_cnn", "fast_cifar", "fast_mnist"}
)

_HEADERS = {
    "val_accuracy": "val acc", "test_accuracy": "test acc", "train_seconds": "train s",
    "wall_seconds": "wall s", "images_per_second": "images/s", "percent_of_peak": "% of peak",
}  # fmt: skip


def column_headers(keys: list[str]) -> list[str]:
    """The tables' headers for columns and dotted config keys, in one style: words, no dots
    or underscores ('batch size'); a config key by its last part, with as many parts before
    it as it takes to be told apart from the other columns ('model name' beside 'name')."""
    depth = dict.fromkeys(keys, 1)
    while True:
        headers = {key: _header(key, depth[key]) for key in keys}
        taken = [headers[key] for key in keys]
        clashing = [key for key in keys
                    if taken.count(headers[key]) > 1 and depth[key] <= key.count(".")]  # fmt: skip
        if not clashing:
            return taken
        for key in clashing:
            depth[key] += 1


def _header(key: str, depth: int) -> str:
    return _HEADERS.get(key) or " ".join(key.split(".")[-depth:]).replace("_", " ")


def cell_text(column: str, value: Any) -> str:
    """A value as the tables show it: accuracies to 4 decimals, seconds to 1, other numbers
    short, '-' for none."""
    if value is None:
        return "-"
    if not isinstance(value, float):
        return str(value)
    if column.endswith("accuracy"):
        return f"{value:.4f}"
    return f"{value:.1f}" if column.endswith("seconds") else f"{value:g}"


def list_runs(project: str | Path = "runs", warn=None) -> list[dict[str, Any]]:
    """One row per run of the project's ledger (newest first): name, model, data, settings,
    scores, time.

    Run folders the ledger does not know (a project from before the ledger, or a ledger that
    was deleted) are added to it first, rebuilt from their files. ``warn`` receives a line per
    unreadable ledger line.
    """
    return query_runs(project, warn=warn)


def run_states(project: str | Path = "runs", warn=None) -> dict[str, dict[str, Any]]:
    """Every run's folded ledger state, in the order they started (see ledger.fold_runs)."""
    project = Path(project)
    if not project.is_dir():
        return {}
    read = read_ledger(project)
    if warn is not None:
        for line in read.warnings(ledger_path(project)):
            warn(line)
    known = {record["run"] for record in read.records}
    folders = [RunDir(p) for p in project.iterdir() if is_run_folder(p)]
    folders.sort(key=lambda run: run.config.stat().st_mtime_ns)
    adopted = [run for run in folders if run.name not in known]
    for run in adopted:
        _adopt(project, run)
    if adopted:
        read = read_ledger(project)
    return fold_runs(read.records)


def _adopt(project: Path, run: RunDir) -> None:
    """Ledger records rebuilt from a run folder's config.yaml, status.json and metrics.json."""
    config = read_run_config(run)
    status = read_status(run)
    started = {"config": config, "config_hash": config_hash(config), "rebuilt": True}
    if status["status"] not in ("finished", "failed", "interrupted"):
        started["status"] = status["status"]
    append_record(project, "started", run.name, **started)
    if status["status"] == "finished":
        append_record(project, "finished", run.name, **finished_fields(_read_json(run.metrics)))
    elif status["status"] in ("failed", "interrupted"):
        details = {key: status[key] for key in ("error", "epoch", "batch")}
        append_record(project, status["status"], run.name, stop=status["status"], **details)


def _row(state: dict[str, Any]) -> dict[str, Any]:
    config = state.get("config") or {}
    metrics = state.get("metrics") or {}
    train, model, data = config.get("train", {}), config.get("model", {}), config.get("data", {})
    best, seconds = state.get("best_epoch"), (state.get("timings") or {}).get("train")
    planned = {"epochs_planned": state.get("epochs_planned")}
    efficiency = state.get("efficiency") or {}
    return {
        "name": state["run"],
        "model": model.get("name"),
        "mode": "scratch" if _from_scratch(model) else model.get("mode"),
        "data": Path(str(data.get("source"))).name if data.get("source") else "-",
        "image_size": data.get("image_size"),
        "optimizer": train.get("optimizer"),
        "lr": train.get("lr"),
        "batch_size": train.get("batch_size"),
        "epochs": f"{_or(state.get('epochs_run'), '?')}/{_epochs_planned(config, planned) or '?'}",
        "best_epoch": int(best) if isinstance(best, int | float) else None,
        "val_accuracy": metrics.get("val", {}).get("accuracy"),
        "test_accuracy": metrics.get("test", {}).get("accuracy"),
        "train_seconds": _rounded(seconds, 1),
        "wall_seconds": _rounded(state.get("wall_seconds"), 1),
        "images_per_second": _rounded(efficiency.get("compute_images_per_second"), 1),
        "percent_of_peak": _rounded(efficiency.get("percent_of_peak"), 1),
        "status": state.get("status"),
        "stop": state.get("stop"),
        "study": state.get("study"),
        "trial": state.get("trial"),
        "error": " ".join(state["error"].split()) if state.get("error") else None,
        **{score["name"]: score["value"] for score in state.get("external", [])},  # latest wins
    }


def _rounded(value: Any, digits: int) -> float | None:
    return round(float(value), digits) if isinstance(value, int | float) else None


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _from_scratch(model: dict[str, Any]) -> bool:
    """Recipes and custom layer stacks always train from random weights, whatever the mode."""
    name = str(model.get("name"))
    return name == "custom" or bool(model.get("layers")) or name in BUILTIN_RECIPES


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


def query_runs(
    project: str | Path = "runs",
    *,
    where: dict[str, Any] | None = None,
    sort: str | None = None,
    best: str | None = None,
    limit: int | None = None,
    warn=None,
) -> list[dict[str, Any]]:
    """The rows of ``list_runs`` that match ``where``, sorted, cut to ``limit``.

    Args:
        where: {key: value}; a key is a column (``status``, ``model``, an external score's
            name) or a dotted config key (``train.optimizer``); values compare as text.
        sort: a column to sort by, best first: highest first, except seconds and losses.
        best: the one best run by this column (sort, then limit 1).
        limit: at most this many rows.

    Raises:
        ConfigError: an unknown column to sort by, or a limit below 1.
    """
    states = run_states(project, warn)
    newest = list(reversed(states.values()))
    pairs = list(zip(_every_score([_row(state) for state in newest]), newest, strict=True))
    if pairs:
        _check_keys(pairs, list(where or {}), "--where")
        _check_keys(pairs, [k for k in (best, sort) if k is not None and "." not in k], "--sort")
    for key, value in (where or {}).items():
        pairs = [(row, state) for row, state in pairs if _matches(row, state, key, value)]
    rows = [row for row, _ in pairs]
    key = best or sort
    if key is not None:
        rows = _sorted(rows, key)
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, received {limit}.")
    return rows[: 1 if best else limit]


def _every_score(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row with every external score of the project (None where a run has none), so
    all rows have the same keys whatever was scored."""
    names = dict.fromkeys(key for row in rows for key in row if key not in COLUMNS)
    return [{**row, **{name: row.get(name) for name in names}} for row in rows]


def find_run(
    project: str | Path, name: str, states: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The ledger state of run ``name`` in ``project`` (from ``states`` when already read).

    Raises:
        ConfigError: no such run (with the closest names).
    """
    states = run_states(project) if states is None else states
    name = Path(name).name if Path(name).parent == Path(project) else name
    if name not in states:
        known = list(states)
        hint = did_you_mean(name, known) or (f" Its runs: {_some(known)}." if known else "")
        raise ConfigError(
            f"No run '{name}' in {project}.{hint} See imgclf runs list --project {project}."
        )
    return states[name]


def _some(names: list[str], shown: int = 5) -> str:
    """The last ``shown`` names (the newest runs), and how many more there are."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[-shown:]) + more


def add_score(
    project: str | Path, name: str, score: str, value: float, note: str | None = None
) -> dict[str, Any]:
    """Attach an external score (a Kaggle leaderboard's, say) to a run; returns the record."""
    find_run(project, name)
    if not score.strip() or score in COLUMNS:
        raise ConfigError(
            f"A score needs its own name (e.g. kaggle_public), not '{score}'. Names in use as "
            f"columns: {', '.join(COLUMNS)}."
        )
    return append_record(project, "score", name, name=score, value=float(value), note=note)


def remove_runs(project: str | Path, names: list[str]) -> list[Path]:
    """Delete the runs' folders and record their removal; every name is checked first."""
    import shutil

    every = run_states(project)
    states = [find_run(project, name, every) for name in names]
    removed = []
    for state in states:
        folder = Path(project) / state["run"]
        if folder.exists():
            shutil.rmtree(folder)
        append_record(project, "removed", state["run"])
        removed.append(folder)
    return removed


def _matches(row: dict[str, Any], state: dict[str, Any], key: str, value: Any) -> bool:
    found = _config_keys(state).get(key) if "." in key else row.get(key)
    return found is not None and str(found).lower() == str(value).lower()


def _check_keys(pairs: list[tuple[dict, dict]], keys: list[str], flag: str) -> None:
    columns = {key for row, _ in pairs for key in row}
    for key in keys:
        if key in columns or ("." in key and any(key in _config_keys(s) for _, s in pairs)):
            continue
        raise ConfigError(
            f"Unknown key '{key}' for {flag}.{did_you_mean(key, sorted(columns))} Use a column "
            f"({', '.join(sorted(columns))}) or a config key such as train.optimizer."
        )


def _config_keys(state: dict[str, Any]) -> dict[str, Any]:
    return flatten_config(state.get("config") or {})


def _sorted(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    lower_first = key.endswith(("seconds", "loss"))
    present = [row for row in rows if isinstance(row.get(key), int | float)]
    missing = [row for row in rows if not isinstance(row.get(key), int | float)]
    return sorted(present, key=lambda row: row[key], reverse=not lower_first) + missing


def ranking_disagreements(rows: list[dict[str, Any]], score: str) -> list[tuple[str, str, str]]:
    """Pairs of runs that an external ``score`` orders the other way round from their own
    test accuracy (val accuracy for runs without a test split): (better by ours, better by
    the score, which of ours compared). Ties agree with anything."""
    pairs = []
    for own in ("test_accuracy", "val_accuracy"):
        scored = [
            row for row in rows
            if isinstance(row.get(score), int | float) and isinstance(row.get(own), int | float)
        ]  # fmt: skip
        if len(scored) >= 2:
            for i, a in enumerate(scored):
                for b in scored[i + 1 :]:
                    if (a[own] - b[own]) * (a[score] - b[score]) < 0:
                        ours, theirs = (a, b) if a[own] > b[own] else (b, a)
                        pairs.append((ours["name"], theirs["name"], own))
            return pairs
    return pairs
