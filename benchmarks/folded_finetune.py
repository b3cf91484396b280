"""What folding BatchNorm saves a fine-tune on augmented pixels and its evaluation: R2 step 4
(examples/r2_4_finetune_augment.yaml: Lite0 at 224 px, the head on embeddings, then the last
block unfrozen on augmented pixels) on animals, timed for this checkout and for a baseline
checkout (``--baseline``: another commit's ``src``, e.g. from ``git worktree add``) in the same
invocation, each on its own fresh cache; prints the fine-tune epochs' seconds, evaluate's and
the whole run's, the test accuracy of each, and the ratios.

    git worktree add /tmp/before <commit>
    python -m benchmarks.folded_finetune --baseline /tmp/before/src \\
        --data ../shared/datasets/animals
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

from benchmarks.common import in_checkout, machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
RECIPE = ROOT / "examples" / "r2_4_finetune_augment.yaml"
PARTS = ("finetune epochs", "evaluate", "total")


def one_run(data: str, finetune_epochs: int) -> dict[str, float]:
    """R2 step 4 on ``data``, on a fresh cache: its seconds by part and its test accuracy."""
    from imgclf import api

    with tempfile.TemporaryDirectory() as folder:
        os.environ["IMGCLF_CACHE_DIR"] = str(Path(folder) / "cache")
        result = api.train(data, config=RECIPE, project=Path(folder) / "runs", quiet=True,
                           finetune_epochs=finetune_epochs)  # fmt: skip
        with open(result.path / "history.csv") as rows:
            epochs = [float(row["time"]) for row in csv.DictReader(rows) if row["stage"] != "head"]
        timings = result.metrics["timings"]
    return {"finetune epochs": sum(epochs), "evaluate": timings["evaluate"],
            "total": timings["total"], "test": result.metrics["test"]["accuracy"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "animals")
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout's src")
    parser.add_argument("--finetune-epochs", type=int, default=3, help="the recipe's: 3")
    args = parser.parse_args()
    print(machine())
    call = (f"importlib.import_module('benchmarks.folded_finetune').one_run("
            f"{str(args.data)!r}, {args.finetune_epochs})")  # fmt: skip
    results = {"baseline": in_checkout(args.baseline, call), "this": in_checkout(SRC, call)}
    for label, run in results.items():
        parts = ", ".join(f"{part} {run[part]:.1f} s" for part in PARTS)
        print(f"{label}: {parts}; test accuracy {run['test']:.4f}")
    for part in PARTS:
        print(f"{part}: {results['baseline'][part] / results['this'][part]:.2f}x faster")


if __name__ == "__main__":
    main()
