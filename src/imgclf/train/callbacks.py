"""Training callbacks: a fixed set of events with explicit arguments (``logs``, ``state``).

The events, TrainState and the Callback base are ``train/events.py``'s; here are the
registry of named callbacks and the standard ones a run's config asks for.

Users add callbacks as objects (``ImageClassifier(callbacks=[...])``) or by name (YAML
``train: {callbacks: [name]}``, ``--callback name``): a name registered with
``@register_callback("name")``, or an import path ``package.module:ClassName``. Other kinds of
named callbacks share the registry: the trackers (``kind="tracker"``) register from ``track/``,
which train never imports; whoever builds a run's callbacks imports it.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError, did_you_mean
from imgclf.fileio import atomic_write_text
from imgclf.notebook import in_notebook
from imgclf.timefmt import format_duration
from imgclf.train.events import Callback, TrainState
from imgclf.train.notebook_progress import NotebookProgress
from imgclf.train.progress import ProgressPrinter

_REGISTRY: dict[str, dict[str, Callable[..., Callback]]] = {}
"""Factories by kind, then name: ``callback`` (no arguments: ``train.callbacks``, ``--callback``)
and kinds whose creator passes what they need (``tracker``: run_path and config, ``--track``)."""


def register_callback(name: str, kind: str = "callback") -> Callable:
    """Register a callback class (or a factory) under ``name``; a plain callback's factory
    takes no arguments, another kind's the keywords its creator passes to create_callback."""

    def add(factory: Callable[..., Callback]) -> Callable[..., Callback]:
        _REGISTRY.setdefault(kind, {})[name] = factory
        return factory

    return add


def list_callbacks(kind: str = "callback", *, sort: bool = True) -> list[str]:
    """The registered names of ``kind``, sorted or (``sort=False``) in the order registered."""
    names = list(_REGISTRY.get(kind, {}))
    return sorted(names) if sort else names


def create_callback(name: str, kind: str = "callback", **context: Any) -> Callback:
    """A callback by registered name (its factory given ``context``), or, for a plain
    callback, by import path 'package.module:ClassName'."""
    import importlib

    registry = _REGISTRY.get(kind, {})
    if name in registry:
        return registry[name](**context)
    module, _, attr = name.partition(":")
    if attr and kind == "callback":
        try:
            return getattr(importlib.import_module(module), attr)()
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"Callback '{name}' cannot be imported: {exc}.") from None
    raise unknown_callback(name, kind)


def unknown_callback(name: str, kind: str = "callback") -> ConfigError:
    """The one error for a name not registered as ``kind``, with the names it may be."""
    names = list_callbacks(kind, sort=kind == "callback")
    if kind != "callback":
        return ConfigError(
            f"Unknown {kind} '{name}'.{did_you_mean(name, names)} Choose one of {', '.join(names)}."
        )
    return ConfigError(
        f"Unknown callback '{name}'.{did_you_mean(name, names)} Registered: "
        f"{', '.join(names) or 'none'}; or give an import path "
        "'package.module:ClassName'."
    )


def monitored(monitor: str, has_validation: bool) -> str:
    """The metric a run watches: ``monitor`` (val_accuracy, val_loss), or its training
    counterpart (accuracy, loss) when the run has no validation split."""
    return monitor if has_validation else monitor.removeprefix("val_")


def improved(value: float, best: float | None, monitor: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` for ``monitor`` (accuracy up, loss down) by min_delta."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value > best + min_delta if "accuracy" in monitor else value < best - min_delta


class BestCheckpoint(Callback):
    """Save the weights when the epoch is the best so far (``save`` writes atomically)."""

    def __init__(self, save: Callable[[], None]) -> None:
        self.save = save

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        if state.best_epoch == epoch:
            self.save()


@register_callback("terminate_on_nan")
class TerminateOnNaN(Callback):
    """Stop when the training loss stops being a number (as Keras's TerminateOnNaN)."""

    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None:
        if not math.isfinite(logs["loss"]):
            where = f"epoch {state.epoch + 1}, batch {batch + 1}"
            state.stop_reason = f"loss is {logs['loss']} at {where}"


class EarlyStopping(Callback):
    """End the stage after ``patience`` of its epochs without an improvement of ``min_delta``."""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        rows = state.history[state.stage_start - 1 :]
        best, best_at = None, state.stage_start - 1
        for at, row in enumerate(rows, start=state.stage_start):
            if improved(row.get(self.monitor), best, self.monitor, self.min_delta):
                best, best_at = row.get(self.monitor), at
        if epoch - best_at >= self.patience:
            state.end_stage = (
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {best} at epoch {best_at})"
            )


class TimeLimit(Callback):
    """Hold a wall-clock limit (``train.time_limit``): stop inside an epoch when it is spent,
    and do not start (or go on with) an epoch that is predicted to end after it.

    - At an epoch boundary, the next epoch of the same stage is predicted from this stage's
      epochs (the longest one).
    - The first epoch of a stage (and of a resumed session) is predicted from a timing probe:
      its own first batches (at least ``probe_batches`` and ``probe_seconds``). When the run
      already has a complete epoch, an epoch that will not fit stops there; the first epoch of
      a run trains until the limit, as the model is then better than none.
    - After every batch: the limit spent stops training at once.

    Stopped inside an epoch, the loop saves that epoch's place, so a resume continues it. The
    limit is per session: a resumed run gets it again (as a platform's job limit does). A
    budget (``train.budget``) is another thing: it plans the run to fit (``budget.py``).
    """

    def __init__(self, seconds: float, probe_batches: int = 3, probe_seconds: float = 1.0):
        self.seconds = seconds
        self.probe_batches, self.probe_seconds = probe_batches, probe_seconds
        self._probe: list | None = None  # [started, batches timed] while probing an epoch

    def on_train_begin(self, state: TrainState) -> None:
        self._session_first = True

    def on_epoch_begin(self, epoch: int, state: TrainState) -> None:
        if epoch == state.stage_start or self._session_first:
            self._probe = [time.perf_counter(), 0]
        self._session_first = False

    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None:
        spent = self._spent(state)
        if spent >= self.seconds:
            where = f"epoch {state.epoch + 1} at batch {batch + 1} of {state.steps}"
            self._stop(state, f"reached in {where}", spent)
        elif self._probe is not None:
            self._probe[1] += 1
            elapsed, timed = time.perf_counter() - self._probe[0], self._probe[1]
            if timed >= self.probe_batches and elapsed >= self.probe_seconds:
                self._probe = None
                ends = spent + elapsed / timed * (state.steps - batch - 1)
                if ends > self.seconds and state.epoch > 0:
                    what = (
                        f"epoch {state.epoch + 1} would end after {format_duration(ends)} (timed "
                        f"on {timed} of its {state.steps} batches)"
                    )
                    self._stop(state, what, spent)

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        self._probe = None
        if epoch - state.stage_start + 1 >= state.stage_epochs or state.epoch >= state.epochs:
            return  # the stage ends here: the next stage's first epoch is probed
        rows = state.history[state.stage_start - 1 :]
        next_epoch = max((row["time"] for row in rows if "time" in row), default=0.0)
        spent = self._spent(state)
        if spent + next_epoch > self.seconds:
            ends = format_duration(spent + next_epoch)
            self._stop(state, f"epoch {epoch + 1} would end after {ends}", spent)

    def _stop(self, state: TrainState, what: str, spent: float) -> None:
        state.stop_reason = (
            f"time limit {format_duration(self.seconds)}: {what}; stopped after "
            f"{format_duration(spent)} with {state.epoch} of {state.epochs} epochs complete"
        )

    @staticmethod
    def _spent(state: TrainState) -> float:
        return time.perf_counter() - state.started


@contextmanager
def signals_noted(note: Callable[[str], None]) -> Iterator[None]:
    """For the block, a first SIGINT or SIGTERM calls ``note(name)`` and the work goes on; a
    second raises KeyboardInterrupt at once. Outside the main thread signals stay as they are."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[str] = []
    previous: dict[int, Any] = {}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    def handle(number: int, frame: Any) -> None:
        if seen:
            restore()  # the KeyboardInterrupt may skip the block's exit
            raise KeyboardInterrupt
        seen.append(signal.Signals(number).name)
        note(seen[0])

    previous.update({n: signal.signal(n, handle) for n in (signal.SIGINT, signal.SIGTERM)})
    try:
        yield
    finally:
        restore()


class StopOnSignal(Callback):
    """Ctrl-C (SIGINT) or SIGTERM stops training after the current batch; a second one stops
    at once (KeyboardInterrupt). The loop then saves the last full state, so the run resumes.

    The handlers are installed for the duration of training, in the main thread only.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._handlers = ExitStack()

    def on_train_begin(self, state: TrainState) -> None:
        self._handlers.enter_context(signals_noted(self._note))

    def _note(self, name: str) -> None:
        self.received = name

    def on_batch_end(self, batch: int, logs: dict, state: TrainState) -> None:
        if self.received and not state.stop_reason:
            state.stop_reason = f"interrupted ({self.received})"

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        self.on_batch_end(0, logs, state)

    def on_train_end(self, state: TrainState) -> None:
        self._handlers.close()


class HistoryCSV(Callback):
    """Rewrite ``history.csv`` after every epoch (atomically), so a killed run keeps it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        columns = list(dict.fromkeys(key for row in state.history for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(state.history)
        atomic_write_text(self.path, buffer.getvalue())


def standard_callbacks(
    train: Any,
    has_validation: bool,
    save_best: Callable[[], None],
    history: Path | None = None,
    progress: tuple[int, int] | None = None,
    run_dir: Path | None = None,
) -> list[Callback]:
    """The callbacks a run's ``train`` config asks for, in order: best checkpoint, early
    stopping, time limit, the named ``train.callbacks``, history.csv, and the progress printer
    (``progress`` = (batches per epoch, batch size)) last: in a notebook, its live display
    (which links ``run_dir``'s report at the end)."""
    monitor = monitored(train.monitor, has_validation)
    callbacks: list[Callback] = [BestCheckpoint(save_best)]
    if train.patience:
        callbacks.append(EarlyStopping(monitor, train.patience, train.min_delta))
    if train.time_limit:
        callbacks.append(TimeLimit(train.time_limit))
    callbacks += [create_callback(name) for name in train.callbacks]
    if history is not None:
        callbacks.append(HistoryCSV(history))
    if progress is not None and in_notebook():
        callbacks.append(NotebookProgress(progress[0], progress[1], run_dir))
    elif progress is not None:
        callbacks.append(ProgressPrinter(progress[0], batch_size=progress[1]))
    return callbacks
