"""Continuing a run: its own config with only the changes a resume allows, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgclf.config import Config
from imgclf.data.formats.resolve import DataLike, same_source
from imgclf.runs.rundir import RunDir, read_run_config

# What a resume may change: how long it trains (more epochs, a time limit for this session),
# where and how fast it reads, and what it prints and draws; anything else would make it another
# run.
RESUMABLE = (
    "train.epochs", "train.finetune_epochs", "train.time_limit", "train.threads",
    "train.device", "train.eval_batch_size", "run.quiet", "run.plots", "data.data_dir",
    "data.cache_dir", "data.workers", "data.download",
)  # fmt: skip


def resume_config(run: RunDir, requested: dict[str, Any], data: DataLike | None) -> Config:
    """The run's own config with the changes a resume allows, checked.

    Args:
        requested: the settings asked for, as {'section.key': value} (only those given).
        data: the data asked for, or None (the run's own).

    Raises:
        ConfigError: a setting other than RESUMABLE differs, epochs would shrink, or ``data``
            is not the run's data; the message shows how to start a new run instead.
    """
    from imgclf.config_loader import build_config, dotted_overrides
    from imgclf.errors import ConfigError

    saved = read_run_config(run)
    source = saved.get("data", {}).get("source")
    if data is None and source is None:
        raise ConfigError(
            f"{run.path} does not record its data (it was trained from Python objects): pass "
            "the same data again."
        )
    if data is not None and source is not None and not same_source(data, source):
        raise ConfigError(
            f"--resume continues {run.path} on its own data ({source}), received {data}. Omit "
            f"DATA, or train a new run on it: imgclf train {data} --config {run.config}"
        )
    before = dotted_overrides(Config.model_validate(saved).model_dump(mode="json"))
    changed = {k: v for k, v in requested.items() if _json(v) != before.get(k)}
    fixed = [key for key in changed if key not in RESUMABLE]
    if fixed:
        shown = ", ".join(f"{k} (run: {before.get(k)!r}, given: {changed[k]!r})" for k in fixed)
        sets = " ".join(f"--set {k}={_yaml(changed[k])}" for k in fixed)
        raise ConfigError(
            f"--resume continues a run with its own settings, and these differ: {shown}. A "
            "resume may change only epochs, finetune_epochs and time_limit (and device, "
            "threads, workers, folders). For other settings start a new run from its config: "
            f"imgclf train --config {run.config} {sets}"
        )
    cfg = build_config(saved, **changed)
    _check_decisions(run, cfg)
    after = dotted_overrides(cfg.model_dump(mode="json"))
    for key in ("train.epochs", "train.finetune_epochs"):
        if after[key] < before[key]:
            raise ConfigError(
                f"--resume can add epochs, not remove them: {key} was {before[key]}, received "
                f"{after[key]}. Pass at least {before[key]}."
            )
    return cfg


def _check_decisions(run: RunDir, cfg: Config) -> None:
    """A resume reads the run's decisions file again: it must be the file the run trained on
    (its sha256 in data_report.json), or the data would change under the run unsaid."""
    import json

    from imgclf.data.formats.decisions import file_sha256
    from imgclf.errors import ConfigError

    path = cfg.data.decisions
    if path is None or not Path(path).is_file() or not run.data_report.is_file():
        return  # no decisions, or a missing file that reading the data reports in one line
    recorded = json.loads(run.data_report.read_text(encoding="utf-8")).get("decisions") or {}
    if recorded.get("sha256") and recorded["sha256"] != file_sha256(path):
        raise ConfigError(
            f"--resume continues {run.path} with the decisions it trained on, but {path} has "
            f"changed since (sha256 {recorded['sha256'][:12]}... then, "
            f"{file_sha256(path)[:12]}... now): restore it, or train a new run with the new "
            f"file: imgclf train --config {run.config} --decisions {path}"
        )


def _json(value: Any) -> Any:
    """A requested value as the saved config's JSON has it (paths as text, tuples as lists)."""
    import json

    return json.loads(json.dumps(value, default=str))


def _yaml(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, default=str)


def complete_line(run: RunDir, cfg: Config, saved: dict[str, Any]) -> str | None:
    """The one line that says a finished run has nothing to resume, or None when a resume has
    work: epochs to train (or to refuse), or a finishing that failed to do again.

    Args:
        cfg: the resumed config (with the epochs asked for now).
        saved: the run's resume checkpoint.
    """
    from imgclf.runs.rundir import read_status

    status = read_status(run)
    planned = saved.get("planned") or {}
    if status["status"] != "finished" or status["error"] is not None or not planned:
        return None  # (a finished run whose finishing failed keeps the error: redo it)
    if not saved.get("stage_finished") or saved.get("stage") != len(planned) - 1:
        return None  # stopped inside its plan (a time limit): the resume trains on
    raised = _raised_epochs(run, cfg, planned)
    last = "train.finetune_epochs" if list(planned)[-1] == "finetune" else "train.epochs"
    done, total = saved["state"]["epoch"], sum(planned.values())
    if saved.get("ended_early") and set(raised) <= {last}:  # more epochs would not run
        return (
            f"{run.path} is complete: early stopping ended it at epoch {done} of {total}; "
            "nothing to resume"
        )
    if raised:
        return None
    flag = last.split(".")[1].replace("_", "-")
    return f"{run.path} is complete: {done} of {total} epochs; add epochs with --{flag} N"


def _raised_epochs(run: RunDir, cfg: Config, planned: dict[str, int]) -> list[str]:
    """The epoch settings ``cfg`` raises above both the run's config and what its last session
    planned (a resume that added epochs leaves config.yaml as it was)."""
    before = read_run_config(run).get("train", {})
    ran = {("finetune_epochs" if stage == "finetune" else "epochs"): n
           for stage, n in planned.items()}  # fmt: skip
    now = {key: getattr(cfg.train, key) for key in ("epochs", "finetune_epochs")}
    return [
        f"train.{key}" for key, value in now.items()
        if value > max(before.get(key, value), ran.get(key, 0))
    ]  # fmt: skip
