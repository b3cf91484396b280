"""The Open Inference Protocol (KServe v2) REST messages, as its JSON defines them.

A request names its input tensors with a shape, a datatype and row-major ``data`` (flat or
nested). This model takes one of two inputs: ``images``, UINT8 [N, H, W, C] pixels already
at the model's size, or ``image_bytes``, BYTES [N] of base64-encoded image files, decoded and
fitted as ``imgclf predict`` does (raw file bytes when sent as binary data). It answers
with ``probabilities`` (FP32 [N, K]) and ``labels`` (BYTES [N], the top class), or the
outputs asked for by name. The body is JSON whatever its Content-Type (clients often send
none), optionally followed by binary tensor data (``binary.py``). Errors are
``{"error": "..."}`` with a 4xx status.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from imgclf.serve import binary

PIXELS_INPUT, BYTES_INPUT = "images", "image_bytes"
OUTPUTS = ("probabilities", "labels")
ABSTAIN_OUTPUTS = ("unknown", "in_distribution")  # served when the server abstains


class ProtocolError(Exception):
    """A request the protocol cannot accept: 400 with the protocol's error object."""


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None
    _binary: bytes | None = PrivateAttr(default=None)

    @property
    def binary(self) -> bytes | None:
        """The tensor's raw bytes when it came as binary data after the JSON."""
        return self._binary


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """``$inference_request`` of the protocol."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


def read_request(body: bytes, header_length: str | None) -> InferRequest:
    """The request in ``body`` (JSON, then any binary data), each input's bytes attached.

    Raises:
        ProtocolError: the JSON is not an ``$inference_request``.
        binary.BinaryDataError: the binary data does not add up.
    """
    header, data = binary.split_body(body, header_length)
    try:
        request = InferRequest.model_validate_json(header)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        hint = ""
        if first["type"] == "json_invalid" and header_length is None:
            hint = f" (binary data after the JSON needs the {binary.HEADER} header)"
        raise ProtocolError(
            f"malformed inference request at {where}: {first['msg']}{hint}"
        ) from None
    sizes = [
        binary.as_size((tensor.parameters or {}).get("binary_data_size"),
                       f"input '{tensor.name}' parameters.binary_data_size")
        for tensor in request.inputs
    ]  # fmt: skip
    for tensor, piece in zip(request.inputs, binary.take(data, sizes, header_length), strict=True):
        tensor._binary = piece
    return request


def tensor_specs(
    image_size: tuple[int, int], channels: int, classes: int, abstains: bool = False
) -> dict[str, list]:
    """The metadata's ``inputs`` and ``outputs`` (-1: any batch size)."""
    height, width = image_size
    extra = [{"name": "unknown", "datatype": "BOOL", "shape": [-1]},
             {"name": "in_distribution", "datatype": "FP32", "shape": [-1]}]  # fmt: skip
    return {
        "inputs": [
            {"name": PIXELS_INPUT, "datatype": "UINT8", "shape": [-1, height, width, channels]},
            {"name": BYTES_INPUT, "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]},
            {"name": "labels", "datatype": "BYTES", "shape": [-1]},
            *(extra if abstains else []),
        ],
    }


def the_input(request: InferRequest) -> RequestInput:
    """The one input of a request, checked against the protocol's rules."""
    if len(request.inputs) != 1:
        raise ProtocolError(
            f"expected exactly one input ('{PIXELS_INPUT}' or '{BYTES_INPUT}'), "
            f"received {len(request.inputs)}"
        )
    tensor = request.inputs[0]
    expected = {PIXELS_INPUT: "UINT8", BYTES_INPUT: "BYTES"}
    if tensor.name not in expected:
        raise ProtocolError(
            f"unknown input '{tensor.name}'; inputs: '{PIXELS_INPUT}' (UINT8 [N, H, W, C]) or "
            f"'{BYTES_INPUT}' (BYTES [N], base64 image files)"
        )
    if tensor.datatype != expected[tensor.name]:
        raise ProtocolError(
            f"input '{tensor.name}' has datatype {tensor.datatype}; expected "
            f"{expected[tensor.name]}"
        )
    if any(dim < 0 for dim in tensor.shape) or not tensor.shape:
        raise ProtocolError(f"input '{tensor.name}' has shape {tensor.shape}: dims must be >= 0")
    if (tensor.data is None) == (tensor.binary is None):
        raise ProtocolError(
            f"input '{tensor.name}' needs exactly one of 'data' (JSON) or "
            "parameters.binary_data_size (binary data after the JSON)"
        )
    return tensor


def pixel_tensor(tensor: RequestInput, image_size: tuple[int, int], channels: int) -> np.ndarray:
    """A UINT8 input as a (N, H, W, C) array, after checking shape, count and range."""
    height, width = image_size
    if len(tensor.shape) != 4 or tuple(tensor.shape[1:]) != (height, width, channels):
        raise ProtocolError(
            f"input '{PIXELS_INPUT}' has shape {tensor.shape}; expected [N, {height}, {width}, "
            f"{channels}] (resize to the model's size first, or send '{BYTES_INPUT}')"
        )
    if tensor.binary is not None:
        flat = np.frombuffer(tensor.binary, dtype=np.uint8)
        if flat.size != math.prod(tensor.shape):
            raise ProtocolError(
                f"input '{PIXELS_INPUT}' has {flat.size} bytes of binary data; UINT8 shape "
                f"{tensor.shape} needs {math.prod(tensor.shape)}"
            )
        return flat.reshape(tensor.shape)
    try:
        flat = np.asarray(tensor.data, dtype=np.int64).reshape(-1)
    except (ValueError, TypeError, OverflowError):
        raise ProtocolError(f"input '{PIXELS_INPUT}' data must be integers 0..255") from None
    if flat.size != math.prod(tensor.shape):
        raise ProtocolError(
            f"input '{PIXELS_INPUT}' has {flat.size} values; shape {tensor.shape} needs "
            f"{math.prod(tensor.shape)}"
        )
    if flat.size and (flat.min() < 0 or flat.max() > 255):
        raise ProtocolError(f"input '{PIXELS_INPUT}' holds values outside 0..255 (UINT8)")
    return flat.astype(np.uint8).reshape(tensor.shape)


def byte_strings(tensor: RequestInput) -> list[str] | list[bytes]:
    """A BYTES input's elements, after checking shape and count: base64 text from the JSON,
    or the image files themselves from binary data."""
    if len(tensor.shape) != 1:
        raise ProtocolError(
            f"input '{BYTES_INPUT}' has shape {tensor.shape}; expected shape [N] (N images)"
        )
    if tensor.binary is not None:
        return binary.unpack_bytes(tensor.binary, tensor.shape[0], BYTES_INPUT)
    if len(tensor.data) != tensor.shape[0]:
        raise ProtocolError(
            f"input '{BYTES_INPUT}' has shape {tensor.shape} and {len(tensor.data)} elements; "
            "expected shape [N] with N base64 strings"
        )
    if not all(isinstance(item, str) for item in tensor.data):
        raise ProtocolError(f"input '{BYTES_INPUT}' elements must be base64 strings")
    return list(tensor.data)


def requested_outputs(
    request: InferRequest, available: tuple[str, ...] = OUTPUTS
) -> list[tuple[str, bool]]:
    """(name, as binary data) of each output to answer: those named, else all ``available``.

    ``binary_data_output`` in the request's parameters is every output's default;
    ``binary_data`` in an output's parameters overrides it.
    """
    params = request.parameters or {}
    default = binary.as_bool(params.get("binary_data_output"), "parameters.binary_data_output")
    if not request.outputs:
        return [(name, default) for name in available]
    chosen = []
    for output in request.outputs:
        if output.name not in available:
            raise ProtocolError(
                f"unknown output '{output.name}'; outputs: {', '.join(available)}"
                + (" (imgclf serve --abstain adds unknown and in_distribution)"
                   if output.name in ABSTAIN_OUTPUTS else "")
            )  # fmt: skip
        flag = (output.parameters or {}).get("binary_data")
        where = f"output '{output.name}' parameters.binary_data"
        chosen.append((output.name, default if flag is None else binary.as_bool(flag, where)))
    return chosen


def infer_response(
    request: InferRequest,
    model: str,
    version: str,
    probs: np.ndarray,
    classes: list[str],
    shares: np.ndarray | None = None,
    abstain: float | None = None,
) -> tuple[dict[str, Any], bytes | None]:
    """``$inference_response`` with the requested outputs (JSON data flattened row-major),
    and the binary data that follows it (None when every output is JSON). With ``shares``
    (each image's in-distribution share) the ``unknown`` (below ``abstain``) and
    ``in_distribution`` outputs can be asked for too."""
    probs = probs.astype("<f4")
    labels = [classes[i] for i in probs.argmax(1)] if len(probs) else []
    forms = {  # name: datatype, shape, JSON data, binary data
        "probabilities": ("FP32", list(probs.shape), probs.reshape(-1).tolist(), probs.tobytes()),
        "labels": ("BYTES", [len(probs)], labels, binary.pack_bytes([t.encode() for t in labels])),
    }
    available = OUTPUTS
    if shares is not None and abstain is not None:
        unknown, shares = shares < abstain, shares.astype("<f4")
        forms["unknown"] = (
            "BOOL",
            [len(probs)],
            unknown.tolist(),
            unknown.astype(np.uint8).tobytes(),
        )
        forms["in_distribution"] = ("FP32", [len(probs)], shares.tolist(), shares.tobytes())
        available = OUTPUTS + ABSTAIN_OUTPUTS
    outputs, chunks = [], []
    for name, as_binary in requested_outputs(request, available):
        datatype, shape, data, raw = forms[name]
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if as_binary:
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = data
        outputs.append(tensor)
    response = {"model_name": model, "model_version": version, "outputs": outputs}
    if request.id is not None:
        response["id"] = request.id
    return response, b"".join(chunks) if chunks else None
