"""``imgclf doctor ddp``: on the user's own machine, train a tiny model in one process and in N
(torchrun), the same way, and compare them: the check the equivalence tests make in CI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError

TOLERANCE = 1e-4
_COLOURS = ((220, 30, 30), (30, 200, 40), (30, 40, 220))


def check_ddp(
    nproc_per_node: int = 2,
    device: str = "cpu",
    epochs: int = 2,
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train deep_cnn (dropout) with flips on 96 synthetic images in 1 process and in
    ``nproc_per_node``, at the same global batch, and compare parameters and history.

    Returns:
        ``ok`` (everything within TOLERANCE, accuracies equal), ``max_param_diff``, one row per
        epoch (both losses and validation accuracies) and each run's seconds.
    """
    from safetensors.torch import load_file

    from imgclf.layout import RUN_BUNDLE_DIR, WEIGHTS_NAME

    if nproc_per_node < 2:
        raise ConfigError("doctor ddp compares 1 process with several: --nproc-per-node 2 or more.")
    root = Path(work_dir or tempfile.mkdtemp(prefix="imgclf-doctor-"))
    data = _colour_images(root / "colours.npz", per_class=8 * nproc_per_node)
    seconds, runs = {}, {}
    for procs in (1, nproc_per_node):
        began = time.perf_counter()
        runs[procs] = _train(data, root, procs, device, epochs)
        seconds[procs] = time.perf_counter() - began
    one, many = (load_file(runs[p] / RUN_BUNDLE_DIR / WEIGHTS_NAME) for p in runs)
    trained = [k for k in one if not k.startswith(FITTED_AFTER)]
    diff = max(float((one[k].double() - many[k].double()).abs().max()) for k in trained)
    rows = []
    for a, b in zip(*(_history(runs[p]) for p in runs), strict=True):
        rows.append({
            "epoch": int(a["epoch"]), "loss": (float(a["loss"]), float(b["loss"])),
            "val_accuracy": (float(a["val_accuracy"]), float(b["val_accuracy"])),
        })  # fmt: skip
    ok = diff <= TOLERANCE and all(
        abs(r["loss"][0] - r["loss"][1]) <= TOLERANCE
        and r["val_accuracy"][0] == r["val_accuracy"][1]
        for r in rows
    )
    return {"ok": ok, "max_param_diff": diff, "epochs": rows, "seconds": seconds,
            "processes": nproc_per_node, "device": device, "folder": root}  # fmt: skip


# statistics fitted after training (the unknown score's means and precision matrices, the
# conformal scores): not what DDP trains, and a precision matrix of near-flat colour features
# turns float rounding in the features into differences far above TOLERANCE
FITTED_AFTER = ("unknown.", "conformal.")


def _colour_images(path: Path, per_class: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    images, labels = [], []
    for name, rgb in zip(("red", "green", "blue"), _COLOURS, strict=True):
        for _ in range(per_class * 4):
            noise = rng.integers(-25, 26, (16, 16, 3))
            images.append(np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8))
            labels.append(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=np.stack(images), y=np.array(labels))
    return path


def _train(data: Path, root: Path, procs: int, device: str, epochs: int) -> Path:
    name = f"{procs}-process"
    launch = ["--nproc-per-node", str(procs)] if procs > 1 else []
    command = [
        sys.executable, "-m", "imgclf", "train", str(data), "--model", "deep_cnn",
        "--augment", "horizontal_flip=true", "--epochs", str(epochs), "--batch-size", "16",
        "--val-split", "0.25", "--test-split", "0", "--device", device, "--quiet", "--no-plots",
        "--project", str(root / "runs"), "--name", name, *launch,
    ]  # fmt: skip
    env = {**os.environ, "IMGCLF_CACHE_DIR": str(root / "cache")}
    result = subprocess.run(command, env=env, text=True, capture_output=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise ConfigError(f"The {procs}-process run failed: {' | '.join(tail)}")
    return root / "runs" / name


def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", encoding="utf-8") as file:
        return list(csv.DictReader(file))
