"""`imgclf sweep DATA --space space.yaml ...` (an Optuna study of runs) and
`imgclf sweep report NAME` (its compare.html with the study's own pictures)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import (
    BatchSizeOpt,
    ConfigOpt,
    DataArg,
    DataDirOpt,
    DeviceOpt,
    EpochsOpt,
    ImageSizeOpt,
    ModelOpt,
    ModeOpt,
    PlotsOpt,
    SeedOpt,
    SetOpt,
    TestSplitOpt,
    ValSplitOpt,
    key_values,
)


class _DefaultRun(TyperGroup):
    """`imgclf sweep DATA ...` is `imgclf sweep run DATA ...`; `report` is the other verb."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(
    cls=_DefaultRun,
    help=(
        "Sweeps on Optuna: imgclf sweep DATA --space space.yaml --trials N --budget 30m; "
        "imgclf sweep report NAME."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

_Project = Annotated[Path, typer.Option(help="Folder of run folders (and the study journal).")]
_Storage = Annotated[
    str | None,
    typer.Option(
        help="A journal file or a database URL (postgresql://...).  [default: "
        "PROJECT/sweeps.journal]",
        show_default=False,
    ),
]


@sweep_app.command("run", short_help="Search a space with trials (the default verb).")
def sweep_run(
    data: DataArg,
    space: Annotated[Path, typer.Option(help="YAML: config keys to ranges or lists.")],
    trials: Annotated[int, typer.Option(help="Trials in the study, in all.")] = 20,
    budget: Annotated[
        str | None, typer.Option(help="The whole sweep's time: 30m, 2h (cuts the last trial).")
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Study name; an existing one is continued.")
    ] = None,
    storage: _Storage = None,
    sampler: Annotated[str, typer.Option(help="tpe, random or grid.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median, halving or none.")] = "median",
    enqueue: Annotated[
        Path | None, typer.Option(help="A config to run as the next trial (e.g. a tutorial's).")
    ] = None,
    refit: Annotated[
        bool, typer.Option("--refit", help="Train the best settings again on train + val.")
    ] = False,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    image_size: ImageSizeOpt = None,
    val_split: ValSplitOpt = None,
    test_split: TestSplitOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    set_: SetOpt = None,
    track: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Mirror each trial into tensorboard or mlflow."),
    ] = None,
    project: _Project = Path("runs"),
    plots: PlotsOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the trials of an Optuna study on DATA: each an ordinary run in the ledger (tagged
    with its study and trial), pruned when poor, all within --budget."""
    shared = {
        "model": model, "mode": mode, "epochs": epochs, "batch_size": batch_size,
        "image_size": image_size, "val_split": val_split, "test_split": test_split,
        "seed": seed, "device": device, "data_dir": data_dir, "project": project, "quiet": True,
        "plots": plots, "run.track": track, **key_values(set_),
    }  # fmt: skip
    with user_errors():
        result = api.sweep(
            data, space, trials=trials, budget=budget, study=study, storage=storage,
            sampler=sampler, pruner=pruner, enqueue=enqueue, refit=refit, config=config,
            say=terminal.print_line, **shared,
        )  # fmt: skip
    _print_result(result, project)


def _print_result(result, project: Path) -> None:
    """The trials by state, the notes, the best settings, the refit run and the report."""
    states = [row["state"] for row in result.trials]
    summary = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    terminal.print_line(f"study {result.study}: {len(states)} trials ({summary}); {result.ran} now")
    for note in result.notes:
        terminal.print_line(note)
    if result.best:
        best = result.best
        terminal.print_line(
            f"best: trial {best['trial']} ({best['run']}), value {best['value']:.4f}: "
            + ", ".join(f"{key}={_short(value)}" for key, value in best["params"].items())
        )
    if result.refit:
        terminal.print_line(f"refit: {project / result.refit}")
    terminal.print_line(f"Report: imgclf sweep report {result.study} --project {project}")


def _short(value: object) -> str:
    """A float to 4 significant digits (a sampled lr: 0.001958, not 0.0019578897201213002)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@sweep_app.command("report", short_help="compare.html of a study, with its history.")
def sweep_report(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The study.")],
    project: _Project = Path("runs"),
    storage: _Storage = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the page.  [default: PROJECT/sweeps/NAME]", show_default=False
        ),
    ] = None,
) -> None:
    """compare.html of the study's runs plus the optimisation history and parameter
    importances (Optuna's) and the score-against-time Pareto front, each also a PNG."""
    with user_errors():
        comparison = api.sweep_report(name, project=project, storage=storage, out=out)
    terminal.print_line(f"Report: {comparison.files['page'].resolve()}")
