"""The command line: a thin typed shell over the Python API (imgclf.api).

Errors imgclf raises on purpose print one clear line and exit with code 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from imgclf import terminal
from imgclf._version import __version__
from imgclf.cli_options import (
    AugmentOpt,
    BatchSizeOpt,
    CacheDirOpt,
    ConfigOpt,
    DataArg,
    DataDirOpt,
    EpochsOpt,
    ImageSizeOpt,
    LabelColumnOpt,
    LrOpt,
    ModelOpt,
    ModeOpt,
    PathColumnOpt,
    QuietOpt,
    SeedOpt,
    SetOpt,
    SplitColumnOpt,
    TestSplitOpt,
    ValSplitOpt,
    key_values,
    parse_unfreeze,
    schema_option,
)
from imgclf.cli_runs import runs_app
from imgclf.errors import ImgclfError

app = typer.Typer(
    name="imgclf",
    help="Labelled images in; a trained, evaluated, comparable, deployable classifier out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: wraps at words on a terminal, never in pipes
)
_state = {"debug": False}
app.add_typer(runs_app, name="runs")


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn ImgclfError into one red line and exit code 2 (unless --debug); an interrupted run
    says how to resume it and exits with 130, as a shell does on Ctrl-C."""
    from imgclf.errors import TrainingInterrupted

    try:
        yield
    except TrainingInterrupted as exc:
        terminal.print_warning(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except ImgclfError as exc:
        if _state["debug"]:
            raise
        terminal.print_error(str(exc))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        if _state["debug"]:
            raise
        terminal.print_warning("interrupted; files already written are complete")
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgclf {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for imgclf errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def inspect(
    data: DataArg,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write inspect.json and samples.png.  [default: runs/inspect/NAME]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    grid: Annotated[bool, typer.Option(help="Draw the 5x5 sample grid.")] = True,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheDirOpt = None,
    download: Annotated[
        bool | None,
        typer.Option(help="Download missing built-in sets."),
    ] = None,
    val_split: ValSplitOpt = None,
    test_split: TestSplitOpt = None,
    seed: SeedOpt = None,
    path_column: PathColumnOpt = None,
    label_column: LabelColumnOpt = None,
    split_column: SplitColumnOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Decoding processes.  [default: all cores]", show_default=False),
    ] = None,
) -> None:
    """Count classes, describe the images and list every problem before training."""
    from imgclf import api

    with _user_errors():
        report = api.inspect(
            data,
            out=out or api.default_inspect_dir(data),
            config=config,
            grid=grid,
            progress=not as_json,
            data_dir=data_dir,
            cache_dir=cache_dir,
            download=download,
            val_split=val_split,
            test_split=test_split,
            seed=seed,
            path_column=path_column,
            label_column=label_column,
            split_column=split_column,
            workers=workers,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    from imgclf.data.report_table import render_data_report

    terminal.console().print(render_data_report(report))


@app.command()
def summary(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL", help="Recipe or timm name, a YAML config or a model bundle folder."
        ),
    ],
    input_size: Annotated[int | None, typer.Option(help="Square input side in pixels.")] = None,
    classes: Annotated[int, typer.Option(help="Number of classes.")] = 10,
    channels: Annotated[int, typer.Option(help="Image channels: 1 or 3.")] = 3,
    depth: Annotated[int, typer.Option(help="Expand backbone blocks this many levels.")] = 1,
    mode: ModeOpt = None,
    unfreeze: Annotated[
        str | None, typer.Option(help="finetune: N last blocks, 'all' or names a,b.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Layers, output shapes and trainable / frozen parameter counts, as Keras prints them."""
    from imgclf import api

    with _user_errors():
        result = api.summarize(
            model,
            input_size=input_size,
            classes=classes,
            channels=channels,
            depth=depth,
            config=config,
            mode=mode,
            unfreeze=parse_unfreeze(unfreeze),
        )
    result.print(terminal.console())


@app.command()
def train(
    data: Annotated[
        str | None,
        typer.Argument(metavar="DATA", help="Class folders, .csv, .npz or a built-in name."),
    ] = None,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    image_size: ImageSizeOpt = None,
    optimizer: Annotated[
        str | None, schema_option("train.optimizer", "adam, adamw, sgd or rmsprop.")
    ] = None,
    lr: LrOpt = None,
    schedule: Annotated[
        str | None, schema_option("train.schedule", "constant, cosine or onecycle.")
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="Local pretrained weight file.")] = None,
    unfreeze: Annotated[
        str | None, schema_option("model.unfreeze", "finetune: N last blocks, 'all' or a,b.")
    ] = None,
    augment: AugmentOpt = None,
    set_: SetOpt = None,
    callback: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="Add a callback, repeatable: a registered name or package.module:ClassName.",
        ),
    ] = None,
    val_split: ValSplitOpt = None,
    test_split: TestSplitOpt = None,
    path_column: PathColumnOpt = None,
    label_column: LabelColumnOpt = None,
    split_column: SplitColumnOpt = None,
    patience: Annotated[
        int | None, schema_option("train.patience", "Early stopping after N flat epochs.")
    ] = None,
    finetune_epochs: Annotated[
        int | None,
        schema_option("train.finetune_epochs", "finetune: epochs of stage 2, after the head."),
    ] = None,
    finetune_lr: Annotated[
        float | None,
        schema_option("train.finetune_lr", "finetune: stage 2 peak lr.", default="--lr"),
    ] = None,
    embedding_cache: Annotated[
        bool | None,
        typer.Option(
            "--embedding-cache/--no-embedding-cache",
            help="Train the head on embeddings computed once.  [default: on]",
            show_default=False,
        ),
    ] = None,
    augment_views: Annotated[
        int | None,
        schema_option("train.augment_views", "Augmented views per image in the embedding cache."),
    ] = None,
    progressive_sizes: Annotated[
        str | None, typer.Option(help="Smaller sizes to train at first: 128,160.")
    ] = None,
    time_limit: Annotated[
        str | None, typer.Option(help="Wall-clock limit of this session: 90s, 45m, 2h.")
    ] = None,
    seed: SeedOpt = None,
    name: Annotated[
        str | None,
        typer.Option(help="Run folder name.  [default: MODEL-DATA-N]", show_default=False),
    ] = None,
    project: Annotated[Path | None, schema_option("run.project", "Folder of run folders.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this run folder.")] = None,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Train a classifier: a run folder with the model, metrics, plots and report.html."""
    from imgclf.classifier import ImageClassifier

    with _user_errors():
        overrides = {
            "mode": mode, "epochs": epochs, "batch_size": batch_size, "image_size": image_size,
            "optimizer": optimizer, "lr": lr, "schedule": schedule, "weights": weights,
            "unfreeze": parse_unfreeze(unfreeze), "val_split": val_split, "test_split": test_split,
            "patience": patience, "finetune_epochs": finetune_epochs, "finetune_lr": finetune_lr,
            "embedding_cache": embedding_cache, "augment_views": augment_views,
            "progressive_sizes": progressive_sizes, "time_limit": time_limit, "seed": seed,
            "name": name, "project": project, "quiet": quiet or None, "data_dir": data_dir,
            "path_column": path_column, "label_column": label_column,
            "split_column": split_column, "train.callbacks": callback,
            **key_values(augment, "augment"), **key_values(set_),
        }  # fmt: skip
        classifier = ImageClassifier(model=model, config=config, **overrides)
        if resume is None and data is None:
            data = classifier.get_config().data.source
        if resume is None and data is None:
            from imgclf.errors import ConfigError

            raise ConfigError("No data: pass DATA (a folder, .csv, .npz or built-in name).")
        classifier.fit(data, resume=resume)
    _print_result(classifier.metrics_, classifier.run_dir_, quiet=classifier.config_.run.quiet)


@app.command("lr-find")
def lr_find(
    data: DataArg,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    stage: Annotated[
        str | None, typer.Option(help="Stage to test: train, head or finetune (default: first).")
    ] = None,
    num_steps: Annotated[int, typer.Option(help="Batches to train (at least 5).")] = 100,
    start_lr: Annotated[float, typer.Option(help="First learning rate.")] = 1e-7,
    end_lr: Annotated[float, typer.Option(help="Last learning rate.")] = 10.0,
    out: Annotated[Path, typer.Option(help="Folder for lr_find.png and .csv.")] = Path("lr-find"),
    batch_size: BatchSizeOpt = None,
    image_size: ImageSizeOpt = None,
    augment: AugmentOpt = None,
    set_: SetOpt = None,
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Find a learning rate: train briefly with a growing lr, plot the loss, suggest one."""
    from imgclf import api

    with _user_errors():
        overrides = {
            "model": model, "mode": mode, "batch_size": batch_size, "image_size": image_size,
            "seed": seed, "data_dir": data_dir,
            **key_values(augment, "augment"), **key_values(set_),
        }  # fmt: skip
        result = api.lr_find(
            data,
            config=config,
            stage=stage,
            num_steps=num_steps,
            start_lr=start_lr,
            end_lr=end_lr,
            out=out,
            progress=not quiet,
            **overrides,
        )
    key = "finetune_lr" if result.stage == "finetune" else "lr"
    terminal.print_line(f"stage tested: {result.stage}")
    terminal.print_line(f"steps: {result.steps} of {result.num_steps}, {result.stop_reason}")
    terminal.print_line(
        f"suggested lr: {result.suggestion:.3g} (set {key}; minimum loss at "
        f"{result.minimum:.3g}, steepest descent at {result.steepest:.3g})"
    )
    terminal.print_line(f"plot: {(out / 'lr_find.png').resolve()}")


def _print_result(metrics: dict, run_dir: Path, quiet: bool = False) -> None:
    """The scores and the report's path (the stop reason too when no progress printed it)."""
    for split in ("val", "test"):
        if split in metrics:
            m = metrics[split]
            terminal.print_line(
                f"{split}: accuracy {m['accuracy']:.4f}, macro F1 "
                f"{m['report']['macro avg']['f1-score']:.4f}, loss {m['loss']:.4f}"
            )
    if metrics.get("stop_reason") and quiet:
        terminal.print_line(f"stopped: {metrics['stop_reason']}")
    terminal.print_line(f"Report: {(Path(run_dir) / 'report.html').resolve()}")


@app.command()
def evaluate(
    model: Annotated[
        str, typer.Argument(metavar="RUN", help="A run folder or a model bundle folder.")
    ],
    data: Annotated[
        str | None,
        typer.Option(
            help="Data to evaluate on.  [default: the run's own data]", show_default=False
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="test, val or train: the run's own split on its data, the data's own split on "
            "other data.  [default: test; all images of data without splits]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Accuracy, per-class report and confusion of a trained model on data."""
    from imgclf import api
    from imgclf.export.bundle import load_bundle
    from imgclf.runs.rundir import require_model

    with _user_errors():
        require_model(model)
        network = load_bundle(model)
        is_run = (Path(model) / "config.yaml").is_file()
        run_config = _run_config(Path(model)) if is_run else None
        if data is None:  # the run's own data, split as in the run
            data = _run_source(model, run_config)
        evaluation = api.evaluate_model(
            network, data, split=split, progress=not as_json, config=run_config, data_dir=data_dir
        )
    if as_json:
        typer.echo(json.dumps(evaluation.to_dict(), indent=2))
        return
    terminal.print_line(evaluation.summary_line())
    terminal.print_line(evaluation.to_frame().to_string())


def _run_config(path: Path) -> dict:
    from imgclf.runs.rundir import open_run_dir, read_run_config

    return read_run_config(open_run_dir(path))


def _run_source(model: str, run_config: dict | None) -> str:
    from imgclf.errors import ConfigError

    if run_config is None:
        raise ConfigError(f"{model} is a model bundle, not a run folder: pass --data DATA.")
    if not run_config.get("data", {}).get("source"):
        raise ConfigError(f"{model} does not record its data source. Pass --data DATA.")
    return run_config["data"]["source"]


@app.command()
def predict(
    model: Annotated[
        str, typer.Argument(metavar="RUN", help="A run folder or a model bundle folder.")
    ],
    inputs: Annotated[
        list[str],
        typer.Argument(metavar="INPUTS", help="Image files, folders, globs or a CSV."),
    ],
    output: Annotated[Path, typer.Option(help="CSV to write.")] = Path("predictions.csv"),
    format_: Annotated[
        str, typer.Option("--format", help="csv (path, label, probability, top-k) or kaggle.")
    ] = "csv",
    id_column: Annotated[str, typer.Option(help="kaggle: name of the id column.")] = "id",
    tta: Annotated[str | None, typer.Option(help="Test-time augmentation: flip.")] = None,
    top_k: Annotated[int, typer.Option(help="Top-k labels per image.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    path_column: Annotated[str, typer.Option(help="CSV inputs: the column of paths.")] = "path",
    label_column: Annotated[
        str,
        typer.Option(
            help="CSV inputs: the column of true labels; when present, accuracy is reported "
            "('' ignores it)."
        ),
    ] = "label",
) -> None:
    """Predict labels for images and write a CSV (or a Kaggle submission)."""
    from imgclf.export.bundle import load_bundle
    from imgclf.predict import predict as run_predict
    from imgclf.runs.rundir import require_model

    with _user_errors():
        require_model(model)
        network = load_bundle(model)
        result = run_predict(
            network,
            inputs,
            batch_size=batch_size,
            tta=tta,
            top_k=top_k,
            path_column=path_column,
            label_column=label_column or None,
        )
        result.to_csv(output, format=format_, id_column=id_column)
    for path, reason in result.skipped:
        terminal.print_warning(f"skipped {path}: {reason}")
    terminal.print_line(f"{result.summary()}; wrote {output}")


@app.command()
def demo(
    project: Annotated[Path, typer.Option(help="Folder of run folders.")] = Path("runs"),
) -> None:
    """Train the R5 `cnn` recipe on the built-in offline `digits` set (28 px) and report."""
    from imgclf.classifier import ImageClassifier

    with _user_errors():
        classifier = ImageClassifier(model="cnn", config=DEMO_CONFIG, project=project)
        classifier.fit("digits")
    _print_result(classifier.metrics_, classifier.run_dir_)


DEMO_CONFIG = {
    "seed": 0,
    "data": {"image_size": 28, "val_split": 0.15, "test_split": 0.2},
    "augment": {"rotation_range": 10, "width_shift_range": 0.1, "height_shift_range": 0.1},
    "train": {"epochs": 30, "batch_size": 32, "schedule": "cosine", "lr": 0.002},
}


def main() -> None:
    """Console-script entry point: help at the terminal's width, unwrapped in pipes."""
    app(**terminal.help_settings())
