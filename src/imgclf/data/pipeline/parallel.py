"""Run a per-file function over many files on all cores, in order, with a progress bar.

``parallel_map`` uses processes: for decoding alone (building the training cache).
``threaded_map`` uses threads and a bounded read-ahead: for decoding while the caller computes
on the results (prediction), since Pillow's decoders and resizers release the GIL.
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from imgclf.cores import available_cores
from imgclf.progressbar import progress_bar

T = TypeVar("T")
R = TypeVar("R")

_MIN_ITEMS_FOR_POOL = 64  # below this, starting processes costs more than it saves


def parallel_map(
    func: Callable[[T], R],
    items: Sequence[T],
    workers: int | None = None,
    description: str = "working",
    progress: bool = True,
) -> Iterator[R]:
    """Yield ``func(item)`` for each item, in order, using a process pool when it pays off.

    ``func`` must be a module-level function or a partial of one (it is sent to worker
    processes).
    """
    workers = min(workers or available_cores(), len(items))
    with progress_bar(progress, description, len(items)) as advance:
        if workers <= 1 or len(items) < _MIN_ITEMS_FOR_POOL:
            for item in items:
                yield func(item)
                advance()
            return
        chunksize = max(1, min(32, len(items) // (workers * 8)))
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*use of fork.*", category=DeprecationWarning
            )
            pool = _pool_context().Pool(workers)
        with pool:
            for result in pool.imap(func, items, chunksize=chunksize):
                yield result
                advance()


def threaded_map(
    func: Callable[[T], R],
    items: Sequence[T],
    workers: int | None = None,
    description: str = "working",
    progress: bool = True,
    ahead: int = 64,
) -> Iterator[R]:
    """Yield ``func(item)`` for each item, in order, from ``workers`` threads (None: the
    cores) that run at most ``ahead`` items before the consumer: decoding overlaps the
    caller's computing, and memory stays bounded on any number of files.

    Measured on 2 cores, decoding photos for ONNX Runtime inference (Lite0, 224 px): 178
    img/s with 2 decoding threads, 164 decoding in turn, 163 with a pool of 2 processes.
    """
    workers = max(1, min(workers or available_cores(), len(items) or 1))
    pending: deque = deque()
    with progress_bar(progress, description, len(items)) as advance:
        with ThreadPoolExecutor(workers, thread_name_prefix="imgclf-decode") as pool:
            feed = iter(items)
            try:
                for item in feed:
                    pending.append(pool.submit(func, item))
                    if len(pending) >= ahead:
                        yield pending.popleft().result()
                        advance()
                while pending:
                    yield pending.popleft().result()
                    advance()
            finally:  # a consumer that stops early leaves no work queued
                for future in pending:
                    future.cancel()


def _pool_context() -> multiprocessing.context.BaseContext:
    """'fork' where the OS has it, as torch's DataLoader does; else 'spawn'.

    forkserver and spawn re-run the caller's main script in every worker: a script without an
    ``if __name__ == "__main__"`` guard would recurse, and one that imports torch pays for it
    per worker. The workers here only run Pillow and NumPy, so forking is safe even when torch
    threads exist in the parent; Python 3.12+'s warning about that case is silenced locally.
    """
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")
