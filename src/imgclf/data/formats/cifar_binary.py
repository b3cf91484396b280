"""CIFAR-10's binary version: records of 1 label byte + 3072 pixel bytes (R, G, B planes).

Read from the extracted folder or streamed out of the .tar.gz. The Python (pickle) version is
never read: unpickling a download can run code.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from imgclf.data.formats.download import REPLACE_HINT
from imgclf.errors import DataError

CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_FOLDER = "cifar-10-batches-bin"
CIFAR_BATCHES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
CIFAR_BATCH_FILES = (*CIFAR_BATCHES["train"], *CIFAR_BATCHES["test"])
CIFAR_META = "batches.meta.txt"
CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar_folder(batches: Path) -> dict[str, bytes]:
    """The batch (and meta, when present) files of an extracted cifar-10-batches-bin/ folder."""
    names = [*CIFAR_BATCH_FILES] + ([CIFAR_META] if (batches / CIFAR_META).is_file() else [])
    try:
        return {name: (batches / name).read_bytes() for name in names}
    except OSError as error:
        raise DataError(f"cannot read {error.filename}: {error.strerror}.") from None


def read_cifar_archive(archive: Path) -> dict[str, bytes]:
    """The batch (and meta) members of the tar.gz, read in one streaming pass."""
    wanted = {*CIFAR_BATCH_FILES, CIFAR_META}
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted and name not in members:
                    members[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{archive} cannot be read as a .tar.gz archive ({error}). {REPLACE_HINT}"
        ) from None
    absent = [name for name in CIFAR_BATCH_FILES if name not in members]
    if absent:
        raise DataError(
            f"{archive} has no {', '.join(absent)}: it is not CIFAR-10's binary version "
            f"({CIFAR_ARCHIVE}, members {CIFAR_FOLDER}/data_batch_1..5.bin and test_batch.bin). "
            "The Python (pickle) version is not read. Replace it with the binary version."
        )
    return members


def cifar_records(data: bytes, where: str) -> np.ndarray:
    """One batch file's bytes as an (N, 3073) uint8 array of records."""
    if not data or len(data) % CIFAR_RECORD:
        raise DataError(
            f"{where} is {len(data)} bytes, not a whole number of {CIFAR_RECORD}-byte records "
            f"(1 label byte + 3072 pixel bytes): it is truncated or not from the binary version. "
            f"{REPLACE_HINT}"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)


def cifar_classes(meta: bytes | None, where: str, official: tuple[str, ...]) -> list[str]:
    """Class names from batches.meta.txt (one per line), else the official list."""
    if meta is None:
        return list(official)
    names = [line.strip() for line in meta.decode("utf-8", "replace").splitlines() if line.strip()]
    if len(names) != len(official):
        raise DataError(
            f"{where} lists {len(names)} class names, expected {len(official)} (one per line). "
            "Fix it, or delete it to use the official names."
        )
    return names
