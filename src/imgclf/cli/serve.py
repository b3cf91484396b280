"""`imgclf serve RUN`: the model behind a REST API, the Open Inference Protocol and a web page."""

from __future__ import annotations

from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import BackendOpt


def serve(
    model: Annotated[
        str, typer.Argument(metavar="RUN", help="A run folder or a model bundle folder.")
    ],
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    backend: BackendOpt = "auto",
    name: Annotated[
        str | None,
        typer.Option(
            help="The model's name in /v2 URLs.  [default: the run's folder name]",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding a key that every endpoint except "
            "health then needs (Authorization: Bearer KEY).",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    max_upload_mb: Annotated[float, typer.Option(help="Largest request body (413 above).")] = 20,
    max_files: Annotated[int, typer.Option(help="Most images in one request (413 above).")] = 32,
    max_pixels: Annotated[
        int, typer.Option(help="Most pixels in one image (422 above).")
    ] = 40_000_000,
    max_batch: Annotated[int, typer.Option(help="Images computed together.")] = 16,
    max_wait_ms: Annotated[float, typer.Option(help="How long to wait to fill a batch.")] = 5.0,
    top_k: Annotated[int, typer.Option(help="Classes listed per image by default.")] = 3,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="An origin browsers may call from (repeat for more; none: CORS off).",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
    abstain: Annotated[
        str | None,
        typer.Option(
            help="Answer unknown (/v1: label null) for images unlike the training data: auto "
            "(the model's threshold) or a share in (0, 1), as predict --abstain.",
        ),
    ] = None,
) -> None:
    """Serve a trained model: /v1/predict (multipart or base64 JSON), the Open Inference
    Protocol under /v2, OpenAPI docs at /docs and a drag-and-drop page at /."""
    with user_errors():  # announced only once the model has loaded and the port is free
        api.serve(
            model, host=host, port=port, backend=backend, name=name, api_key_env=api_key_env,
            max_upload_mb=max_upload_mb, max_files=max_files, max_pixels=max_pixels,
            max_batch=max_batch, max_wait_ms=max_wait_ms, top_k=top_k,
            cors_origins=tuple(cors_origin or ()), log_level=log_level, abstain=abstain,
            announce=lambda url: terminal.print_line(f"Serving {model} on {url} (Ctrl-C stops)"),
        )  # fmt: skip
