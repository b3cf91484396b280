"""The Open Inference Protocol (KServe v2) REST messages, as its JSON defines them.

A request names its input tensors with a shape, a datatype and row-major ``data`` (flat or
nested). This model takes one of two inputs: ``images``, UINT8 [N, H, W, C] pixels already
at the model's size, or ``image_bytes``, BYTES [N] of base64-encoded image files, decoded and
fitted as ``imgclf predict`` does. It answers with ``probabilities`` (FP32 [N, K]) and
``labels`` (BYTES [N], the top class). Errors are ``{"error": "..."}`` with a 4xx status.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

PIXELS_INPUT, BYTES_INPUT = "images", "image_bytes"
OUTPUTS = ("probabilities", "labels")


class ProtocolError(Exception):
    """A request the protocol cannot accept: 400 with the protocol's error object."""


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any]


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


def tensor_specs(image_size: tuple[int, int], channels: int, classes: int) -> dict[str, list]:
    """The metadata's ``inputs`` and ``outputs`` (-1: any batch size)."""
    height, width = image_size
    return {
        "inputs": [
            {"name": PIXELS_INPUT, "datatype": "UINT8", "shape": [-1, height, width, channels]},
            {"name": BYTES_INPUT, "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]},
            {"name": "labels", "datatype": "BYTES", "shape": [-1]},
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
    return tensor


def pixel_tensor(tensor: RequestInput, image_size: tuple[int, int], channels: int) -> np.ndarray:
    """A UINT8 input as a (N, H, W, C) array, after checking shape, count and range."""
    height, width = image_size
    if len(tensor.shape) != 4 or tuple(tensor.shape[1:]) != (height, width, channels):
        raise ProtocolError(
            f"input '{PIXELS_INPUT}' has shape {tensor.shape}; expected [N, {height}, {width}, "
            f"{channels}] (resize to the model's size first, or send '{BYTES_INPUT}')"
        )
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


def byte_strings(tensor: RequestInput) -> list[str]:
    """A BYTES input's elements (base64 text), after checking shape and count."""
    if len(tensor.shape) != 1 or len(tensor.data) != tensor.shape[0]:
        raise ProtocolError(
            f"input '{BYTES_INPUT}' has shape {tensor.shape} and {len(tensor.data)} elements; "
            "expected shape [N] with N base64 strings"
        )
    if not all(isinstance(item, str) for item in tensor.data):
        raise ProtocolError(f"input '{BYTES_INPUT}' elements must be base64 strings")
    return list(tensor.data)


def requested_outputs(request: InferRequest) -> tuple[str, ...]:
    if not request.outputs:
        return OUTPUTS
    names = tuple(output.name for output in request.outputs)
    unknown = [name for name in names if name not in OUTPUTS]
    if unknown:
        raise ProtocolError(f"unknown output '{unknown[0]}'; outputs: {', '.join(OUTPUTS)}")
    return names


def infer_response(
    request: InferRequest, model: str, version: str, probs: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """``$inference_response``: the requested outputs, flattened row-major."""
    tensors = {
        "probabilities": {
            "name": "probabilities", "datatype": "FP32", "shape": list(probs.shape),
            "data": probs.astype(np.float32).reshape(-1).tolist(),
        },
        "labels": {
            "name": "labels", "datatype": "BYTES", "shape": [len(probs)],
            "data": [classes[i] for i in probs.argmax(1)] if len(probs) else [],
        },
    }  # fmt: skip
    response = {"model_name": model, "model_version": version,
                "outputs": [tensors[name] for name in requested_outputs(request)]}  # fmt: skip
    if request.id is not None:
        response["id"] = request.id
    return response
