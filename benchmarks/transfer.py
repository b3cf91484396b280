"""Transfer learning on animals (3 classes, 400 each) at 224 px with efficientnet_lite0.

Part 1: the tutorial way (the frozen backbone runs on every image in every epoch, 20 epochs of
the head) against imgclf's embed-once feature extraction (same head, epochs, seed, split):
wall time of each, their ratio and both test accuracies.
Part 2: the staged fine-tune (the defaults of ``imgclf train animals --model
efficientnet_lite0``: stage 2 on the frozen blocks' cached activations), against stage 2 on
pixels (the frozen blocks every step), in bf16 where the CPU has it, and with progressive
resizing: images per second of the fine-tuning stage (its epochs plus the activation pass)
and wall time to the best validation accuracy.
Part 3: the R2 progression (examples/r2_*.yaml: own CNN, feature extraction, + fine-tuning,
+ augmentation) with test accuracy and wall time; the own CNN gets a time budget.

Every run uses the same split (768 train / 192 val / 240 test, seed 0), and a warm decoded-image
cache (decoding is timed once, separately); the embedding cache starts empty in every run, so
embed-once pays for its embedding pass.

    python -m benchmarks.transfer --data ../shared/datasets/animals --part 1 2 3
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine
from imgclf.api import make_config
from imgclf.classifier import ImageClassifier
from imgclf.data.pipeline.prepare import prepare_data
from imgclf.runtime import cpu_has_native_bf16

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPLIT = {"image_size": 224, "val_split": 0.16, "test_split": 0.2, "seed": 0}
HEAD = {"model": "efficientnet_lite0", "mode": "feature_extract", "epochs": 20, "batch_size": 32}
R2_HEAD = {"pooling": "avg", "dense": [128, 64, 32]}


def run(data: Path, cache: Path, config: str | Path | None = None, **settings) -> dict:
    """Train once from an empty embedding cache; wall time, test accuracy and timings."""
    shutil.rmtree(cache / "embeddings", ignore_errors=True)
    with tempfile.TemporaryDirectory() as project:
        started = time.perf_counter()
        clf = ImageClassifier(
            config=config, cache_dir=cache, project=project, quiet=True, **{**SPLIT, **settings}
        ).fit(data)
        wall = time.perf_counter() - started
    history = clf.history_
    best = max(history, key=lambda row: row.get("val_accuracy", 0.0))
    timings = clf.metrics_["timings"]
    to_best = timings["data"] + timings.get("embed", 0.0)
    to_best += sum(row["time"] for row in history if row["epoch"] <= best["epoch"])
    return {
        "wall": wall,
        "test": clf.metrics_["test"]["accuracy"],
        "best_val": best["val_accuracy"],
        "to_best": to_best,
        "history": history,
        "timings": timings,
    }


def part1(data: Path, cache: Path) -> None:
    print("\n## Part 1: frozen backbone every epoch vs embed once (20 head epochs)")
    slow = run(data, cache, embedding_cache=False, head=R2_HEAD, **HEAD)
    fast = run(data, cache, embedding_cache=True, head=R2_HEAD, **HEAD)
    for name, result in (("tutorial way", slow), ("embed once", fast)):
        print(
            f"{name:>13}: {result['wall']:7.1f} s, test accuracy {result['test']:.4f} "
            f"(timings {_fmt(result['timings'])})"
        )
    print(f"embed once is {slow['wall'] / fast['wall']:.1f}x faster")


def part2(data: Path, cache: Path, n_train: int) -> None:
    print("\n## Part 2: the staged fine-tune (defaults), on pixels, in bf16, progressive sizes")
    variants = {
        "on pixels (before)": {"activation_cache": False},
        "defaults": {},
        "defaults, bf16": {"precision": "bf16-mixed"},
        "on pixels, bf16": {"activation_cache": False, "precision": "bf16-mixed"},
        "progressive 128,160": {"progressive_sizes": "128,160"},
    }
    for label, extra in variants.items():
        if "bf16" in label and not cpu_has_native_bf16():
            continue
        result = run(data, cache, model="efficientnet_lite0", **extra)
        rows = [row for row in result["history"] if row.get("stage") == "finetune"]
        # the stage's cost includes running its frozen blocks once, where it does
        seconds = sum(row["time"] for row in rows) + result["timings"].get("activations", 0.0)
        images = n_train * len(rows)
        print(
            f"{label:>20}: {result['wall']:6.1f} s, test accuracy {result['test']:.4f}; "
            f"fine-tune stage {len(rows)} epochs in {seconds:.1f} s = {images / seconds:.1f} "
            f"img/s incl. validation; best val {result['best_val']:.4f} after "
            f"{result['to_best']:.1f} s"
        )


def part3(data: Path, cache: Path, cnn_budget: str) -> None:
    print("\n## Part 3: the R2 progression (examples/r2_*.yaml)")
    for path in sorted(EXAMPLES.glob("r2_*.yaml")):
        extra = {"time_limit": cnn_budget} if "animal_cnn" in path.stem else {}
        result = run(data, cache, config=path, **extra)
        epochs = len(result["history"])
        cfg = make_config(path)
        kind = "from scratch" if cfg.model.name == "animal_cnn" else cfg.model.mode
        print(
            f"{path.stem:>24} ({cfg.model.name}, {kind}): test accuracy "
            f"{result['test']:.4f} in {result['wall']:.1f} s ({epochs} epochs)"
        )


def _fmt(timings: dict) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/animals"))
    parser.add_argument("--part", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--cnn-budget", default="10m", help="Time limit of the own CNN.")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        started = time.perf_counter()
        cfg = make_config(None, cache_dir=cache, **SPLIT)
        prepared = prepare_data(args.data, cfg, progress=False)
        print(f"decode {args.data} once at 224 px: {time.perf_counter() - started:.1f} s")
        if 1 in args.part:
            part1(args.data, cache)
        if 2 in args.part:
            part2(args.data, cache, len(prepared.splits.train))
        if 3 in args.part:
            part3(args.data, cache, args.cnn_budget)


if __name__ == "__main__":
    main()
