"""The app through FastAPI's TestClient: every endpoint, every refusal (a 4xx with its one-line
reason, never a 5xx), the Open Inference Protocol's JSON, auth, CORS and micro-batching."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from tests.serve.conftest import COLOURS, encoded

from imgclf import api
from imgclf.errors import ConfigError


@contextmanager
def _warmed(app) -> Iterator[TestClient]:
    """A TestClient once the worker has warmed up (it starts with the app's lifespan)."""
    with TestClient(app) as client:
        assert app.state.worker.ready.wait(60)
        yield client


@pytest.fixture(scope="module")
def client(colour_run: Path):
    with _warmed(api.serve_app(colour_run, max_upload_mb=1, max_files=4)) as test_client:
        yield test_client


def test_ready_says_warming_up_until_the_worker_has_run_once(colour_run: Path) -> None:
    app = api.serve_app(colour_run)
    release = threading.Event()
    score = app.state.worker.score
    app.state.worker.score = lambda images: (release.wait(30), score(images))[1]
    with TestClient(app) as starting:
        early = starting.get("/ready")
        assert early.status_code == 503 and early.json()["reason"] == "warming up"
        assert starting.get("/v2/health/ready").status_code == 400  # the protocol's "false"
        assert starting.get("/health").status_code == 200
        release.set()
        assert app.state.worker.ready.wait(30)
        assert starting.get("/ready").json() == {"ready": True}


def _files(*items: tuple[str, bytes, str]) -> list:
    return [("files", item) for item in items]


def _png(colour: str, name: str | None = None) -> tuple[str, bytes, str]:
    return (name or f"{colour}.png", encoded(colour), "image/png")


def test_health_ready_and_the_model_card(client: TestClient, colour_run: Path) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"ready": True}
    info = client.get("/v1/model").json()
    assert info["name"] == "colours" and info["classes"] == sorted(COLOURS)
    assert info["input"]["image_size"] == [16, 16] and info["input"]["channels"] == 3
    assert info["limits"] == {"max_upload_mb": 1, "max_files": 4, "max_pixels": 40_000_000}
    assert info["metrics"]["test"]["accuracy"] == 1.0
    assert {"imgclf", "torch"} <= set(info["versions"]) and info["backend"] == "torch"
    assert "multipart/form-data" in str(client.get("/openapi.json").json()["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_predict_takes_many_files_and_answers_as_predict_does(client, colour_run, tmp_path):
    response = client.post("/v1/predict?top_k=2", files=_files(_png("red"), _png("blue")))
    assert response.status_code == 200
    body = response.json()
    assert [p["file"] for p in body["predictions"]] == ["red.png", "blue.png"]
    assert [p["label"] for p in body["predictions"]] == ["red", "blue"]
    # the same files through imgclf predict: the same probabilities
    for colour in ("red", "blue"):
        (tmp_path / f"{colour}.png").write_bytes(encoded(colour))
    expected = api.predict(colour_run, [tmp_path / "red.png", tmp_path / "blue.png"],
                           progress=False)  # fmt: skip
    assert expected.temperature is not None  # calibrated: the served answer carries it too
    for row, probs in zip(body["predictions"], expected.probs, strict=True):
        assert len(row["top_k"]) == 2
        top = int(np.argmax(probs))
        assert row["top_k"][0]["probability"] == pytest.approx(float(probs[top]), abs=1e-6)


def test_predict_takes_base64_json_and_data_urls(client: TestClient) -> None:
    green = base64.b64encode(encoded("green", "JPEG")).decode()
    body = {"images": [green, f"data:image/png;base64,{green}"], "names": ["a", "b"]}
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 200
    assert [(p["file"], p["label"]) for p in response.json()["predictions"]] == [
        ("a", "green"), ("b", "green")]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        ({"files": _files(("notes.txt", b"hello", "text/plain"))}, 415, "not an image"),
        ({"files": _files(("fake.png", b"hello there", "image/png"))}, 415, "no format"),
        ({"files": _files(("cut.png", encoded("red")[:50], "image/png"))}, 422, "truncated"),
        ({"files": _files(("empty.png", b"", "image/png"))}, 422, "empty"),
        ({"files": _files(*[_png("red", f"{i}.png") for i in range(5)])}, 413, "limit is 4"),
        ({"files": {"other": (None, "field")}}, 422, "No images"),
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "Content-Type"),
        ({"json": {"images": ["%%%"]}}, 422, "base64"),
        ({"json": {"images": []}}, 422, "images"),
        ({"json": {"images": ["aGk="], "names": ["a", "b"]}}, 422, "2 names for 1"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ],
)
def test_bad_requests_get_a_4xx_with_the_reason(client, kwargs, status, says) -> None:
    response = client.post("/v1/predict", **kwargs)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


def test_bodies_over_the_limit_are_refused_before_parsing(client: TestClient) -> None:
    big = b"x" * (1024 * 1024 + 1)
    declared = client.post("/v1/predict", files=_files(("big.png", big, "image/png")))
    assert declared.status_code == 413 and "limit of 1 MB" in declared.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(3):
            yield b"y" * 600_000

    streamed = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    under_v2 = client.post("/v2/models/colours/infer", content=big,
                           headers={"content-type": "application/json"})  # fmt: skip
    assert under_v2.status_code == 413 and "limit" in under_v2.json()["error"]
    assert client.get("/health").status_code == 200  # and the server lives on


def test_a_decompression_bomb_is_refused_from_its_header(colour_run: Path) -> None:
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, "PNG")  # 9 MP, tiny when compressed
    with TestClient(api.serve_app(colour_run, max_pixels=1_000_000)) as small:
        response = small.post("/v1/predict", files=_files(("bomb.png", buffer.getvalue(), "")))
    assert response.status_code == 422 and "over the limit of 1,000,000" in response.text


def test_the_open_inference_protocol(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "imgclf"
    meta = client.get("/v2/models/colours").json()
    assert meta["platform"] == "pytorch" and len(meta["versions"]) == 1
    assert meta["inputs"][0] == {"name": "images", "datatype": "UINT8", "shape": [-1, 16, 16, 3]}
    assert meta["outputs"][0] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}
    version = meta["versions"][0]
    assert client.get(f"/v2/models/colours/versions/{version}/ready").json()["ready"]
    pixels = np.stack([np.full((16, 16, 3), COLOURS[c], np.uint8) for c in ("blue", "red")])
    request = {"id": "r1", "inputs": [{"name": "images", "datatype": "UINT8",
               "shape": [2, 16, 16, 3], "data": pixels.reshape(-1).tolist()}]}  # fmt: skip
    reply = client.post("/v2/models/colours/infer", json=request).json()
    assert reply["model_name"] == "colours" and reply["id"] == "r1"
    probs, labels = reply["outputs"]
    assert probs["datatype"] == "FP32" and probs["shape"] == [2, 3] and len(probs["data"]) == 6
    assert labels == {"name": "labels", "datatype": "BYTES", "shape": [2], "data": ["blue", "red"]}
    # nested data, encoded images, and a chosen output
    nested = {**request, "inputs": [{**request["inputs"][0], "data": pixels.tolist()}]}
    assert client.post("/v2/models/colours/infer", json=nested).status_code == 200
    files = [base64.b64encode(encoded("green")).decode()]
    by_bytes = {"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                "data": files}], "outputs": [{"name": "labels"}]}  # fmt: skip
    reply = client.post(f"/v2/models/colours/versions/{version}/infer", json=by_bytes).json()
    assert reply["outputs"] == [{"name": "labels", "datatype": "BYTES", "shape": [1],
                                 "data": ["green"]}]  # fmt: skip


def _tensor(**changes) -> dict:
    tensor = {"name": "images", "datatype": "UINT8", "shape": [1, 16, 16, 3], "data": [0] * 768}
    return {"inputs": [{**tensor, **changes}]}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_tensor(datatype="FP32"), "datatype FP32"),
        (_tensor(shape=[1, 8, 8, 3]), "expected [N, 16, 16, 3]"),
        (_tensor(data=[0] * 700), "has 700 values"),
        (_tensor(data=[300] * 768), "outside 0..255"),
        (_tensor(data=["a"] * 768), "integers"),
        (_tensor(name="pixels"), "unknown input 'pixels'"),
        (_tensor(shape=[-1, 16, 16, 3]), "dims must be >= 0"),
        ({"inputs": []}, "exactly one input"),
        ({"inputs": [{"name": "images"}]}, "malformed inference request"),
        ({**_tensor(), "outputs": [{"name": "logits"}]}, "unknown output 'logits'"),
        (
            {
                "inputs": [
                    {"name": "image_bytes", "datatype": "BYTES", "shape": [2], "data": ["aGk="]}
                ]
            },
            "expected shape [N]",
        ),  # fmt: skip
    ],
)
def test_malformed_protocol_requests_get_400_and_the_error_object(client, body, says) -> None:
    response = client.post("/v2/models/colours/infer", json=body)
    assert response.status_code == 400 and list(response.json()) == ["error"]
    assert says in response.json()["error"]


def test_protocol_refusals_keep_the_error_object(client: TestClient) -> None:
    assert client.post("/v2/models/colours/infer", content=b"{",
                       headers={"content-type": "application/json"}).status_code == 400  # fmt: skip
    unknown = client.get("/v2/models/cats")
    assert unknown.status_code == 404 and "unknown model 'cats'" in unknown.json()["error"]
    assert client.get("/v2/models/colours/versions/0/ready").status_code == 404
    not_image = {"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                 "data": [base64.b64encode(b"plain text").decode()]}]}  # fmt: skip
    response = client.post("/v2/models/colours/infer", json=not_image)
    assert response.status_code == 415 and "not an image" in response.json()["error"]


def test_an_unknown_model_is_named_with_the_version_only_when_given(client: TestClient) -> None:
    version = client.get("/v2/models/colours").json()["versions"][0]
    served = f"models served: colours (version {version})"
    for path, says in [
        ("/v2/models/nosuch", "unknown model 'nosuch'"),
        ("/v2/models/nosuch/ready", "unknown model 'nosuch'"),
        ("/v2/models/nosuch/versions/3", "unknown model 'nosuch' version '3'"),
        ("/v2/models/colours/versions/0/ready", "unknown model 'colours' version '0'"),
    ]:
        response = client.get(path)
        assert response.status_code == 404 and response.json() == {"error": f"{says}; {served}"}


def test_an_api_key_guards_everything_but_health(colour_run: Path) -> None:
    with _warmed(api.serve_app(colour_run, api_key="s3cret")) as guarded:
        for path in ("/health", "/ready", "/v2/health/live", "/v2/health/ready", "/"):
            assert guarded.get(path).status_code == 200, path
        for path in ("/v1/model", "/v2", "/v2/models/colours"):
            refused = guarded.get(path)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = guarded.get("/v1/model", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "API key" in wrong.json()["detail"]
        assert guarded.post("/v1/predict", files=_files(_png("red"))).status_code == 401
        v2 = guarded.post("/v2/models/colours/infer", json=_tensor())
        assert v2.status_code == 401 and "error" in v2.json()
        key = {"Authorization": "Bearer s3cret"}
        assert guarded.get("/v1/model", headers=key).status_code == 200
        ok = guarded.post("/v1/predict", files=_files(_png("red")), headers=key)
        assert ok.json()["predictions"][0]["label"] == "red"


def test_cors_is_off_unless_an_origin_is_given(client: TestClient, colour_run: Path) -> None:
    asked = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/predict", headers=asked).headers
    allowed = api.serve_app(colour_run, cors_origins=["http://localhost:3000"])
    with TestClient(allowed) as with_cors:
        reply = with_cors.options("/v1/predict", headers=asked)
    assert reply.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_concurrent_requests_share_batches(colour_run: Path) -> None:
    app = api.serve_app(colour_run, max_batch=8, max_wait_ms=200)
    with TestClient(app) as batched:
        results = []

        def send() -> None:
            results.append(batched.post("/v1/predict", files=_files(_png("green"))).status_code)

        threads = [threading.Thread(target=send) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = app.state.worker.stats
    assert results == [200] * 6 and stats.images == 6  # the warm-up is not counted
    assert stats.batches < 6 and stats.largest_batch > 1


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"max_files": 0}, "max_files must be positive"),
        ({"max_wait_ms": -1}, "max_wait_ms must be 0 or more"),
        ({"api_key": " "}, "API key is empty"),
        ({"backend": "tensorrt"}, "Unknown backend"),
    ],
)
def test_bad_settings_are_config_errors(colour_run: Path, options, says) -> None:
    with pytest.raises(ConfigError, match=says):
        api.serve_app(colour_run, **options)


def test_explain_returns_an_overlay_per_image_computed_between_batches(client) -> None:
    response = client.post("/v1/predict?explain=true", files=_files(_png("red"), _png("blue")))
    assert response.status_code == 200
    rows = response.json()["predictions"]
    for row in rows:
        prefix, _, data = row["explanation"].partition(",")
        assert prefix == "data:image/png;base64"
        picture = Image.open(io.BytesIO(base64.b64decode(data)))
        assert picture.size == (16, 16) and picture.mode == "RGB"
    assert [row["label"] for row in rows] == ["red", "blue"]  # the maps change no answer
    assert client.get("/v1/model").json()["explain"] is True
    plain = client.post("/v1/predict", files=_files(_png("red"))).json()["predictions"][0]
    assert "explanation" not in plain


def test_sets_give_each_image_its_prediction_set(client) -> None:
    rows = client.post("/v1/predict?sets=0.9", files=_files(_png("red"), _png("green"))).json()
    for row in rows["predictions"]:
        assert row["set"] and set(row["set"]) <= set(COLOURS)
    wide = client.post("/v1/predict?sets=0.999", files=_files(_png("red"))).json()
    assert len(wide["predictions"][0]["set"]) >= len(rows["predictions"][0]["set"])
    for bad in ("0", "1", "1.5", "often"):
        refused = client.post(f"/v1/predict?sets={bad}", files=_files(_png("red")))
        assert refused.status_code == 422  # FastAPI's validation reply names the parameter
        assert refused.json()["detail"][0]["loc"] == ["query", "sets"]


def test_a_model_without_maps_or_sets_says_so_in_one_line(colour_run: Path) -> None:
    from dataclasses import replace

    from imgclf.api.serving import served_model
    from imgclf.serve import create_app

    bare = replace(served_model(colour_run), explain=None, unexplained="an MLP has no map.",
                   conformal=None)  # fmt: skip
    with _warmed(create_app(bare)) as plain:
        info = plain.get("/v1/model").json()
        assert info["explain"] is False and info["sets"] is False
        refused = plain.post("/v1/predict?explain=true", files=_files(_png("red")))
        assert refused.status_code == 400
        assert refused.json()["detail"] == "explain=true: an MLP has no map."
        refused = plain.post("/v1/predict?sets=0.9", files=_files(_png("red")))
        assert refused.status_code == 400 and "no conformal scores" in refused.json()["detail"]
