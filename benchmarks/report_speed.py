"""The report's picture grids, the tutorial's way and imgclf's, in the same run: 25 pictures
with a title each (the mistakes grid every tutorial draws with ``plt.subplot(5, 5, i)``) saved
as a PNG, then a small run's whole report (``timings.report`` of a digits CNN), which the grids
dominated; prints the ratio.

    python -m benchmarks.report_speed
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine

REPEATS = 5


def tutorial_grid(images: list[np.ndarray], titles: list[str]) -> None:
    """R5's grid of mistakes: one subplot per picture, its title over it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 11))
    for index, (image, title) in enumerate(zip(images, titles, strict=True)):
        ax = figure.add_subplot(5, 5, index + 1)
        ax.imshow(image[..., 0], cmap="gray")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    figure.savefig(io.BytesIO(), format="png", dpi=80)


def imgclf_grid(images: list[np.ndarray], titles: list[str]) -> None:
    from imgclf.data.views.preview import image_grid_figure

    image_grid_figure(images, titles).savefig(io.BytesIO(), format="png", dpi=80)


def median_seconds(draw, *args) -> float:
    draw(*args)  # fonts and caches warm
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        draw(*args)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def report_seconds() -> float:
    from imgclf import api

    with tempfile.TemporaryDirectory() as folder:
        os.environ["IMGCLF_CACHE_DIR"] = str(Path(folder) / "cache")
        settings = dict(model="cnn", image_size=16, epochs=2, seed=0, quiet=True)
        api.train("digits", project=Path(folder) / "runs", **settings)  # imports warm
        run = api.train("digits", project=Path(folder) / "runs", **settings)
        return run.metrics["timings"]["report"]


def main() -> None:
    print(machine())
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 64, 1), dtype=np.uint8) for _ in range(25)]
    titles = [f"{i % 10} -> {(i + 3) % 10} (0.{90 - i})" for i in range(25)]
    tutorial = median_seconds(tutorial_grid, images, titles)
    ours = median_seconds(imgclf_grid, images, titles)
    print(f"5x5 grid of 64x64 pictures as PNG: tutorial's subplots {tutorial:.3f} s, "
          f"imgclf {ours:.3f} s ({tutorial / ours:.1f}x)")  # fmt: skip
    print(f"a digits CNN's whole report (7 PNGs and the page): {report_seconds():.2f} s")


if __name__ == "__main__":
    main()
