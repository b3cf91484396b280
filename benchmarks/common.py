"""Shared pieces of the training benchmarks: machine facts, matmul peak, FLOPs, timing."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import torch


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def in_checkout(src: Path, call: str):
    """What ``call`` (an expression importing from ``benchmarks``) returns, as JSON, run in a
    process of its own with the imgclf of ``src`` (e.g. another commit's, from ``git worktree
    add``): a benchmark that compares two checkouts in one invocation."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = f"import json, importlib; print(json.dumps({call}))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(root)])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, cwd=root)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Measured float32 matmul throughput of this CPU (the best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"  # the tutorials' Keras side


def add_keras_option(parser, recipe: str) -> None:
    """``--keras PYTHON``: also run the tutorial's Keras ``recipe`` in this benchmark run."""
    parser.add_argument(
        "--keras", metavar="PYTHON",
        help="an interpreter with tensorflow-cpu: also run the tutorial's Keras recipe "
        f"(../shared/bench/{recipe}) in this run and print the ratio",
    )  # fmt: skip


def keras_baseline(python: str, script: str, data: str, *args: str) -> dict[str, float]:
    """Run ../shared/bench/SCRIPT (the tutorial's Keras recipe) on ../shared/datasets/DATA in
    the interpreter ``python`` (a virtualenv with tensorflow-cpu, see ../shared/bench/README.md),
    in this benchmark run: its ``RESULT`` line's test accuracy and training wall seconds."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="imgclf-keras-") as scratch:
        npz = Path(scratch) / f"{data}.npz"
        # make_npz.py takes the set's name and reads it from ../shared/datasets
        subprocess.run(
            [python, str(BENCH / "make_npz.py"), data, str(npz)], check=True, cwd=scratch
        )
        lines = []
        with subprocess.Popen([python, str(BENCH / script), str(npz), *args], cwd=scratch,
                              stdout=subprocess.PIPE, text=True) as process:  # fmt: skip
            for line in process.stdout:
                print(f"  keras: {line.rstrip()}", flush=True)
                lines.append(line)
        if process.returncode:
            raise RuntimeError(f"{script} exited with {process.returncode}")
    return parse_keras_result(lines)


def parse_keras_result(lines: list[str]) -> dict[str, float]:
    """``RESULT recipe=... test_acc=0.9931 train_wall_s=2090.1`` -> its numbers."""
    for line in reversed(lines):
        if line.startswith("RESULT"):
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            return {"test_acc": float(fields["test_acc"]),
                    "train_wall_s": float(fields["train_wall_s"])}  # fmt: skip
    raise RuntimeError("the Keras script printed no RESULT line")
