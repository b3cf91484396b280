"""Images per second delivered to a training loop: imgclf's cached loader vs torchvision.

imgclf scans every file and decodes it once into a uint8 memmap (the first epoch includes both,
in a fresh cache folder), then serves augmented float batches from it (flip + zoom 0.1,
rescale 1/255).
The baseline is the tutorial pipeline: ``datasets.ImageFolder`` + ``DataLoader(num_workers=2)``
decoding and resizing every JPEG every epoch with equivalent transforms. Both sides get the
same files, batch size and epochs; the loop body does nothing, so the figures are the loaders'.

    python -m benchmarks.loader --data ../shared/datasets/animals --image-size 150
    python -m benchmarks.loader --data ../shared/datasets/cifar10-jpg/train --image-size 32 \
        --limit 10000
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from imgclf.config import AugmentConfig
from imgclf.data.batches.augment import build_augment
from imgclf.data.batches.loader import BatchLoader
from imgclf.data.formats.folder import read_folder
from imgclf.data.pipeline.cache import build_image_cache
from imgclf.data.pipeline.scan import scan_source
from imgclf.data.source import DataSource


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="class-folder tree")
    parser.add_argument("--image-size", type=int, default=150, help="square side in pixels")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="stratified subset of N files")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="torchvision DataLoader workers")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def stratified_subset(source: DataSource, limit: int | None, seed: int) -> DataSource:
    """At most ``limit`` items keeping the class proportions (a fixed, seeded pick)."""
    if limit is None or limit >= len(source):
        return source
    rng = np.random.default_rng(seed)
    picks = []
    for label in range(len(source.classes)):
        members = rng.permutation(np.flatnonzero(source.labels == label))
        picks.append(members[: round(limit * len(members) / len(source))])
    return source.subset(np.sort(np.concatenate(picks)))


def drain(batches: Iterable) -> int:
    """Consume an epoch like a training loop would (no compute), counting images."""
    return sum(len(labels) for _, labels in batches)


def time_imgclf(source: DataSource, args: argparse.Namespace, cache_dir: Path) -> list[float]:
    """Seconds per epoch; the first includes the scan and decoding into a fresh cache."""
    size = (args.image_size, args.image_size)
    augment = build_augment(AugmentConfig(horizontal_flip=True, zoom_range=0.1))
    times = []
    start = time.perf_counter()
    scan_source(source, cache_dir, progress=False)  # training scans first: bad files out
    cache = build_image_cache(source, size, cache_dir=cache_dir, progress=False)
    loader = BatchLoader(
        images=cache.images,
        labels=source.labels,
        indices=np.flatnonzero(cache.valid),
        batch_size=args.batch_size,
        seed=args.seed,
        augment=augment,
        rescale=1 / 255,
    )
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        drain(loader)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return times


def torchvision_loader(source: DataSource, args: argparse.Namespace):
    """ImageFolder + DataLoader over exactly the files in ``source``, tutorial transforms."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    size = (args.image_size, args.image_size)
    transform = transforms.Compose(
        [
            transforms.Resize(size),
            transforms.RandomHorizontalFlip(),
            transforms.RandomAffine(degrees=0, scale=(0.9, 1.1)),
            transforms.ToTensor(),
        ]
    )
    dataset = datasets.ImageFolder(str(args.data), transform=transform)
    position = {os.path.normpath(path): i for i, (path, _) in enumerate(dataset.samples)}
    wanted = [position[os.path.normpath(str(path))] for path in source.paths]
    return DataLoader(
        Subset(dataset, wanted),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        generator=torch.Generator().manual_seed(args.seed),
    )


def time_torchvision(source: DataSource, args: argparse.Namespace) -> list[float]:
    """Seconds per epoch of the ImageFolder pipeline (every epoch decodes every file)."""
    loader = torchvision_loader(source, args)
    times = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        drain(loader)
        times.append(time.perf_counter() - start)
    return times


def report(source: DataSource, args: argparse.Namespace, results: dict[str, list[float]]) -> None:
    """Print the table: first epoch and mean later epoch, seconds and images per second."""
    n = len(source)
    print(
        f"\n{args.data} ({n} images, {len(source.classes)} classes) at {args.image_size} px, "
        f"batch {args.batch_size}, {args.epochs} epochs; torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    header = f"{'loader':<42}{'epoch 1 s':>10}{'img/s':>9}{'later s/ep':>12}{'img/s':>9}"
    print(header)
    print("-" * len(header))
    later_rate = {}
    for name, times in results.items():
        later = float(np.mean(times[1:])) if len(times) > 1 else float("nan")
        later_rate[name] = n / later
        print(f"{name:<42}{times[0]:>10.2f}{n / times[0]:>9.0f}{later:>12.2f}{n / later:>9.0f}")
    first, second = list(later_rate)
    print(
        f"later-epoch ratio {first.split()[0]} / {second.split()[0]}: "
        f"{later_rate[first] / later_rate[second]:.1f}x"
    )


def main() -> None:
    args = parse_args()
    source = stratified_subset(read_folder(args.data), args.limit, args.seed)
    if source.paths is None or source.splits is not None:
        raise SystemExit(f"{args.data} must be a plain class-folder tree (DATA/<class>/*).")
    with tempfile.TemporaryDirectory(prefix="imgclf-bench-") as cache_dir:
        imgclf_times = time_imgclf(source, args, Path(cache_dir))
    torchvision_times = time_torchvision(source, args)
    report(
        source,
        args,
        {
            "imgclf cache + BatchLoader (flip, zoom)": imgclf_times,
            f"torchvision ImageFolder + DataLoader({args.workers}w)": torchvision_times,
        },
    )


if __name__ == "__main__":
    main()
