"""Distributed training on this machine: `imgclf train` in 1 process (all cores) and in 2
processes (torchrun, gloo, the cores split between them) at the same global batch, on real
data, with each run's training images/s, and the two models' max |parameter difference| and
accuracy difference (they must agree: DDP here is for correctness and scale, not speed).

    python -m benchmarks.ddp_speed --data mnist --epochs 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

from benchmarks.common import machine
from imgclf.layout import RUN_BUNDLE_DIR, WEIGHTS_NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--optimizer", default="adam")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    root = Path(tempfile.mkdtemp(prefix="imgclf-ddp-"))
    runs = {procs: _train(args, root, procs) for procs in (1, 2)}
    for procs, run in runs.items():
        rows = list(csv.DictReader(open(run / "history.csv", encoding="utf-8")))
        metrics = json.loads((run / "metrics.json").read_text())
        seconds = sum(float(row["time"]) for row in rows)
        counts = json.loads((run / "data_report.json").read_text())["counts"]["train"]
        rate = sum(counts.values()) * len(rows) / seconds
        print(f"{procs} process(es): training {rate:7.1f} img/s ({seconds:.1f} s for "
              f"{len(rows)} epochs), test accuracy {metrics['test']['accuracy']:.4f}")  # fmt: skip
    a, b = (load_file(run / RUN_BUNDLE_DIR / WEIGHTS_NAME) for run in runs.values())
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    accuracies = [json.loads((r / "metrics.json").read_text())["test"]["accuracy"] for r in
                  runs.values()]  # fmt: skip
    print(f"max |param difference| {diff:.1e}; |test accuracy difference| "
          f"{abs(accuracies[0] - accuracies[1]):.4f}")  # fmt: skip


def _train(args, root: Path, procs: int) -> Path:
    name = f"ddp-{procs}"
    launch = ["--nproc-per-node", str(procs)] if procs > 1 else []
    command = [
        sys.executable, "-m", "imgclf", "train", args.data, "--model", args.model,
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--quiet",
        "--optimizer", args.optimizer,
        "--project", str(root), "--name", name, *launch,
    ]  # fmt: skip
    subprocess.run(command, check=True, env=os.environ.copy())
    return root / name


if __name__ == "__main__":
    main()
