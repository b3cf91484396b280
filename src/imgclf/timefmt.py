"""One format for durations everywhere people read them: the epoch table, time-limit messages,
the report: '0.4s', '9.4s' (one decimal below a minute), '2m39s', '1h02m'; and the process's
age, from which a command's time budget counts."""

from __future__ import annotations

import math
from typing import Any


def format_duration(seconds: Any) -> str:
    """``seconds`` as '9.4s', '2m39s' or '1h02m'; '—' for a missing or negative value."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(value) or value < 0:
        return "—"
    tenths = round(value * 10)
    if tenths < 600:
        return f"{tenths / 10:.1f}s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def process_age() -> float:
    """Seconds since this process started (Linux's /proc; 0.0 where it cannot be read), so a
    command's budget also counts its start-up (importing torch takes seconds)."""
    import os

    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            ticks = int(stat.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        return max(0.0, since_boot - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def parse_duration(text: str) -> float:
    """Seconds from '90', '90s', '45m', '2h' or '1h30m'."""
    import re

    cleaned = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return float(cleaned)
    parts = re.fullmatch(
        r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", cleaned
    )
    if not cleaned or parts is None:
        raise ValueError(f"a duration like 90s, 45m, 2h or 1h30m, received '{text}'")
    hours, minutes, seconds = (float(p) if p else 0.0 for p in parts.groups())
    return hours * 3600 + minutes * 60 + seconds
