"""The embed-once pass on torch (channels_last, fp32) and on ONNX Runtime, side by side: the
same feature-extraction run on animals at 224 px (EfficientNet-Lite0, 1200 photos, the head of
benchmarks.transfer) from an empty embedding cache, with each backend's embedding img/s, wall
time and test accuracy, and the largest feature difference between the two caches.

    python -m benchmarks.embed_speed --data ../shared/datasets/animals
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import machine
from benchmarks.transfer import HEAD, R2_HEAD, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    cache = Path(tempfile.mkdtemp(prefix="imgclf-embed-"))
    results, features = {}, {}
    for backend in ("torch", "onnx"):
        result = run(args.data, cache, head=R2_HEAD, embed_backend=backend, **HEAD)
        files = sorted((cache / "embeddings").glob("*.npy"))
        features[backend] = np.load(files[0])
        results[backend] = result
        seconds = result["timings"]["embed"]
        print(
            f"{backend:>5}: embedding {len(features[backend])} images in {seconds:5.1f} s "
            f"({len(features[backend]) / seconds:6.1f} img/s), run {result['wall']:5.1f} s, "
            f"test accuracy {result['test']:.4f}"
        )
    diff = float(np.abs(features["torch"] - features["onnx"]).max())
    ratio = results["torch"]["timings"]["embed"] / results["onnx"]["timings"]["embed"]
    print(f"ONNX Runtime embeds {ratio:.2f}x faster; max |feature difference| {diff:.1e}")


if __name__ == "__main__":
    main()
