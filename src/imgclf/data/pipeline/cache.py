"""Decode once: every image decoded and fitted once into a memory-mapped uint8 array on disk.

The cache key covers the file list with sizes and mtimes, the target size, the fit policy and
the colour mode, so a second run with the same inputs reuses the array without decoding and a
changed file or setting builds a new one. Worker processes write straight into the memory map,
so memory stays bounded however large the data. A finished cache appears atomically (written
under a temporary name, then renamed).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import get_args

import numpy as np
from PIL import Image

from imgclf.config import FitPolicy
from imgclf.data.pipeline.decode import ImageDecodeError, decode_file, fit_image, to_color
from imgclf.data.pipeline.parallel import parallel_map
from imgclf.data.source import DataSource
from imgclf.errors import DataError
from imgclf.fileio import atomic_path
from imgclf.identity import image_set_digest, stamp, stat_files

_CACHE_FORMAT = 1
FITS = get_args(FitPolicy)


@dataclass
class ImageCache:
    """Decoded images (N, H, W, C) uint8, read-only, and which rows decoded successfully."""

    images: np.ndarray
    valid: np.ndarray
    reasons: dict[int, str]
    path: Path | None
    reused: bool

    @cached_property
    def id(self) -> str:
        """Names these images in the keys of what is computed from them and kept (the audit's
        store, the embeddings): the cache file's name, or for arrays used as they are (no
        file), a digest of their bytes, so a run on the same arrays reads what the last one
        kept (0.06 s to hash MNIST's 70,000 digits; its leak check takes 2-3 s)."""
        if self.path is not None:
            return self.path.name
        return image_set_digest(b"images-in-memory", images=self.images).hexdigest()


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$IMGCLF_CACHE_DIR``, else ``~/.cache/imgclf``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("IMGCLF_CACHE_DIR"):
        return Path(os.environ["IMGCLF_CACHE_DIR"]).expanduser()
    return Path.home() / ".cache" / "imgclf"


def embeddings_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where frozen-backbone features are kept (training's, the audit's and the unknown
    score's stages alike): ``embeddings/`` in the cache folder."""
    return resolve_cache_dir(cache_dir) / "embeddings"


def build_image_cache(
    source: DataSource,
    image_size: tuple[int, int],
    fit: str = "resize",
    color_mode: str = "rgb",
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    stats: list[os.stat_result | OSError] | None = None,
) -> ImageCache:
    """Decode and fit every image of ``source`` once, or reuse the cache from an earlier run
    (``stats``: the files' ``identity.stat_files``, when taken already)."""
    if fit not in FITS:
        raise DataError(f"fit must be one of {', '.join(FITS)}, received '{fit}'.")
    if color_mode not in ("rgb", "grayscale"):
        raise DataError(f"color_mode must be rgb or grayscale here, received '{color_mode}'.")
    channels = 1 if color_mode == "grayscale" else 3
    shape = (len(source), *image_size, channels)
    if source.is_array and is_fitted(source.images, image_size, channels):
        return ImageCache(source.images, np.ones(len(source), bool), {}, None, reused=True)
    key = _cache_key(source, image_size, fit, color_mode, stats)
    folder = resolve_cache_dir(cache_dir) / "images"
    final = folder / f"{key}.npy"
    if final.is_file() and (folder / f"{key}.valid.npy").is_file():
        return _open(final, folder / f"{key}.valid.npy", reused=True)
    _check_disk_space(folder, int(np.prod(shape)))
    with atomic_path(final) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        del out  # workers open the file themselves; the header is on disk now
        reasons = _fill(source, tmp, shape, image_size, fit, color_mode, workers, progress)
        valid = np.ones(len(source), dtype=bool)
        valid[list(reasons)] = False
        with atomic_path(folder / f"{key}.valid.npy") as valid_tmp, open(valid_tmp, "wb") as out:
            np.save(out, valid)
    return _open(final, folder / f"{key}.valid.npy", reused=False, reasons=reasons)


def _fill(source, tmp, shape, image_size, fit, color_mode, workers, progress) -> dict[int, str]:
    if source.is_array:
        out = np.load(tmp, mmap_mode="r+")
        for i, image in enumerate(source.images):
            out[i] = fit_array(image, image_size, fit, color_mode)
        out.flush()
        return {}
    job = partial(_decode_into, str(tmp), image_size, fit, color_mode)
    items = list(enumerate(map(str, source.paths)))
    try:
        results = parallel_map(job, items, workers, "decoding", progress)
        return {i: reason for i, reason in results if reason is not None}
    finally:
        _open_maps.clear()  # the serial path opened the file here; it is renamed next


def is_fitted(images: np.ndarray, size: tuple[int, int], channels: int) -> bool:
    """Whether (N, H, W, C) arrays already have ``size`` and ``channels``: then they are used as
    they are (training keeps them in memory; prediction feeds them straight in)."""
    return images.shape[1:] == (*size, channels)


def fit_array(image: np.ndarray, size: tuple[int, int], fit: str, color_mode: str) -> np.ndarray:
    """Fit one (H, W, C) uint8 array with the same policy and conversion as image files."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    return fit_image(to_color(pil, color_mode), size, fit)


_open_maps: dict[str, np.memmap] = {}


def _decode_into(
    cache_file: str, size: tuple[int, int], fit: str, color_mode: str, item: tuple[int, str]
) -> tuple[int, str | None]:
    """Worker: decode one file straight into row ``i`` of the memory-mapped cache."""
    i, path = item
    if cache_file not in _open_maps:
        _open_maps.clear()
        _open_maps[cache_file] = np.load(cache_file, mmap_mode="r+")
    try:
        _open_maps[cache_file][i] = decode_file(path, size, fit, color_mode)
    except ImageDecodeError as exc:
        return i, str(exc)
    return i, None


def _open(final: Path, valid_file: Path, reused: bool, reasons=None) -> ImageCache:
    images = np.load(final, mmap_mode="r")
    valid = np.load(valid_file)
    if reasons is None:
        reasons = {
            int(i): "could not be decoded (see the scan report)" for i in np.flatnonzero(~valid)
        }
    return ImageCache(images, valid, reasons, final, reused)


def _cache_key(
    source: DataSource,
    size: tuple[int, int],
    fit: str,
    color_mode: str,
    stats: list[os.stat_result | OSError] | None = None,
) -> str:
    salt = f"images-v{_CACHE_FORMAT}:{size}:{fit}:{color_mode}".encode()
    if source.is_array:
        return image_set_digest(salt, images=source.images).hexdigest()
    stats = stats if stats is not None else stat_files(source.paths)
    files = ((path, stamp(st)) for path, st in zip(source.paths, stats, strict=True))
    return image_set_digest(salt, files=files).hexdigest()


def _check_disk_space(folder: Path, nbytes: int) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if nbytes > free * 0.95:
        raise DataError(
            f"The decoded-image cache needs {nbytes / 1e9:.1f} GB in {folder} but only "
            f"{free / 1e9:.1f} GB are free. Set cache_dir (--cache-dir) to a larger disk or "
            "lower image_size."
        )
