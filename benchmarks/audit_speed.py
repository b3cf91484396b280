"""The whole audit's time on 10,000 images (issue 24: <= 3 minutes with nothing cached, <= 20 s
with the embeddings cached), as a user runs it: ``imgclf audit TABLE`` in a fresh process,
timed from the command's start, with the cache in three states:

- nothing cached: an empty cache folder (decoding and the embedding pass count);
- embeddings cached: the decoded images and embeddings kept (as a training run or an earlier
  audit leaves them), the audit's own results (``<cache>/audit/``) removed;
- run again: everything kept, as when the same audit runs a second time.

The table is a seeded stratified random subset of a folder of class folders (CIFAR-10's
training JPEGs by default). Each line gives the command's wall time and the audit's own
timings per step (audit.json).

    python -m benchmarks.audit_speed --data ../shared/datasets/cifar10-jpg/train
    python -m benchmarks.audit_speed --data ../shared/datasets/cifar10-jpg/train --warm 3 \
        --out /tmp/audit-speed        # keep the cache; the warm states three times each
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.audit_labels import photos_of
from benchmarks.common import machine


def write_table(data: Path, images: int, seed: int, out: Path) -> Path:
    """A path,label table of ``images`` photos of ``data``, stratified, seeded."""
    rows = photos_of(data, images, np.random.default_rng(seed))
    table = out / "table.csv"
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return table


def audit(table: Path, cache: Path, out: Path) -> tuple[float, dict]:
    """One ``imgclf audit`` in a fresh process: its wall time and audit.json."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "imgclf", "audit", str(table), "--output", str(out),
               "--cache-dir", str(cache), "--quiet"]  # fmt: skip
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    return wall, json.loads((out / "audit.json").read_text(encoding="utf-8"))


def line(state: str, wall: float, report: dict) -> str:
    steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in report["timings"].items())
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report["counts"].items()))
    return f"{state:18s} {wall:6.1f} s  ({steps}; found: {counts})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder of class folders")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm", type=int, default=1, help="runs of each warm state")
    parser.add_argument("--no-cold", action="store_true", help="skip the empty cache (kept)")
    parser.add_argument("--out", type=Path, default=None, help="kept folder (default: a temp)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    out = args.out or Path(tempfile.mkdtemp(prefix="imgclf-audit-speed-"))
    out.mkdir(parents=True, exist_ok=True)
    table, cache = write_table(args.data, args.images, args.seed, out), out / "cache"
    if not args.no_cold:
        shutil.rmtree(cache, ignore_errors=True)
        print(line("nothing cached", *audit(table, cache, out / "audit")))
    for _ in range(args.warm):
        shutil.rmtree(cache / "audit", ignore_errors=True)
        print(line("embeddings cached", *audit(table, cache, out / "audit")))
        print(line("run again", *audit(table, cache, out / "audit")))
    print(f"table, cache and audit kept in {out}")


if __name__ == "__main__":
    main()
