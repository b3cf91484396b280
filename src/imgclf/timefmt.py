"""One format for durations everywhere people read them: the epoch table, time-limit messages,
the report: '0.4s', '9.4s' (one decimal below a minute), '2m39s', '1h02m'."""

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
