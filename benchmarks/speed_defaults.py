"""Before and after for the defaults changed for speed, each in one benchmark run.

1. Batches built inline unless dear: one epoch of fast_cifar on CIFAR-10 (flips + 2 px
   shifts, inline by default) against the same with the background thread forced; and one
   with zoom (a resampling warp, threaded by default) against it forced inline.
2. ``precision: auto`` (bf16 on a CPU with native bf16) against 32 bits: one epoch of
   fast_cifar, training time and test accuracy.

    python -m benchmarks.speed_defaults --data ../shared/datasets/cifar10-jpg
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from benchmarks.common import machine
from imgclf import api


@contextmanager
def batches_built(threaded: bool | None):
    """None: the default rule; True / False: every augmented batch in the thread / inline."""
    if threaded is None:
        yield
        return
    with mock.patch("imgclf.train.setup.worth_a_thread", lambda *args: threaded):
        yield


def one_epoch(data: Path, threaded: bool | None = None, **settings) -> dict:
    settings = {"preset": "fast_cifar", "epochs": 1, "val_split": 0.0, **settings}
    with tempfile.TemporaryDirectory() as project, batches_built(threaded):
        run = api.train(data, project=project, quiet=True, **settings)
    return {"train": run.metrics["timings"]["train"], "test": run.metrics["test"]["accuracy"],
            "precision": run.metrics["runtime"]["precision"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("1. batches inline unless dear (one epoch of fast_cifar, 50,000 images)")
    for label, threaded, extra in (
        ("flips + 2 px shifts, inline (default)", None, {}),
        ("flips + 2 px shifts, background thread", True, {}),
        ("+ zoom 0.1, background thread (default)", None, {"zoom_range": 0.1}),
        ("+ zoom 0.1, inline", False, {"zoom_range": 0.1}),
    ):
        result = one_epoch(args.data, threaded, **extra)
        print(f"   {label:>40}: {result['train']:.1f} s, test {result['test']:.4f}", flush=True)
    print("2. precision auto against 32 bits (one epoch of fast_cifar)")
    for precision in ("auto", "32"):
        result = one_epoch(args.data, precision=precision)
        print(f"   {precision:>4} ({result['precision']}): {result['train']:.1f} s, "
              f"test {result['test']:.4f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
