"""The fast presets end to end against the tutorials' Keras recipes, in one benchmark run.

Each seed runs ``imgclf train DATA --preset fast`` as a user does (a fresh process, the
decode cache warm) and is timed from the command's start: to its test score (the command's
wall time less the report it writes after scoring) and to its end. The spread over the seeds
is printed as mean +- standard deviation, as airbench reports. ``--keras PYTHON`` runs the
tutorial's Keras recipe (../shared/bench) in the same run, on the same machine, and prints
the ratio of its training time to imgclf's time to the test score.

    IMGCLF_DATA_DIR=../shared/datasets python -m benchmarks.fast_recipes mnist --seeds 0 1 2
    python -m benchmarks.fast_recipes cifar --seeds 0 1 2 --keras ../keras-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import BENCH, add_keras_option, keras_baseline, machine

DATASETS = Path(os.environ.get("IMGCLF_DATA_DIR", BENCH.parent / "datasets"))
# what each side trains on: MNIST's 60,000 with imgclf's default 20 % validation (48,000,
# Keras 50,000); CIFAR-10's 50,000 on both sides, scored on the 10,000 test images
RECIPES = {
    "mnist": {"data": "mnist", "args": [], "keras": ("keras_r5.py", "mnist", "deep_cnn", "30"),
              "target": 0.9926},
    "cifar": {"data": str(DATASETS / "cifar10-jpg"), "args": ["--val-split", "0"],
              "keras": ("keras_r3.py", "cifar10-jpg", "10"), "target": 0.6877},
}  # fmt: skip


def run_imgclf(recipe: dict, seed: int, project: Path, extra: list[str]) -> dict:
    """One ``imgclf train --preset fast`` in a fresh process: its wall time and metrics."""
    command = [sys.executable, "-m", "imgclf", "train", recipe["data"], "--preset", "fast",
               "--seed", str(seed), "--project", str(project), "--name", f"seed{seed}",
               "--quiet", *recipe["args"], *extra]  # fmt: skip
    env = {**os.environ, "IMGCLF_DATA_DIR": str(DATASETS)}
    began = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    metrics = json.loads((project / f"seed{seed}" / "metrics.json").read_text())
    return {
        "wall": wall,
        "to_score": wall - metrics["timings"]["report"],
        "test": metrics["test"]["accuracy"],
        "epochs": metrics["epochs_run"],
        "efficiency": metrics.get("efficiency", {}),
        "precision": metrics["runtime"]["precision"],
    }


def spread(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4g} +- {std:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--keras-epochs", type=int, help="run Keras this many epochs instead")
    add_keras_option(parser, "keras_r5.py or keras_r3.py, as the tutorial")
    args, extra = parser.parse_known_args()  # the rest: more imgclf train options
    args.extra = [arg for arg in extra if arg != "--"]
    recipe = RECIPES[args.recipe]
    print(f"machine: {machine()}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="imgclf-fast-") as scratch:
        for seed in args.seeds:
            result = run_imgclf(recipe, seed, Path(scratch), args.extra)
            runs.append(result)
            eff = result["efficiency"]
            print(
                f"imgclf seed {seed}: test {result['test']:.4f} after {result['epochs']} epochs, "
                f"{result['to_score']:.1f} s to the score, {result['wall']:.1f} s in all "
                f"({result['precision']}; {eff.get('compute_images_per_second', 0):.0f} img/s, "
                f"{eff.get('percent_of_peak', 0):.1f} % of peak)",
                flush=True,
            )
    tests, scored = [r["test"] for r in runs], [r["to_score"] for r in runs]
    print(
        f"imgclf over {len(runs)} seeds: test {spread(tests)}, to the score {spread(scored)} s, "
        f"in all {spread([r['wall'] for r in runs])} s; "
        f"{sum(t >= recipe['target'] for t in tests)}/{len(runs)} reach {recipe['target']}"
    )
    if not args.keras:
        print("the ratio to Keras needs --keras PYTHON (the tutorial's recipe, same run)")
        return
    script, data, *rest = recipe["keras"]
    if args.keras_epochs:
        rest[-1] = str(args.keras_epochs)
    keras = keras_baseline(args.keras, script, data, *rest)
    wall, epochs = keras["train_wall_s"], int(rest[-1])
    full = int(recipe["keras"][-1])
    if epochs != full:  # the tutorial's whole run at the measured per-epoch time
        each = wall / epochs
        print(f"Keras: {epochs} epochs in {wall:.0f} s, so {full} epochs take {each * full:.0f} s")
        wall = each * full
    print(
        f"Keras, the tutorial as written: test {keras['test_acc']:.4f} ({epochs} epochs), "
        f"{wall:.0f} s training; imgclf's score came {wall / statistics.mean(scored):.1f}x sooner"
    )


if __name__ == "__main__":
    main()
