"""Built-in datasets by name: ``load_builtin("mnist")`` returns a DataSource (timm-style registry).

Each set lives in ``<data_dir>/<name>/``, where data_dir is the explicit argument, else
$IMGCLF_DATA_DIR, else ~/.cache/imgclf/datasets. Missing files are downloaded from the official
mirrors and checked against the official md5 (the values torchvision uses). Files that were
already there are checked by content instead (header, shape, count, label range), because a
re-compressed copy of the same data has different gzip bytes and would fail an md5 check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.data.formats.cifar_binary import (
    CIFAR_ARCHIVE,
    CIFAR_BATCH_FILES,
    CIFAR_BATCHES,
    CIFAR_FOLDER,
    CIFAR_META,
    cifar_classes,
    cifar_records,
    read_cifar_archive,
    read_cifar_folder,
)
from imgclf.data.formats.download import REPLACE_HINT, download_file
from imgclf.data.formats.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from imgclf.data.source import DataSource
from imgclf.errors import DataError, did_you_mean

DATA_DIR_ENV = "IMGCLF_DATA_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/imgclf/datasets")

# factory(data_dir, download): data_dir is the resolved root; the set reads its own subfolder.
DatasetFactory = Callable[[Path, bool], DataSource]

_REGISTRY: dict[str, DatasetFactory] = {}
CHANNELS = {"digits": 1, "mnist": 1, "fashion-mnist": 1, "cifar10": 3}  # of each set's images


@dataclass(frozen=True)
class DatasetSpec:
    """Where a downloadable set comes from and what its files must hold.

    Attributes:
        name: Registry name, and the subfolder of the data dir that holds the files.
        classes: Class names in the official label order.
        mirrors: Base URLs (ending in '/') tried in order for each file.
        md5: File name -> official md5, checked on every file that is downloaded.
        sizes: Split name -> number of images, checked on every load.
    """

    name: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    md5: Mapping[str, str]
    sizes: Mapping[str, int]


# ---------------------------------------------------------------- registry and data dir


def register_dataset(name: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator registering ``factory(data_dir, download) -> DataSource`` under ``name``."""
    key = _normalise(name)

    def decorator(factory: DatasetFactory) -> DatasetFactory:
        if key in _REGISTRY:
            raise ValueError(f"built-in dataset {key!r} is already registered")
        _REGISTRY[key] = factory
        return factory

    return decorator


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_builtin`, sorted."""
    return sorted(_REGISTRY)


def load_builtin(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> DataSource:
    """Load a built-in set by name (case-insensitive, '_' or '-').

    Args:
        name: One of :func:`list_datasets`.
        data_dir: Root folder of the sets (see :func:`resolve_data_dir`).
        download: Fetch missing files from the official mirrors; False fails instead.

    Raises:
        DataError: Unknown name, files missing (and not downloadable) or corrupt.
    """
    key = _normalise(name)
    factory = _REGISTRY.get(key)
    if factory is None:
        available = list_datasets()
        raise DataError(
            f"unknown built-in dataset {name!r}. Available: {', '.join(available)}."
            f"{did_you_mean(key, available)}"
        )
    return factory(resolve_data_dir(data_dir), download)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The root folder of the built-in sets, absolute.

    An explicit ``data_dir`` wins, then $IMGCLF_DATA_DIR, then ~/.cache/imgclf/datasets, so a
    CI job or a shared machine can point every run at one copy without changing commands.
    """
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().resolve()


def _normalise(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


# ---------------------------------------------------------------- files: present or downloaded


def _missing(spec: DatasetSpec, folder: Path) -> list[str]:
    return [name for name in spec.md5 if not (folder / name).is_file()]


def _ensure_files(spec: DatasetSpec, folder: Path, download: bool, alternative: str = "") -> None:
    """Download the spec's missing files into ``folder``, or say exactly how to get them."""
    missing = _missing(spec, folder)
    if missing and not download:
        why = "download=False, so nothing was downloaded"
        raise DataError(_missing_message(spec, folder, missing, why, alternative))
    for filename in missing:
        urls = [mirror + filename for mirror in spec.mirrors]
        try:
            download_file(urls, folder / filename, spec.md5[filename])
        except DataError as error:
            still_missing = _missing(spec, folder)
            message = _missing_message(spec, folder, still_missing, str(error), alternative)
            raise DataError(message) from None


def _missing_message(
    spec: DatasetSpec, folder: Path, missing: list[str], why: str, alternative: str
) -> str:
    them = "it" if len(missing) == 1 else "them"
    urls = "".join(f"\n  {spec.mirrors[0]}{name}" for name in missing)
    others = f"\n(mirrors: {', '.join(spec.mirrors[1:])})" if len(spec.mirrors) > 1 else ""
    return (
        f"built-in dataset '{spec.name}' is missing {', '.join(missing)} in {folder}"
        f"{alternative}: {why.rstrip('.')}.\nDownload {them} from{urls}{others}\n"
        f"and put {them} in {folder}, or pass --data-dir (data_dir= in Python) or set "
        f"{DATA_DIR_ENV} to a folder whose '{spec.name}/' subfolder holds {them}."
    )


def _check_size(spec: DatasetSpec, split: str, count: int, where: str) -> None:
    expected = spec.sizes[split]
    if count != expected:
        raise DataError(
            f"{where} holds {count} images, expected {expected} for {spec.name}'s {split} split: "
            f"the file is incomplete or not the official one. {REPLACE_HINT}"
        )


def _check_labels(labels: np.ndarray, n_classes: int, where: str) -> None:
    if len(labels) and int(labels.max()) >= n_classes:
        raise DataError(
            f"{where} has label value {int(labels.max())}, expected 0..{n_classes - 1}: "
            f"the file is corrupt or not the official one. {REPLACE_HINT}"
        )


def _split_column(counts: list[tuple[str, int]]) -> np.ndarray:
    names = np.array([split for split, _ in counts], dtype=object)
    return np.repeat(names, [n for _, n in counts])


# ---------------------------------------------------------------- MNIST-style IDX sets

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_SIZES = {"train": 60_000, "test": 10_000}

# md5 values: torchvision/datasets/mnist.py (pytorch/vision), MNIST.resources and
# FashionMNIST.resources; the same values are published by the Fashion-MNIST authors.
MNIST = DatasetSpec(
    name="mnist",
    classes=tuple("0123456789"),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    sizes=MNIST_SIZES,
)
FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    sizes=MNIST_SIZES,
)


def load_idx_set(
    spec: DatasetSpec, data_dir: str | os.PathLike | None = None, download: bool = True
) -> DataSource:
    """Read an MNIST-format set (four IDX gzip files) into (N, 28, 28, 1) uint8 images.

    The train split comes first, then the test split, each in file order.
    """
    folder = resolve_data_dir(data_dir) / spec.name
    _ensure_files(spec, folder, download)
    parts = {split: _read_idx_split(spec, folder, split) for split in IDX_FILES}
    images = np.concatenate([images for images, _ in parts.values()])
    return DataSource(
        name=spec.name,
        classes=list(spec.classes),
        labels=np.concatenate([labels for _, labels in parts.values()]),
        images=images[..., np.newaxis],
        splits=_split_column([(split, len(labels)) for split, (_, labels) in parts.items()]),
    )


def _read_idx_split(spec: DatasetSpec, folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = (folder / name for name in IDX_FILES[split])
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        size = "x".join(map(str, images.shape[1:]))
        raise DataError(f"{images_path} holds {size} images, expected 28x28. {REPLACE_HINT}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels; they must pair up one to one. Replace both with the official files."
        )
    _check_size(spec, split, len(images), str(images_path))
    _check_labels(labels, len(spec.classes), str(labels_path))
    return images, labels


# ---------------------------------------------------------------- CIFAR-10, binary version


# md5 of cifar-10-binary.tar.gz as published on https://www.cs.toronto.edu/~kriz/cifar.html
CIFAR10 = DatasetSpec(
    name="cifar10",
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    md5={CIFAR_ARCHIVE: "c32a1d4ab5d03f1284b67883e8d87530"},
    sizes={"train": 50_000, "test": 10_000},
)


def load_cifar_set(
    spec: DatasetSpec, data_dir: str | os.PathLike | None = None, download: bool = True
) -> DataSource:
    """Read CIFAR-10's binary version into (N, 32, 32, 3) uint8 images, train then test.

    Reads the extracted ``cifar-10-batches-bin/`` folder when it is complete, else the batches
    straight out of ``cifar-10-binary.tar.gz`` (downloaded if missing) without extracting it.
    The Python (pickle) version is never read: unpickling a download can run code.
    """
    folder = resolve_data_dir(data_dir) / spec.name
    batches = folder / CIFAR_FOLDER
    if all((batches / name).is_file() for name in CIFAR_BATCH_FILES):
        return _cifar_source(spec, read_cifar_folder(batches), str(batches))
    alternative = (
        f" (or a complete extracted {CIFAR_FOLDER}/ folder: {', '.join(CIFAR_BATCH_FILES)})"
    )
    _ensure_files(spec, folder, download, alternative)
    archive = folder / CIFAR_ARCHIVE
    return _cifar_source(spec, read_cifar_archive(archive), f"{archive}:{CIFAR_FOLDER}")


def _cifar_source(spec: DatasetSpec, members: dict[str, bytes], where: str) -> DataSource:
    parts, counts = [], []
    for split, names in CIFAR_BATCHES.items():
        block = np.concatenate([cifar_records(members[name], f"{where}/{name}") for name in names])
        _check_size(spec, split, len(block), f"{where} ({split} batches)")
        parts.append(block)
        counts.append((split, len(block)))
    records = np.concatenate(parts)
    classes = cifar_classes(members.get(CIFAR_META), f"{where}/{CIFAR_META}", spec.classes)
    labels = records[:, 0]
    _check_labels(labels, len(classes), where)
    planes = records[:, 1:].reshape(-1, 3, 32, 32)  # R, G, B planes, each 32 rows of 32
    return DataSource(
        name=spec.name,
        classes=classes,
        labels=labels,
        images=np.ascontiguousarray(planes.transpose(0, 2, 3, 1)),
        splits=_split_column(counts),
    )


# ---------------------------------------------------------------- the registered sets


@register_dataset("digits")
def _digits(data_dir: Path, download: bool) -> DataSource:
    """scikit-learn's 8x8 digits: bundled with scikit-learn, so always there (no data_dir)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * 255 / 16).astype(np.uint8)  # 0..16 -> 0..255
    return DataSource(
        name="digits",
        classes=[str(digit) for digit in range(10)],
        labels=bunch.target,
        images=images[..., np.newaxis],
    )


@register_dataset("mnist")
def _mnist(data_dir: Path, download: bool) -> DataSource:
    return load_idx_set(MNIST, data_dir, download)


@register_dataset("fashion-mnist")
def _fashion_mnist(data_dir: Path, download: bool) -> DataSource:
    return load_idx_set(FASHION_MNIST, data_dir, download)


@register_dataset("cifar10")
def _cifar10(data_dir: Path, download: bool) -> DataSource:
    return load_cifar_set(CIFAR10, data_dir, download)
