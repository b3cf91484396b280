"""Before and after for the defaults changed for speed, each in one benchmark run.

1. Batches built inline unless dear: one epoch of fast_cifar on CIFAR-10 (flips + 2 px
   shifts, inline by default) against the same with the background thread forced; and one
   with zoom (a resampling warp, threaded by default) against it forced inline.
2. ``precision: auto`` (bf16 on a CPU with native bf16) against 32 bits: one epoch of
   fast_cifar, training time and test accuracy.
3. Fused optimizer steps (torch's kernel that updates every tensor in one call) against one
   tensor at a time: one epoch of R5's MLP on MNIST (Adam, batches of 32, the R5 notebook's
   recipe) and of fast_cifar (SGD).

    python -m benchmarks.speed_defaults --data ../shared/datasets/cifar10-jpg
    python -m benchmarks.speed_defaults --data ../shared/datasets/cifar10-jpg --only fused
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


def one_epoch(data: Path | str, threaded: bool | None = None, **settings) -> dict:
    settings = {"preset": "fast_cifar", "epochs": 1, "val_split": 0.0, **settings}
    with tempfile.TemporaryDirectory() as project, batches_built(threaded):
        run = api.train(data, project=project, quiet=True, **settings)
    return {"train": run.metrics["timings"]["train"], "test": run.metrics["test"]["accuracy"],
            "precision": run.metrics["runtime"]["precision"]}  # fmt: skip


@contextmanager
def optimizer_steps(fused: bool):
    """True: the default (fused where torch has the kernel); False: one tensor at a time."""
    if fused:
        yield
        return
    with mock.patch("imgclf.train.optim.FUSED", set()):
        yield


def fused_or_not(data: Path) -> None:
    """Section 3: each workload once to warm up (the first epoch in a process pays for
    imports and caches), then fused and one tensor at a time, alternating, twice each, and
    the ratio of the means (MNIST is read from beside ``data``, as the shared datasets lie)."""
    mlp = {"preset": None, "model": "mlp", "optimizer": "adam", "lr": 1e-3,
           "schedule": "onecycle", "data_dir": data.parent, "seed": 0}  # fmt: skip
    for label, source, settings in (
        ("R5 MLP on MNIST, Adam", "mnist", mlp),
        ("fast_cifar, SGD", data, {}),
    ):
        one_epoch(source, **settings)
        seconds = {True: [], False: []}
        for fused in (True, False, False, True):
            with optimizer_steps(fused):
                result = one_epoch(source, **settings)
            seconds[fused].append(result["train"])
            how = "fused" if fused else "one tensor at a time"
            print(f"   {label}, {how:>20}: {result['train']:.2f} s, test {result['test']:.4f}",
                  flush=True)  # fmt: skip
        ratio = sum(seconds[False]) / sum(seconds[True])
        print(f"   {label}: fused {ratio:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="cifar10-jpg")
    parser.add_argument("--only", choices=["batches", "precision", "fused"], nargs="+")
    args = parser.parse_args()
    only = set(args.only or ("batches", "precision", "fused"))
    print(f"machine: {machine()}")
    if "batches" in only:
        batches(args.data)
    if "precision" in only:
        precisions(args.data)
    if "fused" in only:
        print("3. fused optimizer steps against one tensor at a time (one epoch each)")
        fused_or_not(args.data)


def batches(data: Path) -> None:
    print("1. batches inline unless dear (one epoch of fast_cifar, 50,000 images)")
    for label, threaded, extra in (
        ("flips + 2 px shifts, inline (default)", None, {}),
        ("flips + 2 px shifts, background thread", True, {}),
        ("+ zoom 0.1, background thread (default)", None, {"zoom_range": 0.1}),
        ("+ zoom 0.1, inline", False, {"zoom_range": 0.1}),
    ):
        result = one_epoch(data, threaded, **extra)
        print(f"   {label:>40}: {result['train']:.1f} s, test {result['test']:.4f}", flush=True)


def precisions(data: Path) -> None:
    print("2. precision auto against 32 bits (one epoch of fast_cifar)")
    for precision in ("auto", "32"):
        result = one_epoch(data, precision=precision)
        print(f"   {precision:>4} ({result['precision']}): {result['train']:.1f} s, "
              f"test {result['test']:.4f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
