"""Calibration (issue 25): train the three reference models as a user would, each with imgclf's
default validation split, and print the test split's expected calibration error (15 bins)
and NLL before and after the temperature imgclf fits on val (target: ECE after <= 2 %), and
the coverage and mean size of the 90 % prediction sets on test (target: 88.5-91.5 %).

    IMGCLF_DATA_DIR=../shared/datasets python -m benchmarks.calibration cifar animals mnist

The "before" is the network's own softmax; the "after" is what evaluate, predict, the ONNX
graph and serve give (the temperature is in the model). ``--pictures DIR`` copies each run's
reliability diagram there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = Path(os.environ.get("IMGCLF_DATA_DIR", SHARED))
SETUPS = {  # how a user trains each: the README's commands, with the default val split
    "cifar": (DATASETS / "cifar10-jpg", {"preset": "fast"}),
    "animals": (DATASETS / "animals", {"test_split": 0.2}),  # Lite0, embed once, the default
    "mnist": ("mnist", {"preset": "fast"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setups", nargs="+", choices=list(SETUPS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pictures", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("IMGCLF_DATA_DIR", str(DATASETS))
    from imgclf import api

    print(f"machine: {machine()}")
    project = args.out or Path(tempfile.mkdtemp(prefix="imgclf-calibration-"))
    for name in args.setups:
        data, options = SETUPS[name]
        started = time.perf_counter()
        run = api.train(data, project=project, name=name, seed=args.seed, quiet=True, **options)
        seconds = time.perf_counter() - started
        record = run.metrics["calibration"]
        if "temperature" not in record:
            print(f"{name}: not calibrated ({record['skipped']})")
            continue
        test = record["splits"]["test"]
        print(
            f"{name}: test accuracy {run.metrics['test']['accuracy']:.4f}, T "
            f"{record['temperature']:.3f} (val {record['fitted_on_images']} images); test ECE "
            f"{100 * test['ece_before']:.2f}% -> {100 * test['ece_after']:.2f}%, NLL "
            f"{test['nll_before']:.4f} -> {test['nll_after']:.4f} ({seconds:.0f} s)"
        )
        sets = run.metrics.get("sets", {})
        if "splits" in sets and "test" in sets["splits"]:
            on_test = sets["splits"]["test"]
            print(f"  prediction sets at {sets['coverage_target']:.0%} (val "
                  f"{sets['fitted_on_images']} images): test coverage "
                  f"{on_test['coverage']:.4f}, mean size {on_test['mean_size']:.2f}")  # fmt: skip
        if args.pictures:
            args.pictures.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.path / "plots" / "reliability.png",
                            args.pictures / f"reliability_{name}.png")  # fmt: skip


if __name__ == "__main__":
    main()
