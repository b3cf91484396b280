"""R3's small_cnn on CIFAR-10 JPEGs: the tutorial's settings versus imgclf's, to 0.6927.

(1) The tutorial's settings (Adam, batch 32, 10 epochs, validating on the test set): wall time
and test accuracy (the tutorial reports 0.6927). (2) imgclf's settings for the same
architecture (one-cycle Adam over 8 epochs, batch 64, horizontal flips) until test accuracy
reaches 0.6927: wall time and its ratio to (1). (3) ``--part 3``: the best test accuracy a
stack reaches in 30 minutes on this machine (a VGG-style custom stack with BatchNorm,
one-cycle AdamW, a time budget).

    python -m benchmarks.cifar_r3 --data ../shared/datasets/cifar10-jpg --part 1 2
    python -m benchmarks.cifar_r3 --data ../shared/datasets/cifar10-jpg --part 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import accuracy, add_keras_option, keras_baseline, machine
from benchmarks.mnist_r5 import StopAtTestAccuracy
from imgclf.api import make_config
from imgclf.data.pipeline.prepare import prepare_data
from imgclf.models.inference import predict_rows
from imgclf.models.network import build_model
from imgclf.train.loop import configure_torch, fit
from imgclf.train.parts import Stage, TrainData

TARGET = 0.6927
TUTORIAL = {"model": "small_cnn", "optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 10}
IMGCLF = {
    "model": "small_cnn", "optimizer": "adam", "lr": 3e-3, "schedule": "onecycle",
    "batch_size": 64, "epochs": 8, "horizontal_flip": True,
}  # fmt: skip
WIDE = [  # conv-relu-BN pairs at 32, 64, 128 filters, each pair pooled, then global max pool
    layer
    for filters in (32, 64, 128)
    for layer in (
        {"type": "conv", "filters": filters, "padding": "same"},
        {"type": "batchnorm"},
        {"type": "conv", "filters": filters, "padding": "same"},
        {"type": "batchnorm"},
        {"type": "maxpool"},
    )
] + [{"type": "global_maxpool"}]
BEST_30_MIN = {  # 12 one-cycle epochs fit in 30 minutes here (about 2.2 min each)
    "optimizer": "adamw", "lr": 4e-3, "weight_decay": 5e-4, "schedule": "onecycle",
    "batch_size": 128, "epochs": 12, "label_smoothing": 0.1, "horizontal_flip": True,
    "width_shift_range": 0.1, "height_shift_range": 0.1, "fill_mode": "reflect",
    "time_limit": 1800,
}  # fmt: skip


def run(
    data: Path, settings: dict, watch: bool, base: dict | None = None, stop: bool = True
) -> dict:
    cfg = make_config(base, seed=0, quiet=True, val_split=0.0, **settings)
    prepared = prepare_data(data, cfg, progress=False)
    test = prepared.splits.test
    train = TrainData(
        prepared.cache.images,
        prepared.source.labels,
        prepared.splits.train,
        test,
        prepared.classes,
    )  # fmt: skip  (validating on the test set, as the tutorial does)
    configure_torch(cfg)
    model = build_model(cfg.model, prepared.classes, 3, (32, 32))
    started = time.perf_counter()
    watcher = StopAtTestAccuracy(model, train, test, started, TARGET if stop else None)
    callbacks = [watcher] if watch else []
    if cfg.train.time_limit:
        from imgclf.train.callbacks import TimeLimit

        callbacks.append(TimeLimit(cfg.train.time_limit))
    state = fit(model, [Stage("train", model, train, cfg.train)], cfg, callbacks)
    wall = time.perf_counter() - started
    probs = predict_rows(model, train.images, test, 1024)
    best = max((acc for _, acc, _ in watcher.curve), default=None)
    return {
        "wall": wall,
        "epochs": state.epoch,
        "test": accuracy(probs, train.labels[test]),
        "best": best,
        "reached": watcher.reached,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--part", type=int, nargs="+", default=[1, 2])
    add_keras_option(parser, "keras_r3.py, 10 epochs")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if 1 in args.part:
        tutorial = run(args.data, TUTORIAL, watch=False)
        print(
            f"(1) tutorial settings: 10 epochs in {tutorial['wall'] / 60:.1f} min, "
            f"test accuracy {tutorial['test']:.4f} (tutorial: {TARGET})"
        )
    if 2 in args.part:
        ours = run(args.data, IMGCLF, watch=True)
        if ours["reached"]:
            epoch, acc, wall = ours["reached"]
            ratio = f" = {tutorial['wall'] / wall:.1f}x less time" if 1 in args.part else ""
            print(
                f"(2) imgclf settings: {acc:.4f} >= {TARGET} after {epoch} epochs, "
                f"{wall:.0f} s{ratio}"
            )
        else:
            print(f"(2) imgclf settings: did not reach {TARGET}; final {ours['test']:.4f}")
        if args.keras:
            keras = keras_baseline(args.keras, "keras_r3.py", "cifar10-jpg", "10")
            faster = keras["train_wall_s"] / ours["reached"][2] if ours["reached"] else None
            print(
                f"(2) Keras, the tutorial as written: test {keras['test_acc']:.4f} in "
                f"{keras['train_wall_s']:.0f} s"
                + (f"; imgclf reached {TARGET} {faster:.1f}x sooner" if faster else "")
            )
        else:
            print("    the ratio to Keras needs --keras PYTHON (the tutorial's recipe, same run)")
    if 3 in args.part:
        best = run(
            args.data,
            BEST_30_MIN,
            watch=True,
            base={"model": {"name": "custom", "layers": WIDE}},
            stop=False,
        )
        print(
            f"(3) 30-minute budget, VGG-style custom stack: {best['epochs']} epochs in "
            f"{best['wall'] / 60:.1f} min, final test accuracy {best['test']:.4f} "
            f"(best epoch {best['best']:.4f})"
        )


if __name__ == "__main__":
    main()
