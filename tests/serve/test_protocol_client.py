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


@pytest.fixture(scope="module")
def abstaining(http, colour_run) -> Iterator[tuple]:
    """A second server, started with --abstain auto: (tritonclient, base URL)."""
    from tests.serve.conftest import start_server, stop_server

    process, url = start_server(colour_run, "--abstain", "auto")
    client = http.InferenceServerClient(url=url.removeprefix("http://"))
    yield client, url
    client.close()
    stop_server(process)


def test_an_abstaining_server_says_unknown_on_v2_and_v1(http, abstaining) -> None:
    import httpx
    from tests.serve.conftest import colour_images

    triton, url = abstaining
    noisy = colour_images(n_per_class=1, size=12, seed=5)[0]  # red, green, blue, as trained
    checker = np.repeat((np.indices((12, 12)).sum(0) % 2 * 255).astype(np.uint8)[..., None], 3, 2)
    files = np.array([_png(image) for image in [*noisy, checker]], dtype=np.object_)
    tensor = http.InferInput("image_bytes", [len(files)], "BYTES")
    tensor.set_data_from_numpy(files)
    asked = [http.InferRequestedOutput(n, binary_data=True)
             for n in ("labels", "unknown", "in_distribution")]  # fmt: skip
    result = triton.infer("colours", [tensor], outputs=asked)
    assert result.as_numpy("unknown").tolist() == [False, False, False, True]
    shares = result.as_numpy("in_distribution")
    assert shares.dtype == np.float32 and shares[3] < 0.05 <= shares[:3].min()
    meta = triton.get_model_metadata("colours")
    assert [t["name"] for t in meta["outputs"]][-2:] == ["unknown", "in_distribution"]
    files = [("files", ("red.png", _png(noisy[0]))), ("files", ("c.png", _png(checker)))]
    body = httpx.post(f"{url}/v1/predict", files=files, timeout=30).json()
    red, strange = body["predictions"]
    assert red["label"] == "red" and red["unknown"] is False
    assert strange["label"] is None and strange["unknown"] is True
    assert strange["in_distribution"] == pytest.approx(float(shares[3]), abs=1e-6)


def test_a_plain_server_names_the_abstain_outputs_it_lacks(http, triton) -> None:
    from tritonclient.utils import InferenceServerException

    tensor = http.InferInput("images", [1, 16, 16, 3], "UINT8")
    tensor.set_data_from_numpy(_pixels("red"))
    with pytest.raises(InferenceServerException, match="serve --abstain adds unknown"):
        triton.infer("colours", [tensor], outputs=[http.InferRequestedOutput("unknown")])


def _png(pixels: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()
