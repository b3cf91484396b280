"""Serving: a run's (or a bundle's) model behind FastAPI on uvicorn (``imgclf serve``)."""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
GRACEFUL_SECONDS = 30  # SIGTERM: requests in flight get this long to finish
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_app(
    model: str | Path,
    *,
    backend: str = "auto",
    name: str | None = None,
    api_key: str | None = None,
    cors_origins: tuple[str, ...] | list[str] = (),
    abstain: str | float | None = None,
    **limits: Any,
):
    """The FastAPI app serving ``model`` (a run or bundle folder), not yet running: for
    ``uvicorn``, FastAPI's TestClient, or mounting in another app.

    Args:
        backend: torch, onnx, onnx-int8 or auto (ONNX Runtime on the gated model-int8.onnx,
            else the gated model.onnx, when the onnx extra is installed; see ``predict``).
        name: the model's name in URLs (/v2/models/NAME); default: the run folder's name.
        api_key: a Bearer token that every endpoint except health needs (None: open).
        cors_origins: origins browsers may call from (none: CORS is off).
        abstain: 'auto' or a share in (0, 1), as ``predict``'s: answer "unknown" (/v1:
            ``"label": null, "unknown": true``; /v2: the ``unknown`` and ``in_distribution``
            outputs) for images stranger than all but that share of the validation images.
        **limits: ServeSettings fields: max_upload_mb, max_files, max_pixels, max_batch,
            max_wait_ms, top_k.
    """
    require_serve()
    from imgclf.serve import ServeSettings, create_app

    settings = ServeSettings(api_key=api_key, cors_origins=tuple(cors_origins), **limits)
    return create_app(served_model(model, backend, name, abstain), settings)


def serve(
    model: str | Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    api_key_env: str | None = None,
    log_level: str = "info",
    announce: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Serve ``model`` on uvicorn until SIGINT or SIGTERM, which finish the requests in flight.

    Args:
        host: the address to bind (loopback by default: pass 0.0.0.0 to expose it).
        api_key_env: the environment variable holding the API key (its value never appears in
            a command line or a process listing).
        announce: called with the server's URL once the model has loaded and the address is
            free, so that nothing says "serving" before what can fail has been checked.
        **options: serve_app's keyword arguments.
    """
    import uvicorn

    from imgclf.cores import available_cores

    if not 0 < port < 65536:
        raise ConfigError(f"port must be 1..65535, received {port}.")
    api_key = _api_key(api_key_env)
    _set_threads(available_cores())
    app = serve_app(model, api_key=api_key, **options)
    _check_address_free(host, port)
    if announce is not None:
        announce(server_url(host, port))
    with _stopped_by_signals_quietly():
        uvicorn.run(
            app, host=host, port=port, log_level=log_level,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )  # fmt: skip


def server_url(host: str, port: int) -> str:
    """The URL a browser opens for ``host``:``port`` (an IPv6 address in brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _check_address_free(host: str, port: int) -> None:
    """Bind and release every address ``host`` resolves to, as asyncio will for uvicorn: a port
    in use or a wrong host is one line here, not uvicorn's log lines after the model loaded."""
    try:
        found = set(
            socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        )
    except socket.gaierror as exc:
        raise ConfigError(
            f"--host {host} is not a known address ({exc.strerror}). Pass an address of this "
            "machine: 127.0.0.1 (this machine only) or 0.0.0.0 (the network)."
        ) from None
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise ConfigError(_bind_error(host, port, exc)) from None


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        fix = "Stop the program using it or pick another --port."
    else:
        fix = "Pass another --port, or a --host of this machine (127.0.0.1 or 0.0.0.0)."
    return f"Cannot listen on {host}:{port}: {exc.strerror or exc}. {fix}"


@contextmanager
def _stopped_by_signals_quietly() -> Iterator[None]:
    """uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again for the
    handler it found. With a no-op handler there, a graceful stop exits with status 0."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def require_serve() -> None:
    """The optional libraries, or one line naming the extra."""
    for package in ("fastapi", "uvicorn", "multipart", "fastapi_offline"):
        if importlib.util.find_spec(package) is None:
            pip = {"multipart": "python-multipart"}.get(package, package.replace("_", "-"))
            raise ConfigError(f"imgclf serve needs the {pip} package: pip install 'imgclf[serve]'.")


def served_model(model: str | Path, backend: str = "auto", name: str | None = None, abstain=None):
    """A run's or bundle's model, ready for ``create_app``: loaded, on the backend asked for."""
    from imgclf.api.evaluation import onnx_runner
    from imgclf.layout import WEIGHTS_NAME
    from imgclf.models.bundle import bundle_dir, read_bundle_json
    from imgclf.predict import answerer, scorer
    from imgclf.predict.backend import backend_name
    from imgclf.predict.scoring import abstention
    from imgclf.runs.opening import open_model
    from imgclf.runtime import Runtime
    from imgclf.serve import ServedModel

    network = open_model(model).network.eval()  # a served network never trains
    runtime = Runtime()
    onnx = onnx_runner(model, backend, runtime, abstain=abstain is not None)
    threshold = abstention(network, abstain, onnx)
    score = scorer(network, "none", runtime, onnx) if threshold is None else answerer(
        network, "none", runtime, joined=True, onnx=onnx)  # fmt: skip
    folder = bundle_dir(model)
    digest = hashlib.sha256((folder / WEIGHTS_NAME).read_bytes()).hexdigest()[:12]
    explain, unexplained = _explainer(network)
    return ServedModel(
        name=_url_name(name or _default_name(Path(model), folder)),
        version=digest,
        classes=list(network.classes),
        spec=network.preprocess_spec,
        backend=backend_name(onnx),
        score=score,
        metrics=read_bundle_json(folder).get("extra") or {},
        versions=_versions(onnx is not None),
        abstain=threshold,
        explain=explain,
        unexplained=unexplained,
        conformal=None if network.conformal is None else network.conformal.scores.cpu().numpy(),
    )


def _explainer(network):
    """(images, classes) -> Grad-CAM overlays on torch, and None; or None and why not (an MLP,
    the explain extra missing): ``?explain=true`` then answers that reason."""
    from functools import partial

    from imgclf.errors import ImgclfError
    from imgclf.models.attribution import overlays
    from imgclf.models.extras import EXPLAIN
    from imgclf.predict.explain import check_explainable

    try:
        EXPLAIN.require("Explanations (?explain=true)")
        check_explainable(network)
    except ImgclfError as exc:
        return None, str(exc)
    return partial(overlays, network), ""


def _default_name(model: Path, folder: Path) -> str:
    from imgclf.layout import RUN_BUNDLE_DIR

    in_run = folder.name == RUN_BUNDLE_DIR and folder != model
    return (folder.parent if in_run else folder).resolve().name


def _url_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"
    return cleaned


def _api_key(variable: str | None) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable, "")
    if not value.strip():
        raise ConfigError(
            f"--api-key-env {variable}: the environment variable {variable} is not set or is "
            f"empty. Export the key first, e.g. export {variable}=$(openssl rand -hex 24)."
        )
    return value.strip()


def _set_threads(cores: int) -> None:
    """CPU threads, set once for the process: the worker computes with every core."""
    import torch

    torch.set_num_threads(cores)


def _versions(onnx: bool) -> dict[str, str]:
    from imgclf._version import __version__

    packages = ["torch", "timm"] + (["onnxruntime"] if onnx else [])
    found = {"imgclf": __version__}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
