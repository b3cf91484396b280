"""Runs of `imgclf train` in 1 and in 2 processes (torchrun, gloo on this machine's CPUs).

A command in one process runs here, in the test's own process (which has imported torch
already: a subprocess would spend seconds importing it again); several processes go through
torchrun as a user's do."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
from tests.serve.conftest import colour_images


@pytest.fixture(scope="session")
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


def imgclf_here(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``imgclf ARGS`` in this process, as ``imgclf`` does it in a subprocess: in ``cwd``, with
    its own cache under it; the exit code, stdout and stderr (an exception's traceback in it)."""
    from typer.testing import CliRunner

    from imgclf.cli import app

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.setenv("IMGCLF_CACHE_DIR", str(cwd / "cache"))
        result = CliRunner().invoke(app, list(args))
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["imgclf", *args], result.exit_code, result.stdout, stderr)


def train(data: Path, root: Path, name: str, *args: str, procs: int = 1) -> Path:
    """A finished run folder of ``imgclf train DATA ARGS`` in ``procs`` processes (one: here)."""
    launch = ["--nproc-per-node", str(procs)] if procs > 1 else []
    command = (
        "train", str(data), "--val-split", "0.25", "--test-split", "0", "--quiet",
        "--project", str(root / "runs"), "--name", name, *args, *launch,
    )  # fmt: skip
    result = imgclf(*command, cwd=root) if procs > 1 else imgclf_here(*command, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "runs" / name


def history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", encoding="utf-8") as file:
        return list(csv.DictReader(file))
