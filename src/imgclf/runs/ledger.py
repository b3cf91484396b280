"""The project's ledger: ``runs/ledger.jsonl``, one JSON line per event of a run.

Events: ``started`` (who, what, on which data, where), ``finished`` / ``failed`` /
``interrupted`` (how far, how well, how long), ``score`` (an external score such as a Kaggle
leaderboard's) and ``removed``. Nothing is rewritten in place: the state of a run is the fold
of its events in order (``fold_runs``).

Appends are one ``write`` of a whole line to a file opened with O_APPEND, then ``fsync``:
readers see whole lines, concurrent writers never interleave, and kill -9 during an append
leaves at most a truncated last line. The reader skips a line that does not parse, with a
warning, and the next append first ends such a line, so nothing else is lost.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

LEDGER_NAME = "ledger.jsonl"
LEDGER_FORMAT = 1
EVENTS = ("started", "finished", "failed", "interrupted", "score", "removed")


@dataclass
class LedgerRead:
    """The records of a ledger in order, and the lines that could not be read (number, why)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def warnings(self, path: Path) -> list[str]:
        return [f"{path}:{line}: skipped ({why})" for line, why in self.skipped]


def ledger_path(project: str | Path) -> Path:
    return Path(project) / LEDGER_NAME


def append_record(project: str | Path, event: str, run: str, **fields: Any) -> dict[str, Any]:
    """Append one event of ``run`` to the project's ledger (made on first use); return it.

    Raises:
        ValueError: ``event`` is not one of EVENTS.
    """
    if event not in EVENTS:
        raise ValueError(f"Ledger event must be one of {', '.join(EVENTS)}; received {event!r}.")
    record = {
        "format": LEDGER_FORMAT,
        "event": event,
        "run": run,
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        **fields,
    }
    line = json.dumps(record, allow_nan=False, default=str, separators=(",", ":")) + "\n"
    path = ledger_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if _ends_mid_line(fd):  # a line cut by kill -9: end it, so this one stands alone
            line = "\n" + line
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def read_ledger(project: str | Path) -> LedgerRead:
    """Every record that parses, in order; an unreadable line is skipped and reported."""
    path = ledger_path(project)
    result = LedgerRead()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return result
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            result.skipped.append((number, "not a complete JSON line; cut by a crash?"))
            continue
        if not isinstance(record, dict) or record.get("event") not in EVENTS or "run" not in record:
            result.skipped.append((number, "not an imgclf ledger record"))
            continue
        result.records.append(record)
    return result


def fold_runs(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One state per run, in the order the runs started: each event's fields update the run's
    (``status`` follows the latest status event, unless a rebuilt ``started`` names its own),
    ``external`` collects the score events, and ``removed`` drops the run."""
    runs: dict[str, dict[str, Any]] = {}
    for record in records:
        name = record["run"]
        event = record["event"]
        if event == "removed":
            runs.pop(name, None)
            continue
        state = runs.setdefault(name, {"run": name, "external": []})
        if event == "score":
            state["external"].append(
                {key: record.get(key) for key in ("name", "value", "note", "time")}
            )
            continue
        fields = {k: v for k, v in record.items() if k not in ("format", "event", "run", "time")}
        state.update(fields)
        if event != "started":
            state["status"] = event
        elif "status" not in fields:
            state["status"] = "running"
        state["started" if event == "started" else "updated"] = record["time"]
    return runs


def _ends_mid_line(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
