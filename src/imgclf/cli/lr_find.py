"""`imgclf lr-find DATA`: the learning-rate range test, its plot and a suggested lr."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import (
    AugmentOpt,
    BatchSizeOpt,
    ConfigOpt,
    DataArg,
    DataDirOpt,
    DeviceOpt,
    ImageSizeOpt,
    ModelOpt,
    ModeOpt,
    PrecisionOpt,
    QuietOpt,
    SeedOpt,
    SetOpt,
    key_values,
)


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
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Find a learning rate: train briefly with a growing lr, plot the loss, suggest one."""
    with user_errors():
        overrides = {
            "model": model, "mode": mode, "batch_size": batch_size, "image_size": image_size,
            "seed": seed, "data_dir": data_dir, "device": device, "precision": precision,
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
