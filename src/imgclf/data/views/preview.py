"""Picture grids: the 5x5 sample grid with class names that every tutorial draws first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imgclf.data.pipeline.cache import fit_array
from imgclf.data.pipeline.decode import FileRecord, ImageDecodeError, decode_file
from imgclf.data.source import DataSource
from imgclf.fileio import atomic_path

PREVIEW_SIDE = 128


def pick_samples(source: DataSource, usable: np.ndarray, n: int = 25, seed: int = 0) -> np.ndarray:
    """Up to ``n`` usable item indices, taken round-robin over classes so each class shows."""
    rng = np.random.default_rng(seed)
    per_class = [
        rng.permutation(np.flatnonzero(usable & (source.labels == c)))
        for c in range(len(source.classes))
    ]
    picked: list[int] = []
    for rank in range(max((len(p) for p in per_class), default=0)):
        picked += [int(p[rank]) for p in per_class if rank < len(p)]
        if len(picked) >= n:
            break
    return np.asarray(picked[:n], dtype=np.int64)


def sample_images(
    source: DataSource, records: list[FileRecord], n: int = 25, seed: int = 0
) -> tuple[list[np.ndarray], list[str]]:
    """Decode up to ``n`` usable images for display, with their class names as titles."""
    usable = np.array([r.ok for r in records], dtype=bool)
    images, titles = [], []
    for i in pick_samples(source, usable, n, seed):
        size = _display_size(records[i])
        try:
            if source.is_array:
                image = fit_array(source.images[i], size, "resize", "rgb")
            else:
                image = decode_file(source.paths[i], size, "resize", "rgb")
        except ImageDecodeError:
            continue
        images.append(image)
        titles.append(source.classes[source.labels[i]])
    return images, titles


CELL = (2.0, 2.2)  # inches per grid cell, its title band included
TITLE_BAND = 0.32  # inches: room for a two-line title at 9 pt
GAP = 0.05  # inches between pictures


def image_grid_figure(images: list[np.ndarray], titles: list[str], columns: int = 5):
    """A matplotlib Figure of images (H, W, C uint8) with a title over each.

    One axes measured in inches holds every picture and title: 25 axes of their own cost more
    than a second to lay out and draw, which was most of a small run's report. Built on
    ``matplotlib.figure.Figure``, not pyplot: no global state, no backend switch in a user's
    notebook, and safe from threads.
    """
    from matplotlib.figure import Figure

    rows = max(1, -(-len(images) // columns))
    width, height = CELL[0] * columns, CELL[1] * rows
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    for index, (image, title) in enumerate(zip(images, titles, strict=False)):
        left, top = (index % columns) * CELL[0], (index // columns) * CELL[1]
        gray = image.shape[-1] == 1
        ax.imshow(
            image[..., 0] if gray else image,
            cmap="gray" if gray else None,
            vmin=0,
            vmax=255,
            extent=_fitted_box(image.shape[:2], left, top + TITLE_BAND),
        )
        ax.text(left + CELL[0] / 2, top + TITLE_BAND - GAP, str(title).replace("$", r"\$"),
                ha="center", va="bottom", fontsize=9)  # fmt: skip  # '$' would start mathtext
    ax.set(xlim=(0, width), ylim=(height, 0), aspect="auto")
    return fig


def _fitted_box(shape: tuple[int, int], left: float, top: float) -> tuple[float, ...]:
    """imshow's extent for a picture of ``shape`` (H, W) fitted and centred in its cell."""
    box_w, box_h = CELL[0] - 2 * GAP, CELL[1] - TITLE_BAND - GAP
    scale = min(box_w / max(shape[1], 1), box_h / max(shape[0], 1))
    w, h = shape[1] * scale, shape[0] * scale
    x0, y0 = left + GAP + (box_w - w) / 2, top + (box_h - h) / 2
    return (x0, x0 + w, y0 + h, y0)


def save_image_grid(
    images: list[np.ndarray], titles: list[str], path: str | Path, columns: int = 5
) -> Path:
    """Draw images in a grid with a title over each, and save it as a PNG (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image_grid_figure(images, titles, columns).savefig(tmp, format="png", dpi=80)
    return path


def _display_size(record: FileRecord) -> tuple[int, int]:
    """The image's own size when small, else scaled so its longer side is PREVIEW_SIDE."""
    height, width = max(record.height, 1), max(record.width, 1)
    scale = min(1.0, PREVIEW_SIDE / max(height, width))
    if max(height, width) < 32:
        scale = 64 / max(height, width)  # blow tiny images (digits, MNIST) up to be seen
    return max(1, round(height * scale)), max(1, round(width * scale))
