"""Runs of `imgclf train` in 1 and in 2 processes (torchrun, gloo on this machine's CPUs)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.serve.conftest import colour_images


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 noisy colour images at 16 px: 72 train with val_split 0.25, in batches of 16 (the
    last global batch, 8, splits evenly over 2 ranks)."""
    path = tmp_path_factory.mktemp("ddp") / "colours.npz"
    images, labels = colour_images(32, 16)
    np.savez(path, x=images, y=labels)
    return path


def imgclf(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600):
    """``python -m imgclf ARGS`` in a subprocess (its own cache under ``cwd``)."""
    environment = {**os.environ, "IMGCLF_CACHE_DIR": str(cwd / "cache"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "imgclf", *args], cwd=cwd, env=environment, text=True,
        capture_output=True, timeout=timeout,
    )  # fmt: skip


def train(data: Path, root: Path, name: str, *args: str, procs: int = 1) -> Path:
    """A finished run folder of ``imgclf train DATA ARGS`` in ``procs`` processes."""
    launch = ["--nproc-per-node", str(procs)] if procs > 1 else []
    result = imgclf(
        "train", str(data), "--val-split", "0.25", "--test-split", "0", "--quiet",
        "--project", str(root / "runs"), "--name", name, *args, *launch, cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "runs" / name


def history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", encoding="utf-8") as file:
        return list(csv.DictReader(file))
