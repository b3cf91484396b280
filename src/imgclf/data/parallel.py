"""Run a per-file function over many files on all cores, in order, with a progress bar."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_MIN_ITEMS_FOR_POOL = 64  # below this, starting processes costs more than it saves


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def parallel_map(
    func: Callable[[T], R],
    items: Sequence[T],
    workers: int | None = None,
    description: str = "working",
    progress: bool = True,
) -> Iterator[R]:
    """Yield ``func(item)`` for each item, in order, using a process pool when it pays off.

    ``func`` must be a module-level function (it is sent to worker processes). The pool uses
    the 'forkserver' start method where available: forking a process that already runs torch
    threads can deadlock, and spawn is slower.
    """
    workers = min(workers or available_cores(), len(items))
    with _progress(progress, description, len(items)) as advance:
        if workers <= 1 or len(items) < _MIN_ITEMS_FOR_POOL:
            for item in items:
                yield func(item)
                advance()
            return
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        chunksize = max(1, min(32, len(items) // (workers * 8)))
        with context.Pool(workers) as pool:
            for result in pool.imap(func, items, chunksize=chunksize):
                yield result
                advance()


class _progress:
    """A rich progress bar as a context manager that hands out an ``advance()`` callable."""

    def __init__(self, enabled: bool, description: str, total: int) -> None:
        self.enabled, self.description, self.total = enabled, description, total

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc_info: object) -> None:
        if self.enabled:
            self.bar.stop()
