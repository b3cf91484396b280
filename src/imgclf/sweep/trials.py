"""A study's trials, as a sweep counts, queues, repairs and lists them (Optuna's state plus the
attributes imgclf keeps on each trial: its run, worker, stop, wall seconds, error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError


def counted(study) -> int:
    """Trials that ended (complete, pruned, failed), not those a killed process abandoned."""
    from optuna.trial import TrialState

    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(
        not t.user_attrs.get("abandoned") for t in study.get_trials(deepcopy=False, states=ended)
    )


def grid_exhausted(study) -> bool:
    import optuna

    sampler = study.sampler
    return isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(study)


def forget_abandoned(study, project: Path, say) -> None:
    """Trials a killed process left running: failed in the study (not counted), interrupted in
    the ledger, and their settings queued to run again."""
    from imgclf.runs.ledger import append_record
    from imgclf.sweep.study import abandoned_trials, fail_trial

    for trial in abandoned_trials(study):
        fail_trial(study, trial)
        run = trial.user_attrs.get("run")
        if run:
            append_record(project, "interrupted", run, stop="interrupted",
                          error="its sweep process was killed")  # fmt: skip
        kept = {k: v for k, v in trial.user_attrs.items() if k in ("overrides", "enqueued")}
        study.enqueue_trial(trial.params, user_attrs={**kept, "retry_of": trial.number})
        say(f"trial {trial.number} ({run}) was left running by a killed process: run again")


def enqueue_config(study, space, enqueue: str | Path | dict[str, Any]) -> None:
    """The config as the next trial: its values of the space's keys as the trial's params,
    every other setting it gives as the trial's own overrides."""
    from imgclf.config_loader import build_config, load_yaml
    from imgclf.runs.recording import flatten_config
    from imgclf.sweep.space import encode

    values = dict(enqueue) if isinstance(enqueue, dict) else load_yaml(enqueue)
    full = flatten_config(build_config(values).model_dump(mode="json"))  # validated
    given = flatten_config(values)  # as written (image_size 224, not its resolved (224, 224))
    params = {key: given.get(key, full[key]) for key in space.keys}
    for param in space.params:
        value = params[param.key]
        if param.kind == "choice" and value not in [list(c) if isinstance(c, tuple) else c
                                                    for c in param.choices]:  # fmt: skip
            raise ConfigError(
                f"The enqueued config's {param.key} = {value!r} is not in the space's choices "
                f"({param.describe()}): add it to the space."
            )
        if param.kind != "choice" and not (param.low <= value <= param.high):
            raise ConfigError(
                f"The enqueued config's {param.key} = {value!r} is outside the space's range "
                f"({param.describe()})."
            )
    extra = {key: full[key] for key in given if key in full and key not in params}
    params = {p.key: encode(params[p.key]) if p.kind == "choice" else params[p.key]
              for p in space.params}  # fmt: skip
    study.enqueue_trial(params, user_attrs={"overrides": extra, "enqueued": True},
                        skip_if_exists=True)  # fmt: skip


def trial_rows(study) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, run, stop, wall seconds and its params."""
    from imgclf.sweep.space import decode

    rows = []
    for trial in study.get_trials(deepcopy=False):
        rows.append({
            "trial": trial.number,
            "state": "abandoned" if trial.user_attrs.get("abandoned") else trial.state.name.lower(),
            "value": trial.value,
            "run": trial.user_attrs.get("run"),
            "stop": trial.user_attrs.get("stop"),
            "wall_seconds": trial.user_attrs.get("wall_seconds"),
            "enqueued": bool(trial.user_attrs.get("enqueued")),
            "error": trial.user_attrs.get("error"),
            "params": {key: decode(value) for key, value in trial.params.items()},
        })  # fmt: skip
    return rows


def best_row(study, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        number = study.best_trial.number
    except ValueError:
        return None
    return next(row for row in rows if row["trial"] == number)
