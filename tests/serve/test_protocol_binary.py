"""Inference requests as the Open Inference Protocol's clients send them, built by hand from
the protocol's documents (KServe's REST spec, Triton's binary tensor data extension): JSON
with or without a Content-Type, binary inputs and outputs, outputs asked for by name, and
framing that does not add up (a 400 with its reason, never a 5xx)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import COLOURS, encoded

from imgclf import api

URL = "/v2/models/colours/infer"
HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def client(colour_run: Path):
    app = api.serve_app(colour_run, max_upload_mb=1, max_files=4)
    with TestClient(app) as test_client:
        assert app.state.worker.ready.wait(60)
        yield test_client


def _pixels(*colours: str) -> np.ndarray:
    return np.stack([np.full((16, 16, 3), COLOURS[c], np.uint8) for c in colours])


def _json_request(*colours: str, **extra) -> dict:
    pixels = _pixels(*colours)
    tensor = {"name": "images", "datatype": "UINT8", "shape": list(pixels.shape),
              "data": pixels.reshape(-1).tolist()}  # fmt: skip
    return {"inputs": [tensor], **extra}


def _framed(request: dict, *chunks: bytes, length: int | str | None = None):
    """The body and headers of a request with binary data after its JSON (the extension's
    example: JSON, then each binary input's bytes in order)."""
    header = json.dumps(request).encode()
    return header + b"".join(chunks), {HEADER: str(len(header) if length is None else length)}


def _binary_input(name: str, datatype: str, shape: list[int], raw: bytes) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape,
            "parameters": {"binary_data_size": len(raw)}}  # fmt: skip


def _bytes_tensor(*items: bytes) -> bytes:
    """BYTES in binary form: each element a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _unframed(response) -> tuple[dict, bytes]:
    length = int(response.headers[HEADER])
    return json.loads(response.content[:length]), response.content[length:]


def _unpack_bytes(raw: bytes) -> list[bytes]:
    items, offset = [], 0
    while offset < len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        items.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return items


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/octet-stream",
    ],  # fmt: skip
)
def test_the_json_body_is_read_whatever_its_content_type(client, content_type) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps(_json_request("blue", "red")).encode()
    response = client.post(URL, content=body, headers=headers)
    if content_type is None:
        assert "content-type" not in response.request.headers
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][1]["data"] == ["blue", "red"]


def test_binary_pixels_in_and_every_output_out_as_binary(client: TestClient) -> None:
    pixels = _pixels("blue", "green")
    raw = pixels.tobytes()
    request = {"id": "b1", "inputs": [_binary_input("images", "UINT8", [2, 16, 16, 3], raw)],
               "parameters": {"binary_data_output": True}}  # fmt: skip
    body, headers = _framed(request, raw)
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    reply, data = _unframed(response)
    probs, labels = reply["outputs"]
    assert reply["id"] == "b1" and (probs["name"], labels["name"]) == ("probabilities", "labels")
    assert "data" not in probs and probs["parameters"] == {"binary_data_size": 2 * 3 * 4}
    assert labels["parameters"] == {"binary_data_size": 4 + 4 + 4 + 5}  # "blue", "green"
    assert len(data) == 24 + 17
    values = np.frombuffer(data[:24], "<f4").reshape(probs["shape"])
    assert _unpack_bytes(data[24:]) == [b"blue", b"green"]
    as_json = client.post(URL, json=_json_request("blue", "green")).json()["outputs"][0]
    assert np.allclose(values.reshape(-1), as_json["data"])  # the same numbers either way


def test_binary_image_files_and_one_output_by_name(client: TestClient) -> None:
    raw = _bytes_tensor(encoded("red"), encoded("green", "JPEG"))
    request = {"inputs": [_binary_input("image_bytes", "BYTES", [2], raw)],
               "outputs": [{"name": "labels", "parameters": {"binary_data": True}}]}  # fmt: skip
    body, headers = _framed(request, raw)
    reply, data = _unframed(client.post(URL, content=body, headers=headers))
    assert [o["name"] for o in reply["outputs"]] == ["labels"]
    assert reply["outputs"][0]["shape"] == [2] and _unpack_bytes(data) == [b"red", b"green"]


def test_outputs_by_name_in_json_and_a_per_output_override(client: TestClient) -> None:
    only = client.post(URL, json=_json_request("red", outputs=[{"name": "probabilities"}]))
    assert [o["name"] for o in only.json()["outputs"]] == ["probabilities"]
    assert HEADER.lower() not in only.headers  # every output JSON: a plain JSON reply
    mixed = _json_request("red", parameters={"binary_data_output": True},
                          outputs=[{"name": "labels", "parameters": {"binary_data": False}},
                                   {"name": "probabilities"}])  # fmt: skip
    reply, data = _unframed(client.post(URL, json=mixed))
    labels, probs = reply["outputs"]
    assert labels["data"] == ["red"] and "parameters" not in labels
    assert probs["parameters"]["binary_data_size"] == len(data) == 12


def test_binary_input_with_json_outputs_and_the_extension_in_metadata(client) -> None:
    raw = _bytes_tensor(encoded("blue"))
    body, headers = _framed({"inputs": [_binary_input("image_bytes", "BYTES", [1], raw)],
                             "outputs": [{"name": "labels"}]}, raw)  # fmt: skip
    response = client.post(URL, content=body, headers=headers)
    assert response.json()["outputs"] == [{"name": "labels", "datatype": "BYTES", "shape": [1],
                                           "data": ["blue"]}]  # fmt: skip
    assert "binary_tensor_data" in client.get("/v2").json()["extensions"]
    doc = client.get("/openapi.json").json()["paths"]["/v2/models/{name}/infer"]["post"]
    assert "$ref" not in json.dumps(doc["requestBody"])  # the schema is inlined, complete
    assert {"application/json", "application/octet-stream"} <= set(doc["requestBody"]["content"])


PIXELS = _pixels("red").tobytes()
PNG = encoded("red")


def _bad(raw: bytes, *, size=None, length=None, name="images", shape=None, **request):
    tensor = _binary_input(name, "UINT8" if name == "images" else "BYTES",
                           shape or ([1, 16, 16, 3] if name == "images" else [1]), raw)  # fmt: skip
    if size is not None:
        tensor["parameters"]["binary_data_size"] = size
    return _framed({"inputs": [tensor], **request}, raw, length=length)


@pytest.mark.parametrize(
    ("framed", "says"),
    [
        (_bad(PIXELS, length="ten"), "must be a byte count, received 'ten'"),
        (_bad(PIXELS, length=10**6), "is 1000000 but the body has"),
        (_bad(PIXELS, length=0), "is 0 but the body has"),
        (_bad(PIXELS, size=800), "declare 800 bytes of binary data"),
        (_bad(PIXELS, size=700), "but 768 bytes follow the JSON object"),
        (_bad(PIXELS, size=-1), "binary_data_size must be a byte count"),
        (_bad(PIXELS, size="768"), "binary_data_size must be a byte count"),
        (_bad(PIXELS, shape=[2, 16, 16, 3]), "UINT8 shape [2, 16, 16, 3] needs 1536"),
        (_bad(_bytes_tensor(PNG)[:-5], name="image_bytes"), "only"),
        (_bad(_bytes_tensor(PNG) + b"\x01", name="image_bytes"), "4-byte length of element 1"),
        (_bad(_bytes_tensor(PNG, PNG), name="image_bytes"), "holds 2 elements; its shape needs 1"),
        (_bad(PIXELS, parameters={"binary_data_output": "yes"}), "must be true or false"),
        (_bad(PIXELS, outputs=[{"name": "logits"}]), "unknown output 'logits'"),
    ],
)
def test_binary_data_that_does_not_add_up_is_a_400(client, framed, says) -> None:
    body, headers = framed
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 400 and list(response.json()) == ["error"], response.text
    assert says in response.json()["error"]


def test_other_framing_mistakes_are_400_or_415(client: TestClient) -> None:
    body, _ = _bad(PIXELS)
    missing = client.post(URL, content=body)  # binary data, no header
    assert missing.status_code == 400 and HEADER in missing.json()["error"]
    both = _json_request("red")
    both["inputs"][0]["parameters"] = {"binary_data_size": 768}
    body, headers = _framed(both, PIXELS)
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 400 and "exactly one of 'data'" in response.json()["error"]
    neither = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 16, 16, 3]}]}
    assert "exactly one of 'data'" in client.post(URL, json=neither).json()["error"]
    gzip = client.post(URL, json=_json_request("red"), headers={"Content-Encoding": "gzip"})
    assert gzip.status_code == 415 and "uncompressed" in gzip.json()["error"]
    as_text = {"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
               "data": [base64.b64encode(PNG).decode()]}]}  # fmt: skip
    assert client.post(URL, content=json.dumps(as_text)).json()["outputs"][1]["data"] == ["red"]


def test_the_body_limit_applies_before_the_binary_data_is_read(client: TestClient) -> None:
    raw = bytes(2 * 2**20)
    body, headers = _framed({"inputs": [_binary_input("images", "UINT8", [1], raw)]}, raw)
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 413 and "limit" in response.json()["error"]
    chunked = client.post(URL, content=iter([body[: 2**20], body[2**20 :]]), headers=headers)
    assert chunked.status_code == 413 and "limit" in chunked.json()["error"]
