"""A real uvicorn process started by `imgclf serve` on a free loopback port: the endpoints over
HTTP, SIGTERM finishing the request in flight, and the command's bad arguments."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.serve.conftest import encoded, start_server, stop_server
from typer.testing import CliRunner

from imgclf.cli import app

pytestmark = pytest.mark.slow


def test_the_endpoints_over_http(live_server: str) -> None:
    assert httpx.get(f"{live_server}/health").json() == {"status": "ok"}
    for path in ("/ready", "/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/colours",
                 "/v2/models/colours/ready", "/", "/openapi.json"):  # fmt: skip
        assert httpx.get(f"{live_server}{path}").status_code == 200, path
    pixels = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 16, 16, 3],
              "data": [30, 40, 220] * 256}]}  # fmt: skip
    reply = httpx.post(f"{live_server}/v2/models/colours/infer", json=pixels).json()
    assert reply["outputs"][1]["data"] == ["blue"]
    assert httpx.get(f"{live_server}/v1/model").json()["classes"] == ["blue", "green", "red"]
    files = [("files", ("r.png", encoded("red"), "image/png")),
             ("files", ("g.jpg", encoded("green", "JPEG"), "image/jpeg"))]  # fmt: skip
    body = httpx.post(f"{live_server}/v1/predict", files=files).json()
    assert [p["label"] for p in body["predictions"]] == ["red", "green"]
    refused = httpx.post(
        f"{live_server}/v1/predict", files=[("files", ("a.txt", b"hi", "text/plain"))]
    )
    assert refused.status_code == 415
    docs = httpx.get(f"{live_server}/docs")
    assert docs.status_code == 200 and "/docs/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()  # offline: every asset from this server
    script = httpx.get(f"{live_server}/docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    meta = httpx.get(f"{live_server}/v2/models/colours").json()
    assert meta["name"] == "colours" and meta["inputs"][1]["datatype"] == "BYTES"


def test_sigterm_finishes_the_request_in_flight(colour_run: Path) -> None:
    # a batch waits up to 3 s to fill: the request is still in flight when SIGTERM comes
    process, url = start_server(colour_run, "--max-wait-ms", "3000", "--max-batch", "64")
    answer: dict = {}

    def send() -> None:
        files = [("files", ("b.png", encoded("blue"), "image/png"))]
        answer["response"] = httpx.post(f"{url}/v1/predict", files=files, timeout=30)

    thread = threading.Thread(target=send)
    thread.start()
    time.sleep(1.0)
    output = stop_server(process)
    thread.join(30)
    assert answer["response"].status_code == 200, output
    assert answer["response"].json()["predictions"][0]["label"] == "blue"
    assert process.returncode == 0, output
    assert "Finished server process" in output
    assert f"Serving {colour_run} on {url}/ (Ctrl-C stops)" in output  # once it could serve


def test_the_api_key_comes_from_the_environment(colour_run: Path) -> None:
    process, url = start_server(
        colour_run, "--api-key-env", "IMGCLF_KEY", env={"IMGCLF_KEY": "k-123"}
    )
    try:
        assert httpx.get(f"{url}/v1/model").status_code == 401
        key = {"Authorization": "Bearer k-123"}
        assert httpx.get(f"{url}/v1/model", headers=key).status_code == 200
    finally:
        stop_server(process)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "70000"], "port must be 1..65535"),
        (["--api-key-env", "IMGCLF_UNSET_KEY_VAR"], "IMGCLF_UNSET_KEY_VAR is not set"),
        (["--max-upload-mb", "0"], "max_upload_mb must be positive"),
        (["--backend", "onnx"], "has no exported model"),
        (["--backend", "gpu"], "Unknown backend 'gpu'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(colour_run: Path, args, says) -> None:
    result = CliRunner().invoke(app, ["serve", str(colour_run), *args])
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output


def test_a_missing_run_is_one_line_and_never_says_serving(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert "Serving" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_port_in_use_is_one_line_and_never_says_serving(colour_run: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(colour_run), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"Cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output
    assert "Serving" not in result.output and len(result.output.strip().splitlines()) == 1


def test_without_the_serve_extra_the_error_names_it(colour_run: Path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    result = CliRunner().invoke(app, ["serve", str(colour_run)])
    assert result.exit_code == 2 and "pip install 'imgclf[serve]'" in result.output
