"""`imgclf train DATA`: a run folder with the model, metrics, plots and report.html."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from imgclf import api
from imgclf.cli.app import user_errors
from imgclf.cli.options import (
    LAUNCH_KEYS,
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
    NnodesOpt,
    NodeRankOpt,
    NprocOpt,
    PathColumnOpt,
    PlotsOpt,
    PrecisionOpt,
    QuietOpt,
    RdzvOpt,
    SeedOpt,
    SetOpt,
    SplitColumnOpt,
    TestSplitOpt,
    ValSplitOpt,
    key_values,
    parse_unfreeze,
    relaunch,
    schema_choice,
    schema_option,
)
from imgclf.cli.output import print_result
from imgclf.timefmt import process_age

# The train-only options (the shared ones are in cli/options.py).
_Data = Annotated[
    str | None,
    typer.Argument(metavar="DATA", help="Class folders, .csv, .npz or a built-in name."),
]
_Optimizer = schema_choice("train.optimizer", "The optimizer.")
_Schedule = schema_choice("train.schedule", "Learning rate over the steps, after any warmup.")
_Sampler = schema_choice("train.sampler")
_Weights = Annotated[Path | None, typer.Option(help="Local pretrained weight file.")]
_Unfreeze = Annotated[
    str | None, schema_option("model.unfreeze", "finetune: N last blocks, 'all' or a,b.")
]
_Callback = Annotated[
    list[str] | None,
    typer.Option(
        metavar="NAME",
        help="Add a callback, repeatable: a registered name or package.module:ClassName.",
    ),
]
_Patience = Annotated[
    int | None, schema_option("train.patience", "Early stopping after N flat epochs.")
]
_FinetuneEpochs = Annotated[
    int | None,
    schema_option("train.finetune_epochs", "finetune: epochs of stage 2, after the head."),
]
_FinetuneLr = Annotated[
    float | None,
    schema_option("train.finetune_lr", "finetune: stage 2 peak lr.", default="--lr"),
]
_EmbeddingCache = Annotated[
    bool | None,
    typer.Option(
        "--embedding-cache/--no-embedding-cache",
        help="Train the head on embeddings computed once.  [default: on]",
        show_default=False,
    ),
]
_EmbedBackend = schema_choice("train.embed_backend", "Backend of the embed-once pass.")
_AugmentViews = Annotated[
    int | None,
    schema_option("train.augment_views", "Augmented views per image in the embedding cache."),
]
_ProgressiveSizes = Annotated[
    str | None, typer.Option(help="Smaller sizes to train at first: 128,160 or 0.5,0.75.")
]
_TimeLimit = Annotated[
    str | None, typer.Option(help="Wall-clock limit of this session: 90s, 45m, 2h.")
]
_Preset = Annotated[
    str | None,
    typer.Option(
        help="Settings by name under the given ones: fast (fast_mnist or fast_cifar by the "
        "data's channels), fast_mnist, fast_cifar. Budgeted unless --epochs is given."
    ),
]
_Budget = Annotated[
    str | None,
    typer.Option(help="Plan epochs and schedule to end the whole run within: 90s, 10m, 2h."),
]
_Track = Annotated[
    list[str] | None,
    typer.Option(metavar="NAME", help="Mirror the run into tensorboard or mlflow, repeatable."),
]
_Name = Annotated[
    str | None,
    typer.Option(help="Run folder name.  [default: MODEL-DATA-N]", show_default=False),
]
_Project = Annotated[Path | None, schema_option("run.project", "Folder of run folders.")]
_Resume = Annotated[Path | None, typer.Option(help="Continue this run folder.")]
_Audit = schema_choice("data.audit")
_Decisions = Annotated[
    Path | None,
    typer.Option(
        metavar="CSV",
        help="Apply the decisions saved from audit.html (path, decision, label): drop images "
        "and change labels at read time; no file is moved.",
        show_default=False,
    ),
]


def train(
    data: _Data = None,
    preset: _Preset = None,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    image_size: ImageSizeOpt = None,
    optimizer: _Optimizer = None,
    lr: LrOpt = None,
    schedule: _Schedule = None,
    sampler: _Sampler = None,
    weights: _Weights = None,
    unfreeze: _Unfreeze = None,
    augment: AugmentOpt = None,
    set_: SetOpt = None,
    callback: _Callback = None,
    track: _Track = None,
    val_split: ValSplitOpt = None,
    test_split: TestSplitOpt = None,
    path_column: PathColumnOpt = None,
    label_column: LabelColumnOpt = None,
    split_column: SplitColumnOpt = None,
    decisions: _Decisions = None,
    audit: _Audit = None,
    patience: _Patience = None,
    finetune_epochs: _FinetuneEpochs = None,
    finetune_lr: _FinetuneLr = None,
    embedding_cache: _EmbeddingCache = None,
    embed_backend: _EmbedBackend = None,
    augment_views: _AugmentViews = None,
    progressive_sizes: _ProgressiveSizes = None,
    time_limit: _TimeLimit = None,
    budget: _Budget = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    name: _Name = None,
    project: _Project = None,
    resume: _Resume = None,
    quiet: QuietOpt = False,
    plots: PlotsOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    nproc_per_node: NprocOpt = None,
    nnodes: NnodesOpt = 1,
    node_rank: NodeRankOpt = 0,
    rdzv_endpoint: RdzvOpt = None,
) -> None:
    """Train a classifier: a run folder with the model, metrics, plots and report.html."""
    options = dict(locals())
    with user_errors():
        code = relaunch("train", options)
    if code is not None:
        raise typer.Exit(code)
    with user_errors():
        started = time.perf_counter() - process_age()  # a --budget counts the start-up too
        run = api.train(
            data, config, resume=resume, started=started, model=model, **_overrides(options)
        )
    # (the main process: the others of a distributed run write nothing; a complete run resumed
    # has said so)
    if run.path is not None and run.note is None:
        print_result(run.metrics, run.path, quiet=run.config.run.quiet)


# The train options that are not a config key of the same name (train() passes DATA, --config,
# --resume and --model itself; _overrides names the others); every other option is one.
_NOT_PLAIN = ("data", "config", "resume", "model", "augment", "set_", "callback", "track")


def _overrides(options: dict[str, Any]) -> dict[str, Any]:
    """The train command's options as api.train keyword overrides: each option under its own
    name (--unfreeze parsed, --quiet only when given), --callback as train.callbacks, then
    --augment and --set pairs."""
    parsed = {"unfreeze": parse_unfreeze(options["unfreeze"]), "quiet": options["quiet"] or None}
    plain = [key for key in options if key not in _NOT_PLAIN and key not in LAUNCH_KEYS]
    return {
        **{key: parsed[key] if key in parsed else options[key] for key in plain},
        "train.callbacks": options["callback"],
        "run.track": options["track"],
        **key_values(options["augment"], "augment"),
        **key_values(options["set_"]),
    }
