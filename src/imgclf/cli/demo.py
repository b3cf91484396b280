"""`imgclf demo`: the R5 `cnn` recipe on the built-in offline `digits` set, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgclf import api
from imgclf.cli.app import user_errors
from imgclf.cli.output import print_result

DEMO_CONFIG = {
    "seed": 0,
    "data": {"image_size": 28, "val_split": 0.15, "test_split": 0.2},
    "augment": {"rotation_range": 10, "width_shift_range": 0.1, "height_shift_range": 0.1},
    "train": {"epochs": 30, "batch_size": 32, "schedule": "cosine", "lr": 0.002},
}


def demo(
    project: Annotated[Path, typer.Option(help="Folder of run folders.")] = Path("runs"),
) -> None:
    """Train the R5 `cnn` recipe on the built-in offline `digits` set (28 px) and report."""
    with user_errors():
        run = api.train("digits", DEMO_CONFIG, model="cnn", project=project)
    print_result(run.metrics, run.path)
