"""Class imbalance (issue 24): a long-tailed CIFAR-10 trained plain, with balanced loss weights
and with the balanced sampler, scored on the untouched balanced test set.

The long tail is CIFAR-10's train split cut to an exponential profile (Cao et al. 2019, LDAM):
class i of K keeps ``5000 * ratio ** (-i / (K - 1))`` of its images, picked by a seeded draw,
so class 0 (airplane) keeps 5,000 and class 9 (truck) 5,000 / ratio. The table is a CSV of
path, label and split (train, or test for all 10,000 test images) that ``imgclf train`` reads
as is. Besides test accuracy and macro F1 it prints the mean recall of the three rarest classes
and the accuracy a test set with the training profile would give (each class's recall weighted
by its training count): what rebalancing costs where the images to classify are long-tailed
too. Each run is ``imgclf train TABLE --preset fast_cifar --val-split 0`` in a fresh process
(the decode cache warm after the first), timed from the command's start to its end.

    python -m benchmarks.long_tail --ratios 10 100 --seeds 0
    python -m benchmarks.long_tail --ratios 100 --seeds 0 1 -- --epochs 3   # more imgclf options
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import BENCH, machine

CIFAR = Path(os.environ.get("IMGCLF_DATA_DIR", BENCH.parent / "datasets")) / "cifar10-jpg"
# what each run adds to the command: the imbalance correction it tries
MODES = {
    "none": [],
    "class_weight": ["--set", "train.class_weight=balanced"],
    "sampler": ["--sampler", "balanced"],
}


def tail_counts(ratio: float, classes: int = 10, most: int = 5000) -> list[int]:
    """Training images kept per class: ``most`` down to ``most / ratio``, exponentially."""
    return [round(most * ratio ** (-i / (classes - 1))) for i in range(classes)]


def long_tail_table(data: Path, ratio: float, seed: int, out: Path) -> tuple[Path, list[int]]:
    """Write ``out/cifar10-lt{ratio}-seed{seed}.csv`` (absolute paths) from ``data``'s class
    folders (train/ cut to the profile, the first class whole; test/ whole); return it and
    the train counts."""
    classes = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    train = {name: sorted((data / "train" / name).glob("*.jpg")) for name in classes}
    rng = np.random.default_rng(seed)
    rows, counts = [], tail_counts(ratio, len(classes), len(train[classes[0]]))
    for name, keep in zip(classes, counts, strict=True):
        files = train[name]
        picked = sorted(rng.choice(len(files), size=keep, replace=False))
        rows += [(str(files[i]), name, "train") for i in picked]
        rows += [(str(f), name, "test") for f in sorted((data / "test" / name).glob("*.jpg"))]
    table = out / f"cifar10-lt{ratio:g}-seed{seed}.csv"
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        writer.writerows(rows)
    return table, counts


def run_imgclf(
    table: Path, counts: list[int], mode: str, seed: int, project: Path, extra: list[str]
) -> dict:
    """One ``imgclf train`` on ``table`` (``counts`` training images per class) with ``mode``'s
    correction: its wall time and scores (see the module's docstring)."""
    name = f"{table.stem}-{mode}-s{seed}"
    command = [sys.executable, "-m", "imgclf", "train", str(table), "--preset", "fast_cifar",
               "--val-split", "0", "--seed", str(seed), "--project", str(project),
               "--name", name, "--quiet", *MODES[mode], *extra]  # fmt: skip
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    return {"wall": wall, **scores(project / name / "metrics.json", counts)}


def scores(metrics: Path, counts: list[int]) -> dict[str, float]:
    """A run's test accuracy, macro F1, tail recall and accuracy at the training profile."""
    test = json.loads(metrics.read_text())["test"]
    recall = [test["per_class_accuracy"][c] for c in test["classes"]]
    return {
        "accuracy": test["accuracy"],
        "macro_f1": test["report"]["macro avg"]["f1-score"],
        "tail_recall": statistics.mean(recall[-3:]),
        "profile_accuracy": float(np.dot(recall, counts) / sum(counts)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=CIFAR, help="CIFAR-10 class folders")
    parser.add_argument("--ratios", type=float, nargs="+", default=[10, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--out", type=Path, help="folder for the tables and runs (default: temp)")
    args, extra = parser.parse_known_args()  # the rest: more imgclf train options
    extra = [arg for arg in extra if arg != "--"]
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="imgclf-long-tail-") as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        results: dict[tuple[float, str], list[dict]] = {}
        for ratio in args.ratios:
            for seed in args.seeds:  # the seed picks the tail's images and trains the run
                table, counts = long_tail_table(args.data, ratio, seed, out)
                print(f"ratio {ratio:g}, seed {seed}: {sum(counts)} train images {counts}")
                for mode in args.modes:
                    result = run_imgclf(table, counts, mode, seed, out / "runs", extra)
                    results.setdefault((ratio, mode), []).append(result)
                    print(
                        f"  {mode:>12}: test accuracy {result['accuracy']:.4f}, macro F1 "
                        f"{result['macro_f1']:.4f}, tail recall {result['tail_recall']:.4f}, "
                        f"at the training profile {result['profile_accuracy']:.4f}, "
                        f"{result['wall']:.1f} s",
                        flush=True,
                    )
    print("ratio | mode | test accuracy | macro F1 | tail recall | at the training profile | s")
    keys = ("accuracy", "macro_f1", "tail_recall", "profile_accuracy")
    for (ratio, mode), runs in results.items():
        cells = [_spread([r[k] for r in runs]) for k in keys]
        print(f"{ratio:g} | {mode} | {' | '.join(cells)} | {_spread([r['wall'] for r in runs])}")


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} +- {statistics.stdev(values):.2g}"


if __name__ == "__main__":
    main()
