"""What a frozen backbone's cached stages save a feature-extraction run (a sweep's trial): the
same run (max pooling, after a first run with average pooling left the stages) twice on warm
embeddings, once with the unknown score's stages in the cache and once after deleting them, so
the fit must pass the images through the backbone again; prints the time the end of training
spends on the unknown score (``timings.evaluate``) and the ratio.

    python -m benchmarks.unknown_stages --data ../shared/datasets/imagenette2-224-subset
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
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


def run(data: Path, cache: Path, project: Path, name: str, **extra) -> dict:
    from imgclf import api

    os.environ["IMGCLF_CACHE_DIR"] = str(cache)
    result = api.train(data, project=project, name=name, quiet=True, **SETTINGS, **extra)
    return {"evaluate": result.metrics["timings"]["evaluate"],
            "total": result.metrics["timings"]["total"],
            "test": result.metrics["test"]["accuracy"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "imagenette2-224-subset")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        cache, project = Path(folder) / "cache", Path(folder) / "runs"
        first = run(args.data, cache, project, "first")  # embeddings and stages computed
        run(args.data, cache, project, "warm", head={"pooling": "max"})  # its embeddings too
        cached = run(args.data, cache, project, "cached", head={"pooling": "max"})
        for stages in (cache / "embeddings").glob("*.npz"):
            stages.unlink()
        again = run(args.data, cache, project, "uncached", head={"pooling": "max"})
    print(f"first run (embeddings and stages computed): {first['total']:.1f} s")
    for label, result in (("stages cached", cached), ("stages deleted", again)):
        print(f"{label}: unknown score and scores {result['evaluate']:.2f} s of "
              f"{result['total']:.1f} s, test accuracy {result['test']:.4f}")  # fmt: skip
    print(
        f"ratio: {again['evaluate'] / cached['evaluate']:.1f}x faster end of training, "
        f"{again['total'] / cached['total']:.2f}x faster run"
    )


if __name__ == "__main__":
    main()
