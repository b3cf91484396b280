"""`imgclf predict RUN INPUTS...`: labels for images, written to a CSV or a Kaggle file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import BackendOpt, NnodesOpt, NodeRankOpt, NprocOpt, RdzvOpt, relaunch

# The schema's help and choices, with predict's own defaults (not a run's settings).
_Device = Annotated[str, typer.Option(help=api.setting_help("train.device"))]
_Precision = Annotated[
    api.setting_type("train.precision"), typer.Option(help=api.setting_help("train.precision"))
]


_Model = Annotated[
    str, typer.Argument(metavar="RUN", help="A run folder or a model bundle folder.")
]
_Inputs = Annotated[
    list[str], typer.Argument(metavar="INPUTS", help="Image files, folders, globs or a CSV.")
]
_Output = Annotated[
    Path | None,
    typer.Option(
        help="CSV to write. Default: predictions.csv, or predictions-N.csv when it exists."
    ),
]
_Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace --output when it exists.")]
_Format = Annotated[
    str, typer.Option("--format", help="csv (path, label, probability, top-k) or kaggle.")
]
_LabelColumn = Annotated[
    str,
    typer.Option(
        help="CSV inputs: the column of true labels; when present, accuracy is reported "
        "('' ignores it)."
    ),
]


UNCALIBRATED = (
    "note: this model has no calibration (no temperature in its model.json: trained without a "
    "validation split, with train.calibrate false, or by an older imgclf), so its "
    "probabilities are the network's own softmax"
)


def predict(
    model: _Model,
    inputs: _Inputs,
    output: _Output = None,
    overwrite: _Overwrite = False,
    format_: _Format = "csv",
    id_column: Annotated[str, typer.Option(help="kaggle: name of the id column.")] = "id",
    tta: Annotated[str | None, typer.Option(help="Test-time augmentation: flip.")] = None,
    top_k: Annotated[int, typer.Option(help="Top-k labels per image.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    path_column: Annotated[str, typer.Option(help="CSV inputs: the column of paths.")] = "path",
    label_column: _LabelColumn = "label",
    device: _Device = "auto",
    precision: _Precision = "32",
    backend: BackendOpt = "auto",
    abstain: Annotated[
        str | None,
        typer.Option(
            help="Answer 'unknown' for images unlike the training data: auto (the model's "
            "threshold, keeping 95 % of validation images) or a share in (0, 1).",
        ),
    ] = None,
    explain: Annotated[
        Path | None,
        typer.Option(
            help="Write each image with a heatmap of what the model looked at "
            "(Grad-CAM of the predicted class) as a PNG into this folder."
        ),
    ] = None,
    sets: Annotated[
        float | None,
        typer.Option(
            help="Give each image the smallest set of classes that holds the true one with "
            "this probability, e.g. 0.9 (conformal, on the validation split).",
        ),
    ] = None,
    grid: Annotated[
        Path | None,
        typer.Option(
            help="Also draw the first 25 images titled with their answers (and 'R: true P: "
            "predicted' where a CSV's label differs) into this PNG."
        ),
    ] = None,
    nproc_per_node: NprocOpt = None,
    nnodes: NnodesOpt = 1,
    node_rank: NodeRankOpt = 0,
    rdzv_endpoint: RdzvOpt = None,
) -> None:
    """Predict labels for images and write a CSV (or a Kaggle submission)."""
    with user_errors():
        code = relaunch("predict", dict(locals()))
    if code is not None:
        raise typer.Exit(code)
    with user_errors():
        target = api.prediction_output(output, overwrite)
        grid = api.prediction_grid_output(grid, overwrite) if grid is not None else None
        result = api.predict(
            model,
            inputs,
            batch_size=batch_size,
            tta=tta,
            top_k=top_k,
            path_column=path_column,
            label_column=label_column or None,
            device=device,
            precision=precision,
            backend=backend,
            abstain=abstain,
            sets=sets,
            explain=explain,
        )
        if result is None:  # another process of a sharded prediction: rank 0 writes
            return
        target = api.write_predictions(
            result, target, model, format=format_, overwrite=True, id_column=id_column
        )
        if grid is not None:
            api.save_prediction_grid(result, grid)
    for path, reason in result.skipped:
        terminal.print_warning(f"skipped {path}: {reason}")
    on = {"onnx": " on ONNX Runtime", "onnx-int8": " on ONNX Runtime (int8)"}.get(
        result.backend, ""
    )
    drawn = f" and {grid}" if grid is not None else ""
    terminal.print_line(f"{result.summary()}{on}; wrote {target}{drawn}")
    if result.temperature is None:
        terminal.print_line(UNCALIBRATED)
