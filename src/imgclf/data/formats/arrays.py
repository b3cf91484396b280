"""Image arrays in an .npz file: ``X_train, y_train, X_test, y_test`` (R2's layout) or ``x, y``.

Images may be (N, H, W), (N, H, W, 1) or (N, H, W, 3); uint8, or float in [0, 1] or [0, 255].
Labels may be integers or strings. Everything becomes (N, H, W, C) uint8.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from imgclf.data.source import DataSource, encode_labels
from imgclf.errors import DataError

_LAYOUTS = (
    (("X_train", "y_train"), ("X_test", "y_test")),
    (("x_train", "y_train"), ("x_test", "y_test")),
    (("X", "y"), None),
    (("x", "y"), None),
)


def read_npz(path: str | os.PathLike) -> DataSource:
    """Read an .npz of images and labels into a DataSource (with a test split when present)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist. Pass an existing .npz file.")
    arrays = _read_arrays(path)
    train_keys, test_keys = _layout(path, arrays)
    parts = [(train_keys, "train")] + ([(test_keys, "test")] if test_keys else [])
    images, raw_labels, splits = [], [], []
    for (x_key, y_key), split in parts:
        x, y = arrays[x_key], arrays[y_key].reshape(-1)
        if len(x) != len(y):
            raise DataError(
                f"npz file {path}: {x_key} has {len(x)} images but {y_key} has {len(y)} labels. "
                "Each image needs exactly one label."
            )
        images.append(to_uint8_images(x, f"{path}:{x_key}"))
        raw_labels += y.tolist()
        splits += [split] * len(y)
    shapes = {im.shape[1:] for im in images}
    if len(shapes) > 1:
        raise DataError(
            f"npz file {path}: train and test images differ in shape: {sorted(shapes)}."
        )
    classes, labels = encode_labels(raw_labels)
    return DataSource(
        name=str(path),
        classes=classes,
        labels=labels,
        images=np.concatenate(images),
        splits=np.asarray(splits, dtype=object) if test_keys else None,
    )


def to_uint8_images(x: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W[, C]) uint8 or float images -> (N, H, W, C) uint8 with C in {1, 3}."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise DataError(
            f"{where} has shape {x.shape}; expected (N, H, W), (N, H, W, 1) or (N, H, W, 3). "
            "Channels-first arrays need np.moveaxis(x, 1, -1)."
        )
    if x.shape[-1] == 4:
        x = x[..., :3]
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{where} has dtype {x.dtype}; expected uint8 or float pixels.")
    if not np.isfinite(x).all():
        raise DataError(f"{where} contains NaN or infinite pixels. Clean the array first.")
    low, high = float(x.min(initial=0)), float(x.max(initial=0))
    if low < 0 or high > 255:
        raise DataError(f"{where} has pixels in [{low:g}, {high:g}]; expected [0, 1] or [0, 255].")
    scale = 255.0 if high <= 1.0 else 1.0
    return np.round(x.astype(np.float32) * scale).astype(np.uint8)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive. The file is opened here so that it is closed on every error
    (np.load leaks its own handle when the zip is corrupt); only zip archives reach np.load."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise DataError(
                f"npz file {path} is not an .npz archive (a zip of .npy arrays); it starts with "
                f"{magic!r}. Save the arrays with numpy.savez(path, x=images, y=labels)."
            )
        handle.seek(0)
        try:
            with np.load(handle, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except ValueError as exc:
            if "allow_pickle" not in str(exc):
                raise DataError(f"npz file {path} cannot be read: {exc}.") from None
            raise DataError(
                f"npz file {path} holds an object (pickled) array, which is refused: loading "
                "pickles can run code. Save numbers or strings instead, e.g. "
                "numpy.savez(path, x=images.astype('uint8'), y=labels.astype(str))."
            ) from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(
                f"npz file {path} cannot be read: {exc}. Save it again with numpy.savez."
            ) from None


def _layout(path: Path, arrays: dict) -> tuple[tuple[str, str], tuple[str, str] | None]:
    for train, test in _LAYOUTS:
        if all(k in arrays for k in train):
            return train, test if test and all(k in arrays for k in test) else None
    raise DataError(
        f"npz file {path} holds {sorted(arrays)}; expected X_train, y_train, X_test, y_test "
        "(or x, y). Rename the arrays when saving with numpy.savez."
    )
