"""Refusals as 4xx replies: one exception for the app's own, and the handlers that give every
error the body of the API its path belongs to (``{"error"}`` under /v2, ``{"detail"}``
elsewhere)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from imgclf.serve.limits import BodyTooLarge, error_body, too_large_message


class ServeError(Exception):
    """A refused request: its status and one-line reason (and headers, e.g. for 401)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def add_error_handlers(app: FastAPI) -> None:
    """ServeError, a chunked body over the limit, HTTP errors and validation errors as 4xx
    replies; request-validation errors are 400 under /v2 (the protocol's), 422 elsewhere."""

    def reply(request: Request, status: int, message: str, headers=None) -> JSONResponse:
        return JSONResponse(error_body(request.url.path, message), status, headers=headers)

    @app.exception_handler(ServeError)
    async def refused(request: Request, exc: ServeError) -> JSONResponse:
        return reply(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return reply(request, 413, too_large_message(app.state.settings.max_upload_bytes))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return reply(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if not request.url.path.startswith("/v2"):
            return JSONResponse({"detail": jsonable_encoder(errors)}, 422)
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return reply(request, 400, f"malformed inference request at {where}: {first['msg']}")
