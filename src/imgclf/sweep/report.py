"""A study's own pictures for compare.html: the optimisation history and Optuna's parameter
importances (matplotlib Figures without pyplot, as the rest of the report; Optuna's own plots
need plotly)."""

from __future__ import annotations

from typing import Any


def study_figures(study) -> dict[str, tuple[str, Any]]:
    """{title: (file stem, figure)}: the history, and the importances when Optuna can compute
    them (at least two complete trials with differing params)."""
    figures = {"optimisation history": ("history", history_figure(study))}
    importances = param_importances(study)
    if importances:
        figures["parameter importances (Optuna's default evaluator)"] = (
            "importances",
            importance_figure(importances),
        )
    return figures


def param_importances(study) -> dict[str, float]:
    import warnings

    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    with warnings.catch_warnings():  # few trials: Optuna warns the importances are equal
        warnings.simplefilter("ignore", UserWarning)
        try:
            return optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):  # e.g. every complete trial with the same params
            return {}


def history_figure(study):
    """Each trial's value by trial number (pruned and cut trials at their last report), and
    the best so far as a step line."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    from optuna.trial import TrialState

    figure = Figure(figsize=(7, 3.6), layout="constrained")
    axes = figure.subplots()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    maximize = study.direction.name == "MAXIMIZE"
    best, steps = None, []
    for state, colour, label in ((TrialState.COMPLETE, "tab:blue", "complete"),
                                 (TrialState.PRUNED, "tab:grey", "pruned or cut")):  # fmt: skip
        points = [(t.number, _value(t)) for t in study.get_trials(deepcopy=False, states=(state,))]
        points = [(n, v) for n, v in points if v is not None]
        if points:
            axes.scatter(*zip(*points, strict=True), color=colour, label=label, s=18)
    for trial in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                        key=lambda t: t.number):  # fmt: skip
        if best is None or (trial.value > best if maximize else trial.value < best):
            best = trial.value
        steps.append((trial.number, best))
    if steps:
        axes.step(*zip(*steps, strict=True), where="post", color="tab:orange", label="best")
    axes.set_xlabel("trial")
    axes.set_ylabel("objective (monitored validation metric)")
    axes.legend(loc="best", fontsize="small")
    axes.set_title(f"study {study.study_name}")
    return figure


def importance_figure(importances: dict[str, float]):
    from matplotlib.figure import Figure

    names = list(importances)[::-1]
    figure = Figure(figsize=(7, 0.4 * len(names) + 1.2), layout="constrained")
    axes = figure.subplots()
    axes.barh(names, [importances[name] for name in names], color="tab:blue")
    axes.set_xlabel("importance (share of the objective's variance)")
    return figure


def _value(trial) -> float | None:
    if trial.value is not None:
        return trial.value
    reports = trial.intermediate_values
    return reports[max(reports)] if reports else None
