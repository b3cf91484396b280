"""The binary tensor data extension of the Open Inference Protocol (Triton's, adopted by KServe).

tritonclient.http, the most used v2 client, sends inputs and asks for outputs this way by
default: the body is the JSON object, then the raw bytes of every tensor that declares
``binary_data_size``, in the JSON's order; the ``Inference-Header-Content-Length`` header gives
the JSON's length. Raw data is little-endian and row-major; a BYTES element is a 4-byte
little-endian length followed by its bytes. Every framing mistake is a ``BinaryDataError``
(a 400), never an index error deep in numpy.
"""

from __future__ import annotations

import struct

HEADER = "Inference-Header-Content-Length"
EXTENSION = "binary_tensor_data"  # its name in the server metadata's extensions
_LENGTH = struct.Struct("<I")


class BinaryDataError(ValueError):
    """Binary tensor data that does not add up: 400 with the protocol's error object."""


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(the JSON object, the binary data after it); all JSON without the header."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not text.isdigit():
        raise BinaryDataError(f"{HEADER} must be a byte count, received '{header_length}'")
    length = int(text)
    if not 0 < length <= len(body):
        raise BinaryDataError(
            f"{HEADER} is {length} but the body has {len(body)} bytes; it gives the length of "
            "the JSON object that starts the body (1 up to the body's length)"
        )
    return body[:length], body[length:]


def take(data: bytes, sizes: list[int | None], header_length: str | None) -> list[bytes | None]:
    """Each input's bytes, cut from ``data`` in order (None: its data is in the JSON)."""
    declared = sum(size for size in sizes if size is not None)
    if declared != len(data):
        hint = "" if header_length is not None else f" (no {HEADER} header was sent)"
        raise BinaryDataError(
            f"the inputs declare {declared} bytes of binary data (parameters.binary_data_size) "
            f"but {len(data)} bytes follow the JSON object{hint}"
        )
    pieces, start = [], 0
    for size in sizes:
        pieces.append(None if size is None else data[start : start + size])
        start += size or 0
    return pieces


def unpack_bytes(data: bytes, count: int, name: str) -> list[bytes]:
    """The ``count`` elements of a BYTES tensor in binary form."""
    items, offset = [], 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise BinaryDataError(
                f"input '{name}' binary data ends inside the 4-byte length of element "
                f"{len(items)}; each BYTES element is a little-endian uint32 length, then bytes"
            )
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + size > len(data):
            raise BinaryDataError(
                f"input '{name}' element {len(items)} declares {size} bytes but only "
                f"{len(data) - offset} remain in its binary data"
            )
        items.append(data[offset : offset + size])
        offset += size
    if len(items) != count:
        raise BinaryDataError(
            f"input '{name}' binary data holds {len(items)} elements; its shape needs {count}"
        )
    return items


def pack_bytes(items: list[bytes]) -> bytes:
    """A BYTES tensor in binary form."""
    return b"".join(_LENGTH.pack(len(item)) + item for item in items)


def as_bool(value: object, where: str) -> bool:
    """A boolean parameter (``binary_data``, ``binary_data_output``); absent is false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise BinaryDataError(f"{where} must be true or false, received {value!r}")


def as_size(value: object, where: str) -> int | None:
    """A ``binary_data_size`` parameter: a byte count, or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BinaryDataError(f"{where} must be a byte count (an integer >= 0), received {value!r}")
    return value
