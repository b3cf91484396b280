"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Every writer in imgclf goes through ``atomic_path``: one temporary-name scheme (a hidden
sibling ``.NAME.<random>.tmp``), flushed to disk before the rename, removed if writing fails.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; when the block ends it is synced to disk
    and renamed over ``path``; if the block fails it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically.

    The file gets the usual mode for the umask (unlike mkstemp's 0600): reports and CSVs are
    for people to read.
    """
    with atomic_path(path) as tmp, open(tmp, "x", encoding="utf-8", newline="") as handle:
        handle.write(text)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
