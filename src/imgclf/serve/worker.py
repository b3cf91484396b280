"""One inference thread with a micro-batching queue.

Request handlers only decode; they queue their images and await a future. The one worker
thread gathers what is queued into batches of up to ``max_batch`` images, waiting at most
``max_wait_ms`` after the first, and computes each batch with all the cores (threads are set
once, by the server). So sixteen clients sending one image each cost about one batch of
sixteen, not sixteen batches of one, and no two forward passes fight over the cores. Other
work on the model (the Grad-CAM maps of ``?explain=true``, whose hooks must not see another
request's forward pass) is queued with ``call`` and runs on the same thread, between batches.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_STOP = object()


@dataclass
class _Job:
    images: np.ndarray
    future: Future = field(default_factory=Future)


@dataclass
class _Call:
    function: Callable[[], Any]
    future: Future = field(default_factory=Future)


@dataclass
class WorkerStats:
    """What the worker has computed: tests and /v1/model read it."""

    batches: int = 0
    images: int = 0
    largest_batch: int = 0


class InferenceWorker:
    """Runs ``score`` (uint8 (B, H, W, C) -> probabilities) for every request, in one thread."""

    def __init__(
        self,
        score: Callable[[np.ndarray], np.ndarray],
        warmup: np.ndarray,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
    ) -> None:
        self.score, self.warmup = score, warmup
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.ready = threading.Event()
        self.stats = WorkerStats()
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="imgclf-inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, images: np.ndarray) -> Future:
        """Queue a (N, H, W, C) uint8 batch; the future gives its (N, K) probabilities."""
        return self._queued(_Job(images))

    def call(self, function: Callable[[], Any]) -> Future:
        """Queue ``function`` to run alone on the worker thread; the future gives its result."""
        return self._queued(_Call(function))

    def _queued(self, job: _Job | _Call) -> Future:
        """Queue ``job``, or fail its future at once when the model failed to load."""
        if self.error is not None:
            job.future.set_exception(RuntimeError(f"the model failed to load: {self.error}"))
        else:
            self._queue.put(job)
        return job.future

    def stop(self, timeout: float | None = None) -> None:
        """Finish every queued job, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.score(self.warmup)  # first calls allocate and pick kernels: not on a request
        except BaseException as exc:  # reported by /ready and by every request
            self.error = exc
        self.ready.set()
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            if isinstance(first, _Call):
                self._call(first)
                continue
            jobs, count, after = [first], len(first.images), None
            deadline = time.monotonic() + self.max_wait
            while count < self.max_batch:
                try:
                    job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                    break
                if isinstance(job, _Call):  # run after this batch, in the order queued
                    after = job
                    break
                jobs.append(job)
                count += len(job.images)
            self._compute(jobs)
            if after is not None:
                self._call(after)
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, _Call):
                self._call(job)
            elif job is not _STOP:
                self._compute([job])

    @staticmethod
    def _call(job: _Call) -> None:
        try:
            job.future.set_result(job.function())
        except BaseException as exc:  # the request fails with it; the worker lives on
            job.future.set_exception(exc)

    def _compute(self, jobs: list[_Job]) -> None:
        try:
            images = np.concatenate([job.images for job in jobs])
            probs = np.concatenate(
                [
                    self.score(images[start : start + self.max_batch])
                    for start in range(0, len(images), self.max_batch)
                ]
            )
        except BaseException as exc:  # the requests fail with it; the worker lives on
            for job in jobs:
                job.future.set_exception(exc)
            return
        self.stats.batches += 1
        self.stats.images += len(images)
        self.stats.largest_batch = max(self.stats.largest_batch, min(len(images), self.max_batch))
        start = 0
        for job in jobs:
            job.future.set_result(probs[start : start + len(job.images)])
            start += len(job.images)
