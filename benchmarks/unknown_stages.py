"""What one embed-once pass saves feature extraction: a user's first run (embeddings, head,
the unknown score's stages) and a second run that pools the other way (a sweep's trial), each
on a cold cache, timed for this checkout and for a baseline checkout (``--baseline``: another
commit's ``src``, e.g. from ``git worktree add``) in the same invocation; prints each part's
seconds (``timings`` in metrics.json) and the ratios.

    git worktree add /tmp/before <commit>
    python -m benchmarks.unknown_stages --baseline /tmp/before/src \\
        --data ../shared/datasets/imagenette2-224-subset
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.common import in_checkout, machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SRC = Path(__file__).resolve().parents[1] / "src"
SETTINGS = dict(
    model="efficientnet_lite0",
    mode="feature_extract",
    image_size=160,
    val_split=0.2,
    epochs=10,
    augment_views=2,
    shear_range=0.2,
    zoom_range=0.2,
    horizontal_flip=True,
    seed=0,
)  # R4's base, as its notebook sweeps it (examples/notebooks/04_runs_r4.ipynb)
PARTS = ("embed", "train", "evaluate", "total")


def two_runs(data: Path) -> dict[str, dict]:
    """The first run (average pooling) and the next (max pooling), on a fresh cache."""
    from imgclf import api

    with tempfile.TemporaryDirectory() as folder:
        os.environ["IMGCLF_CACHE_DIR"] = str(Path(folder) / "cache")
        runs = {}
        for name, pooling in (("first", "avg"), ("other pooling", "max")):
            result = api.train(data, project=Path(folder) / "runs", name=name.split()[0],
                               quiet=True, head={"pooling": pooling}, **SETTINGS)  # fmt: skip
            timings = result.metrics["timings"]
            runs[name] = {**{part: timings.get(part, 0.0) for part in PARTS},
                          "test": result.metrics["test"]["accuracy"]}  # fmt: skip
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "imagenette2-224-subset")
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout's src")
    args = parser.parse_args()
    print(machine())
    call = f"importlib.import_module('benchmarks.unknown_stages').two_runs({str(args.data)!r})"
    results = {"baseline": in_checkout(args.baseline, call), "this": in_checkout(SRC, call)}
    for run in ("first", "other pooling"):
        for label, runs in results.items():
            parts = ", ".join(f"{part} {runs[run][part]:.1f} s" for part in PARTS)
            print(f"{run} run, {label}: {parts}; test accuracy {runs[run]['test']:.4f}")
        ratio = results["baseline"][run]["total"] / results["this"][run]["total"]
        print(f"{run} run: {ratio:.2f}x faster")


if __name__ == "__main__":
    main()
