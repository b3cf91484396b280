"""An Optuna study for a sweep: its storage, sampler and pruner, and the trials a killed
process left running.

The default storage is Optuna's journal file in the project folder (``sweeps.journal``): it
survives kill -9 and needs no server. A URL (``postgresql://…``, ``sqlite:///…``) opens an
RDB storage, so several machines can work on one study.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving", "none")
JOURNAL = "sweeps.journal"
# seconds before the journal's lock, left by a process killed while it appended (kill -9), is
# taken over: Optuna's default of 30 made every resume after such a kill wait half a minute;
# an append holds the lock for milliseconds, so 5 s still leaves a slow shared disk its time
LOCK_GRACE = 5
OPEN_ATTEMPTS = 4  # a database URL: tries, for workers that create its tables at once


def open_storage(storage: str | None, project: Path):
    """The journal file in ``project`` (or ``storage`` when it is a path), or an RDB
    storage for a URL; an unopenable one is a ConfigError naming it."""
    import optuna

    if storage is None or "://" not in storage:
        path = Path(storage) if storage else project / JOURNAL
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            journal = optuna.storages.journal
            lock = journal.JournalFileSymlinkLock(str(path), grace_period=LOCK_GRACE)
            backend = journal.JournalFileBackend(str(path), lock_obj=lock)
        except OSError as exc:
            raise ConfigError(f"Sweep storage {path} cannot be opened: {exc}.") from None
        return optuna.storages.JournalStorage(backend)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(storage)
        except Exception as exc:  # the database driver's own errors, of many kinds
            reason = " ".join(str(exc).split())[:300]
            # workers that start together on a new database race to create its tables
            if _creation_race(exc) and attempt + 1 < OPEN_ATTEMPTS:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise ConfigError(f"Sweep storage {storage} cannot be opened: {reason}") from None


def _creation_race(exc: Exception) -> bool:
    """A table, type or version row that another worker created first. PostgreSQL reports a
    table or type created meanwhile as a ProgrammingError (DuplicateTable, DuplicateObject),
    SQLite as an OperationalError, a version row as an IntegrityError."""
    try:
        from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
    except ImportError:
        return False
    return isinstance(exc, IntegrityError) or (
        isinstance(exc, (OperationalError, ProgrammingError)) and "already exists" in str(exc)
    )


def make_sampler(name: str, seed: int, grid: dict[str, list[Any]] | None = None):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid or {}, seed=seed)
    raise ConfigError(f"Unknown sampler '{name}'. Samplers: {', '.join(SAMPLERS)}.")


def make_pruner(name: str):
    """Median (the default: prune below the median of earlier trials at the same epoch, after
    5 trials and the first epoch), successive halving, or none."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"Unknown pruner '{name}'. Pruners: {', '.join(PRUNERS)}.")


def open_study(name: str, storage, sampler, pruner, direction: str):
    """The study ``name`` in ``storage``, created when new, continued when it exists (its
    direction must then agree)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep says what it does
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, pruner=pruner,
        direction=direction, load_if_exists=True,
    )  # fmt: skip
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"Study '{name}' {study.direction.name.lower()}s its value; this sweep would "
            f"{direction} it. Use another --study name."
        )
    return study


def load_study(name: str, storage):
    """An existing study; an unknown name is a ConfigError with the study names there."""
    import optuna

    names = optuna.get_all_study_names(storage)
    if name not in names:
        from imgclf.errors import did_you_mean

        raise ConfigError(
            f"No study '{name}' in the sweep storage.{did_you_mean(name, names)} Studies: "
            f"{', '.join(names) or 'none'}."
        )
    return optuna.load_study(study_name=name, storage=storage)


def worker() -> dict[str, Any]:
    """Who runs a trial, so a later sweep can tell a trial whose process died."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def abandoned_trials(study) -> list:
    """Trials left RUNNING by a process on this host that no longer exists (kill -9)."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    left = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("worker", {})
        if owner.get("host") == host and not _alive(int(owner.get("pid", -1))):
            left.append(trial)
    return left


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_trial(study, trial) -> None:
    """Mark an abandoned trial failed: it is not counted as done, and a new trial replaces it."""
    from optuna.trial import TrialState

    study._storage.set_trial_user_attr(trial._trial_id, "abandoned", True)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
