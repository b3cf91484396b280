"""How many cores this process may use: a base module (no torch, no room) that data's pools,
the Runtime's threads, the launcher and the server all read, whatever their layer."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
