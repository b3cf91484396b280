"""The FastAPI app: REST under /v1, the Open Inference Protocol under /v2, the page at /.

Request handlers decode (in the thread pool) and await the one inference worker; they never
compute. Every refusal is a 4xx with a one-line reason: 413 for a body over the limit or too
many images, 415 for what is not an image (or a compressed protocol body), 422 for an image
that cannot be decoded or is too large, 400 with ``{"error": ...}`` for a malformed protocol
request, 401 without the API key. Protocol bodies are read whatever their Content-Type: the
protocol does not ask for one and its clients often send none.
No endpoint reads a path from the request: the page is read from the package once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from imgclf._version import __version__
from imgclf.cores import available_cores
from imgclf.data.pipeline.decode import ImageDecodeError
from imgclf.models.conformal import sets as conformal_sets
from imgclf.notebook import array_url
from imgclf.serve import binary, protocol
from imgclf.serve.docs import docs_routes, infer_body_doc, predict_body_doc
from imgclf.serve.errors import ServeError, add_error_handlers
from imgclf.serve.limits import BodyLimit
from imgclf.serve.model import ServedModel
from imgclf.serve.settings import ServeSettings
from imgclf.serve.uploads import (
    Base64Images,
    base64_images,
    check_count,
    image_file,
    multipart_images,
)
from imgclf.serve.worker import InferenceWorker

EXPLAIN_DOC = (
    "Add each image's Grad-CAM overlay (what the model looked at for its top class), a PNG "
    "data: URL at the model's input size, as 'explanation'."
)
SETS_DOC = (
    "Add each image's prediction set at this coverage (e.g. 0.9: the set holds the true class "
    "9 times in 10; split conformal on the validation split), as 'set'."
)


def create_app(model: ServedModel, settings: ServeSettings | None = None) -> FastAPI:
    """The app serving ``model``; its lifespan starts and stops the inference worker."""
    settings = settings or ServeSettings()
    worker = InferenceWorker(model.score, model.blank(2), settings.max_batch, settings.max_wait_ms)
    decoders = ThreadPoolExecutor(available_cores(), thread_name_prefix="imgclf-decode")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        worker.start()
        yield
        await run_in_threadpool(worker.stop, 60)  # in-flight requests have finished by now
        decoders.shutdown()

    app = FastAPI(
        title=f"imgclf: {model.name}",
        version=__version__,
        description="Image classification: REST (/v1) and the Open Inference Protocol (/v2).",
        lifespan=lifespan,
        docs_url=None,  # /docs is served below from local files: FastAPI's loads a CDN
        redoc_url=None,
    )
    app.state.model, app.state.settings, app.state.worker = model, settings, worker
    app.state.decoders = decoders
    add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
        )  # fmt: skip
    app.include_router(_health_routes(worker))
    app.include_router(docs_routes(app.openapi_url or "/openapi.json", model.name))
    guarded = [Depends(_api_key_check(settings))]
    app.include_router(_v1_routes(model, settings, worker), dependencies=guarded)
    app.include_router(_v2_routes(model, worker), dependencies=guarded)
    return app


def _health_routes(worker: InferenceWorker) -> APIRouter:
    router = APIRouter()
    page = resources.files("imgclf.serve").joinpath("static/index.html").read_text("utf-8")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get("/health", tags=["health"], summary="Liveness: the process answers")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", tags=["health"], summary="Readiness: model loaded and warmed up")
    def ready() -> JSONResponse:
        if _is_ready(worker):
            return JSONResponse({"ready": True})
        reason = f"the model failed to load: {worker.error}" if worker.error else "warming up"
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)

    @router.get("/v2/health/live", tags=["v2"], summary="Open Inference Protocol: live")
    def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/v2/health/ready", tags=["v2"], summary="Open Inference Protocol: ready")
    def v2_ready() -> JSONResponse:  # the protocol: 200 means true, a 4xx false
        ok = _is_ready(worker)
        return JSONResponse({"ready": ok}, status_code=200 if ok else 400)

    return router


def _v1_routes(model: ServedModel, settings: ServeSettings, worker: InferenceWorker) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["v1"])

    @router.get("/model", summary="Classes, input spec, limits, metrics and versions")
    def model_info() -> dict[str, Any]:
        return _model_info(model, settings)

    @router.post(
        "/predict",
        summary="Top-k classes of one or many images",
        openapi_extra={
            "requestBody": predict_body_doc(Base64Images.model_json_schema()),
            "parameters": [],
        },
    )
    async def predict(
        request: Request,
        top_k: Annotated[int | None, Query(ge=1, description="Classes per image.")] = None,
        explain: Annotated[bool, Query(description=EXPLAIN_DOC)] = False,
        sets: Annotated[float | None, Query(gt=0, lt=1, description=SETS_DOC)] = None,
    ) -> dict[str, Any]:
        named = await _posted_images(request, settings)
        if explain and model.explain is None:
            raise ServeError(400, f"explain=true: {model.unexplained}")
        if sets is not None and model.conformal is None:
            raise ServeError(
                400, "sets: this model has no conformal scores (trained without a validation "
                "split, or by an older imgclf)."
            )  # fmt: skip
        images = await _decoded(request, named)
        probs, shares = model.outputs(await _compute(worker, images))
        predictions = _predictions(model, named, probs, shares, top_k or settings.top_k, sets)
        if explain:  # on the worker's thread: the maps' hooks see no other request's pass
            drawn = await asyncio.wrap_future(
                worker.call(partial(model.explain, images, probs.argmax(axis=1)))
            )
            for row, picture in zip(predictions, drawn, strict=True):
                row["explanation"] = array_url(picture)
        return {"model": model.name, "version": model.version, "backend": model.backend,
                "predictions": predictions}  # fmt: skip

    return router


def _model_info(model: ServedModel, settings: ServeSettings) -> dict[str, Any]:
    """GET /v1/model: what a client needs to know before it sends an image."""
    spec = model.spec
    return {
        "name": model.name, "version": model.version, "backend": model.backend,
        "classes": model.classes,
        "input": {"image_size": list(spec.image_size), "channels": spec.channels,
                  "fit": spec.fit, "interpolation": spec.interpolation,
                  "formats": "any image Pillow reads (JPEG, PNG, WebP, GIF, BMP, TIFF ...)"},
        "limits": {"max_upload_mb": settings.max_upload_mb, "max_files": settings.max_files,
                   "max_pixels": settings.max_pixels},
        "batching": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms},
        "top_k": settings.top_k, "metrics": model.metrics, "versions": model.versions,
        "abstain": model.abstain, "explain": model.explain is not None,
        "sets": model.conformal is not None,
    }  # fmt: skip


async def _posted_images(request: Request, settings: ServeSettings) -> list[tuple[str, bytes]]:
    """The (name, bytes) of a /v1/predict body: multipart 'files' or JSON base64 'images'."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await multipart_images(request, settings)
    if kind == "application/json":
        return base64_images(await request.body(), settings)
    raise ServeError(
        415, f"Content-Type {kind or 'none'} is not accepted: send multipart/form-data "
        "with 'files', or application/json with base64 'images'."
    )  # fmt: skip


def _predictions(
    model: ServedModel,
    named: list[tuple[str, bytes]],
    probs: np.ndarray,
    shares: np.ndarray | None,
    k: int,
    sets: float | None,
) -> list[dict[str, Any]]:
    """Each image's answer: its top ``k``; when abstaining, whether it is unknown ("label":
    null for an image unlike the training data); its prediction set when ``sets`` is asked."""
    rows = [model.top(row, k) for row in probs]
    predictions = [{"file": name, "label": top[0]["label"], "top_k": top}
                   for (name, _), top in zip(named, rows, strict=True)]  # fmt: skip
    if shares is not None:
        for row, share in zip(predictions, shares.tolist(), strict=True):
            row["unknown"] = share < model.abstain
            row["in_distribution"] = share
            if row["unknown"]:
                row["label"] = None
    if sets is not None:
        members = conformal_sets(probs, model.conformal, sets)
        for row, chosen in zip(predictions, members, strict=True):
            row["set"] = [model.classes[i] for i in np.flatnonzero(chosen)]
    return predictions


def _v2_routes(model: ServedModel, worker: InferenceWorker) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["v2"])
    specs = protocol.tensor_specs(model.spec.image_size, model.spec.channels, len(model.classes),
                                  abstains=model.abstain is not None)  # fmt: skip

    def known(name: str, version: str | None = None) -> None:
        """404 unless this is the served model; the reply names the one that is."""
        if name == model.name and version in (None, model.version):
            return
        asked = f"'{name}'" if version is None else f"'{name}' version '{version}'"
        served = f"{model.name} (version {model.version})"
        raise ServeError(404, f"unknown model {asked}; models served: {served}")

    @router.get("", summary="Open Inference Protocol: server metadata")
    def server() -> dict[str, Any]:
        return {"name": "imgclf", "version": __version__, "extensions": [binary.EXTENSION]}

    @router.get("/models/{name}", summary="Open Inference Protocol: model metadata")
    @router.get("/models/{name}/versions/{version}", include_in_schema=False)
    def metadata(name: str, version: str | None = None) -> dict[str, Any]:
        known(name, version)
        return {"name": model.name, "versions": [model.version], "platform": model.platform,
                **specs}  # fmt: skip

    @router.get("/models/{name}/ready", summary="Open Inference Protocol: model ready")
    @router.get("/models/{name}/versions/{version}/ready", include_in_schema=False)
    def model_ready(name: str, version: str | None = None) -> JSONResponse:
        known(name, version)
        ok = _is_ready(worker)
        return JSONResponse({"name": model.name, "ready": ok}, status_code=200 if ok else 400)

    @router.post(
        "/models/{name}/infer",
        summary="Open Inference Protocol: inference",
        openapi_extra={"requestBody": infer_body_doc(protocol.InferRequest.model_json_schema())},
    )
    @router.post("/models/{name}/versions/{version}/infer", include_in_schema=False)
    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        known(name, version)
        _check_encoding(request)
        try:
            body = protocol.read_request(await request.body(), request.headers.get(binary.HEADER))
            available = protocol.OUTPUTS + (
                protocol.ABSTAIN_OUTPUTS if model.abstain is not None else ()
            )
            protocol.requested_outputs(body, available)  # refused before computing
            probs, shares = model.outputs(await _protocol_probs(request, protocol.the_input(body)))
        except (protocol.ProtocolError, binary.BinaryDataError) as exc:
            raise ServeError(400, str(exc)) from None
        reply, data = protocol.infer_response(body, model.name, model.version, probs,
                                              model.classes, shares, model.abstain)  # fmt: skip
        return _v2_reply(reply, data)

    return router


async def _protocol_probs(request: Request, tensor: protocol.RequestInput) -> np.ndarray:
    """The probabilities for a protocol input: pixels go to the worker, files are decoded."""
    model, settings = request.app.state.model, request.app.state.settings
    if tensor.name == protocol.PIXELS_INPUT:
        images = protocol.pixel_tensor(tensor, model.spec.image_size, model.spec.channels)
        check_count(len(images), settings)
        return await _compute(request.app.state.worker, images)
    files = protocol.byte_strings(tensor)
    check_count(len(files), settings)
    named = [(f"{tensor.name}[{i}]", image_file(item, i)) for i, item in enumerate(files)]
    return await _infer(request, named)


def _check_encoding(request: Request) -> None:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ServeError(
            415, f"Content-Encoding {encoding} is not accepted: send the request body "
            "uncompressed (tritonclient: leave request_compression_algorithm unset)."
        )  # fmt: skip


def _v2_reply(reply: dict[str, Any], data: bytes | None) -> Response:
    """JSON, or the JSON object followed by the binary outputs and its length in a header."""
    if data is None:
        return JSONResponse(reply)
    header = json.dumps(reply, separators=(",", ":")).encode()
    return Response(
        header + data, media_type="application/octet-stream",
        headers={binary.HEADER: str(len(header))},
    )  # fmt: skip


async def _infer(request: Request, named: list[tuple[str, bytes]]) -> np.ndarray:
    """Decode, then compute on the worker."""
    return await _compute(request.app.state.worker, await _decoded(request, named))


async def _decoded(request: Request, named: list[tuple[str, bytes]]) -> np.ndarray:
    """Decode on the decoding threads (one per core: 200 clients do not mean 200 decodes
    fighting the worker for 2 cores)."""
    state = request.app.state
    decode = partial(_decode_all, state.model, named, state.settings.max_pixels)
    return await asyncio.get_running_loop().run_in_executor(state.decoders, decode)


def _decode_all(model: ServedModel, named: list[tuple[str, bytes]], max_pixels: int) -> np.ndarray:
    images = []
    for name, data in named:
        try:
            images.append(model.decode(data, max_pixels))
        except ImageDecodeError as exc:
            status = 415 if str(exc).startswith("not an image") else 422
            raise ServeError(status, f"{name}: {exc}") from None
    return np.stack(images)


async def _compute(worker: InferenceWorker, images: np.ndarray) -> np.ndarray:
    if worker.error is not None:
        raise ServeError(503, f"the model failed to load: {worker.error}")
    return await asyncio.wrap_future(worker.submit(images))


def _is_ready(worker: InferenceWorker) -> bool:
    return worker.ready.is_set() and worker.error is None


def _api_key_check(settings: ServeSettings):
    expected = settings.api_key.encode() if settings.api_key else None

    def check(request: Request) -> None:
        if expected is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            raise ServeError(
                401, "Missing or wrong API key: send the header Authorization: Bearer <key>.",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip

    return check
