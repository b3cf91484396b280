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


def image_grid_figure(images: list[np.ndarray], titles: list[str], columns: int = 5):
    """A matplotlib Figure of images (H, W, C uint8) with a title over each.

    Built on ``matplotlib.figure.Figure``, not pyplot: no global state, no backend switch in
    a user's notebook, and safe from threads.
    """
    from matplotlib.figure import Figure

    rows = max(1, -(-len(images) // columns))
    fig = Figure(figsize=(2.0 * columns, 2.2 * rows))
    # fixed margins: a constrained layout measures every title (seconds for a 5x5 grid)
    top = 1 - 0.3 / (2.2 * rows)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=top, wspace=0.06, hspace=0.16)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        gray = image.shape[-1] == 1
        ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0, vmax=255)
        ax.set_title(str(title).replace("$", r"\$"), fontsize=9)  # '$' would start mathtext
    return fig


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
