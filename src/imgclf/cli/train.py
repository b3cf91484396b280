"""`imgclf train DATA`: a run folder with the model, metrics, plots and report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from imgclf import api
from imgclf.cli.app import user_errors
from imgclf.cli.options import (
    AugmentOpt,
    BatchSizeOpt,
    ConfigOpt,
    DataDirOpt,
    DeviceOpt,
    EpochsOpt,
    ImageSizeOpt,
    LabelColumnOpt,
    LrOpt,
    ModelOpt,
    ModeOpt,
    PathColumnOpt,
    PrecisionOpt,
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
from imgclf.cli.output import print_result


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
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
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
    options = dict(locals())
    with user_errors():
        run = api.train(data, config, resume=resume, model=model, **_overrides(options))
    print_result(run.metrics, run.path, quiet=run.config.run.quiet)


# The train options passed to ImageClassifier under their own names, in this order.
_PLAIN = (
    "mode", "epochs", "batch_size", "image_size", "optimizer", "lr", "schedule", "weights",
    "unfreeze", "val_split", "test_split", "patience", "finetune_epochs", "finetune_lr",
    "embedding_cache", "augment_views", "progressive_sizes", "time_limit", "seed", "device",
    "precision", "name", "project", "quiet", "data_dir", "path_column", "label_column",
    "split_column",
)  # fmt: skip


def _overrides(options: dict[str, Any]) -> dict[str, Any]:
    """The train command's options as api.train keyword overrides: --unfreeze parsed,
    --quiet only when given, --callback as train.callbacks, then --augment and --set pairs."""
    parsed = {"unfreeze": parse_unfreeze(options["unfreeze"]), "quiet": options["quiet"] or None}
    return {
        **{key: parsed[key] if key in parsed else options[key] for key in _PLAIN},
        "train.callbacks": options["callback"],
        **key_values(options["augment"], "augment"),
        **key_values(options["set_"]),
    }
