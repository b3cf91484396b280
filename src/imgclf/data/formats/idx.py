"""The IDX file format of MNIST and Fashion-MNIST: a magic number, dims, then uint8 data."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from imgclf.data.formats.download import REPLACE_HINT
from imgclf.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_IDX_KIND = {IMAGES_MAGIC: "image", LABELS_MAGIC: "label"}


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Decompress and parse one IDX gzip file whose magic number must be ``magic``."""
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path} cannot be decompressed ({error}): it is truncated or not a gzip file. "
            f"{REPLACE_HINT}"
        ) from None
    return parse_idx(data, magic, str(path))


def parse_idx(data: bytes, magic: int, where: str) -> np.ndarray:
    """The uint8 array in IDX bytes, after checking magic number and size against the header.

    Header: a big-endian int32 magic (0x0000, type 0x08 = uint8, number of dims), then one
    big-endian int32 per dim, then the data in C order.
    """
    kind = _IDX_KIND.get(magic, "IDX")
    if len(data) < 4 or int.from_bytes(data[:4], "big") != magic:
        found = int.from_bytes(data[:4], "big") if len(data) >= 4 else f"{len(data)} bytes"
        raise DataError(
            f"{where} is not an IDX {kind} file: magic number {found}, expected {magic}. "
            f"{REPLACE_HINT}"
        )
    header = 4 + 4 * data[3]
    if len(data) < header:
        raise DataError(f"{where} is truncated inside its {header}-byte header. {REPLACE_HINT}")
    dims = tuple(int.from_bytes(data[i : i + 4], "big") for i in range(4, header, 4))
    expected, found = int(np.prod(dims)), len(data) - header
    if found != expected:
        shape = " x ".join(map(str, dims))
        problem = "is truncated" if found < expected else "has trailing bytes"
        raise DataError(
            f"{where} {problem}: its header says {shape} = {expected} bytes of {kind} data, "
            f"the file holds {found}. {REPLACE_HINT}"
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(dims)
