"""A real Open Inference Protocol client library, used as its users use it, against a real
`imgclf serve` process: Triton's tritonclient.http, which sends no Content-Type and sends
tensors as binary data by default (skipped, with the reason, when it is not installed)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from tests.serve.conftest import COLOURS, encoded

pytestmark = [pytest.mark.protocol_client, pytest.mark.slow]


@pytest.fixture(scope="module")
def http():
    """tritonclient.http, or a skip that says how to install it (without its http extra the
    package raises RuntimeError, not ImportError)."""
    try:
        import tritonclient.http as http
    except (ImportError, RuntimeError) as exc:
        pytest.skip(
            f"tritonclient[http] is not installed ({exc}): pip install 'tritonclient[http]'"
        )
    return http


@pytest.fixture(scope="module")
def triton(http, live_server: str) -> Iterator:
    client = http.InferenceServerClient(url=live_server.removeprefix("http://"))
    yield client
    client.close()


def _pixels(*colours: str) -> np.ndarray:
    return np.stack([np.full((16, 16, 3), COLOURS[c], np.uint8) for c in colours])


def test_health_and_metadata(triton) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("colours")
    meta = triton.get_model_metadata("colours")
    assert [t["name"] for t in meta["inputs"]] == ["images", "image_bytes"]
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]


def test_pixels_in_binary_and_both_outputs_in_binary(http, triton) -> None:
    pixels = _pixels("blue", "red", "green")
    tensor = http.InferInput("images", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    outputs = [http.InferRequestedOutput("probabilities", binary_data=True),
               http.InferRequestedOutput("labels", binary_data=True)]  # fmt: skip
    result = triton.infer("colours", [tensor], outputs=outputs, request_id="c1")
    assert result.get_response()["id"] == "c1"
    assert result.as_numpy("labels").tolist() == [b"blue", b"red", b"green"]
    probs = result.as_numpy("probabilities")
    assert probs.dtype == np.float32 and probs.shape == (3, 3)
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and (probs.argmax(1) == [0, 2, 1]).all()
    everything = triton.infer("colours", [tensor])  # no outputs named: all, in binary
    assert np.array_equal(everything.as_numpy("probabilities"), probs)


def test_image_files_as_bytes_and_one_output_by_name(http, triton) -> None:
    files = np.array([encoded("green"), encoded("red", "JPEG")], dtype=np.object_)
    tensor = http.InferInput("image_bytes", [2], "BYTES")
    tensor.set_data_from_numpy(files)
    labels = http.InferRequestedOutput("labels", binary_data=True)
    result = triton.infer("colours", [tensor], outputs=[labels])
    assert result.as_numpy("labels").tolist() == [b"green", b"red"]
    assert result.as_numpy("probabilities") is None  # only what was asked for
    as_json = http.InferRequestedOutput("labels", binary_data=False)
    result = triton.infer("colours", [tensor], outputs=[as_json])
    assert result.get_output("labels")["data"] == ["green", "red"]


def test_refusals_reach_the_client_as_its_exception(http, triton) -> None:
    from tritonclient.utils import InferenceServerException

    tensor = http.InferInput("images", [1, 16, 16, 3], "UINT8")
    tensor.set_data_from_numpy(_pixels("red"))
    with pytest.raises(InferenceServerException, match="unknown output 'logits'"):
        triton.infer("colours", [tensor], outputs=[http.InferRequestedOutput("logits")])
    wrong = http.InferInput("images", [1, 8, 8, 3], "UINT8")
    wrong.set_data_from_numpy(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(InferenceServerException, match=r"expected \[N, 16, 16, 3\]"):
        triton.infer("colours", [wrong])
