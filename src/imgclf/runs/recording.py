"""Recording a run as it goes: status.json in its folder and its events in the project's ledger.

``recording`` writes ``running`` and the ``started`` event (who, what, on which data, where),
then, when the block ends, ``finished`` (how far, how well, how long), ``interrupted`` (where)
or ``failed`` (why), in both places.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf._version import __version__
from imgclf.config import Config
from imgclf.errors import ImgclfError, TrainingInterrupted
from imgclf.runs.ledger import append_record
from imgclf.runs.rundir import RunDir, read_metrics

# Where and how fast a run reads and prints: not what it trains (left out of the config hash
# and of comparisons), with the whole run section.
PLACE_KEYS = frozenset({
    "imgclf_version", "data.data_dir", "data.cache_dir", "data.workers", "data.download",
    "train.threads", "train.eval_batch_size", "train.device",
})  # fmt: skip


def is_place(key: str) -> bool:
    """Whether the dotted config ``key`` says where or how fast, not what, a run trains."""
    return key in PLACE_KEYS or key == "run" or key.startswith("run.")


STOP_KINDS = (
    "complete",
    "early_stop",
    "time_limit",
    "budget_cut",
    "pruned",
    "interrupted",
    "failed",
)


@dataclass
class Outcome:
    """What the recorded block hands back for the ``finished`` event."""

    metrics: dict[str, Any] = field(default_factory=dict)


def config_hash(cfg: Config | dict[str, Any]) -> str:
    """A digest of the settings that decide what is trained (not where or how it is read)."""
    values = cfg.model_dump(mode="json") if isinstance(cfg, Config) else cfg
    kept = {k: v for k, v in flatten_config(values).items() if not is_place(k)}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as {'train.lr': 0.01, 'model.head.pooling': 'avg', ...}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_config(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def started_fields(cfg: Config, data: str, runtime: dict[str, Any], **extra: Any) -> dict:
    """The ``started`` event's fields: versions, the config and its hash, the data (and the
    decisions applied to it), where."""
    from imgclf.runtime import cpu_model

    return {
        "imgclf_version": __version__,
        "git_sha": git_sha(Path(__file__).resolve().parent),  # imgclf's own commit
        "config_hash": config_hash(cfg),
        "config": cfg.model_dump(mode="json"),
        "data_fingerprint": data,
        "seed": cfg.seed,
        "runtime": runtime,
        "cpu": cpu_model(),
        "study": cfg.run.study,
        "trial": cfg.run.trial,
        "parent": cfg.run.parent,
        **decisions_fields(cfg),
        **extra,
    }


def decisions_fields(cfg: Config) -> dict[str, Any]:
    """The decisions file a run applies (``data.decisions``), by name and content: its sha256
    says which decisions the run trained with even after the file is edited. {} without one."""
    from imgclf.data.formats.decisions import file_sha256
    from imgclf.data.formats.files import display_path

    path = cfg.data.decisions
    if path is None:
        return {}
    digest = file_sha256(path) if path.is_file() else None  # (read moments ago, unless removed)
    return {"decisions": {"file": display_path(path), "sha256": digest}}


def finished_fields(metrics: dict[str, Any]) -> dict[str, Any]:
    """The ``finished`` event's fields: how far, the stop kind, the scores and the timings."""
    summary = {}
    for split in ("val", "test"):
        if split in metrics:
            scores = metrics[split]
            macro = scores.get("report", {}).get("macro avg", {}).get("f1-score")
            summary[split] = {"accuracy": scores.get("accuracy"), "loss": scores.get("loss"),
                              "macro_f1": macro}  # fmt: skip
            if scores.get("without_leaks"):
                summary[split]["without_leaks"] = scores["without_leaks"]
    return {
        "epochs_planned": metrics.get("epochs_planned"),
        "epochs_run": metrics.get("epochs_run"),
        "best_epoch": metrics.get("best_epoch"),
        "best_val": metrics.get("best_val"),
        "final_val": metrics.get("final_val"),
        "stop": stop_kind("finished", metrics.get("stop_reason")),
        "stop_reason": metrics.get("stop_reason"),
        "metrics": summary,
        "timings": metrics.get("timings", {}),
        "wall_seconds": metrics.get("timings", {}).get("total"),
        "efficiency": metrics.get("efficiency", {}),
        "calibration": metrics.get("calibration"),
    }


def stop_kind(status: str, reason: str | None) -> str:
    """One of STOP_KINDS for a run's status and the loop's stop reason."""
    if status in ("interrupted", "failed"):
        return status
    text = (reason or "").lower()
    for prefix, kind in (("time limit", "time_limit"), ("budget", "budget_cut"),
                         ("pruned", "pruned"), ("loss is", "failed"),
                         ("interrupted", "interrupted")):  # fmt: skip
        if text.startswith(prefix):
            return kind
    return "early_stop" if text else "complete"


@contextmanager
def recording(
    run: RunDir, started: dict[str, Any], finished_before: bool = False
) -> Iterator[Outcome]:
    """status.json says running, then finished, interrupted or failed with the error; the
    project's ledger gets the same events, with ``started`` and the outcome's metrics.

    A resumed run that had finished (``finished_before``) is never downgraded by an error: its
    model and scores are still there, so it stays finished, with the error beside it (and a
    later resume, seeing the error, finishes it again).
    """
    project = run.path.parent
    run.write_status("running")
    append_record(project, "started", run.name, **started)
    outcome = Outcome()
    try:
        yield outcome
    except TrainingInterrupted as exc:
        run.write_status("interrupted", epoch=exc.epoch, batch=exc.batch)
        append_record(project, "interrupted", run.name, epoch=exc.epoch, batch=exc.batch,
                      stop="interrupted")  # fmt: skip
        raise
    except KeyboardInterrupt:
        run.write_status("interrupted")
        append_record(project, "interrupted", run.name, stop="interrupted")
        raise
    except Exception as exc:
        error = readable_error(exc)
        if finished_before:
            run.write_status("finished", error=error)
            metrics = read_metrics(run)
            append_record(project, "finished", run.name, **finished_fields(metrics), error=error)
        else:
            run.write_status("failed", error=error)
            append_record(project, "failed", run.name, error=error, stop="failed")
        raise
    run.write_status("finished")
    # error None: an error of an earlier session of the run no longer stands
    append_record(project, "finished", run.name, **finished_fields(outcome.metrics), error=None)


def readable_error(exc: BaseException) -> str:
    """One line for the ledger and status.json: an imgclf error's own message; any other
    exception with its type, so a bare ``KeyError: 1402...`` never reads as the number alone."""
    text = " ".join(str(exc).split())
    if isinstance(exc, ImgclfError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def git_sha(folder: Path) -> str | None:
    """The commit checked out in the git work tree whose tracked files include ``folder``'s
    (imgclf from a clone, installed editable); None otherwise, also for a folder that only
    lies inside a work tree untracked (a wheel in a project's .venv)."""
    tracked = _git(folder, "ls-files", "--error-unmatch", "--", ".")
    sha = _git(folder, "rev-parse", "HEAD") if tracked is not None else None
    return sha if sha is not None and len(sha) == 40 else None


def _git(folder: Path, *args: str) -> str | None:
    """The output of ``git -C folder ARGS``, or None when it fails (or git is missing)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
