"""The request-body limit, enforced as bytes arrive: before any parser sees them.

A declared Content-Length over the limit is refused at once; a chunked body is counted and
refused as soon as it passes the limit. Either way the rest of the body is read and thrown
away (up to ``DRAIN_LIMIT``) before the 413 is sent, so a client still uploading gets its
answer instead of a reset connection, and nothing is kept in memory.
"""

from __future__ import annotations

import json

DRAIN_LIMIT = 256 * 1024 * 1024  # past this a client is cut off rather than drained


class BodyTooLarge(Exception):
    """Raised inside a request whose chunked body passed the limit."""


def error_body(path: str, message: str) -> dict:
    """The error object of the API the path belongs to: the Open Inference Protocol's
    ``{"error": ...}`` under /v2, FastAPI's ``{"detail": ...}`` elsewhere."""
    return {"error": message} if path.startswith("/v2") else {"detail": message}


def too_large_message(limit: int) -> str:
    return (
        f"The request body is over the server's limit of {limit / 2**20:g} MB "
        "(imgclf serve --max-upload-mb); send fewer or smaller images."
    )


class BodyLimit:
    """ASGI middleware: bodies over ``max_bytes`` end in 413 without being parsed."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive)
            await _send_413(scope, send, self.max_bytes)
            return
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if message.get("more_body"):
                        await _drain(receive)
                    raise BodyTooLarge
            return message

        await self.app(scope, counted, send)


async def _drain(receive) -> None:
    drained = 0
    while drained <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def _send_413(scope, send, limit: int) -> None:
    body = json.dumps(error_body(scope["path"], too_large_message(limit))).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
