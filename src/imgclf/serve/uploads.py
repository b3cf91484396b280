"""The images of a request, read out of its body: multipart uploads, base64 JSON and the
protocol's BYTES elements, each refused with its 4xx and one-line reason (415 for what is not
an image, 422 for what cannot be read, 413 for too many)."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request
from pydantic import BaseModel, Field, ValidationError

from imgclf.serve.errors import ServeError
from imgclf.serve.settings import ServeSettings

IMAGE_TYPES_ALSO = ("application/octet-stream", "")  # what browsers send for unknown files


class Base64Images(BaseModel):
    """The JSON form of /v1/predict: base64 image files (a data: URL prefix is allowed)."""

    images: list[str] = Field(min_length=1)
    names: list[str] | None = None


async def multipart_images(request: Request, settings: ServeSettings) -> list[tuple[str, bytes]]:
    """The (name, bytes) of the multipart field 'files': 415 for what is not an image."""
    # The body is bounded by BodyLimit, so the parser's own file cap can be generous; the
    # request's count is checked here to answer 413, not the parser's 400.
    form = await request.form(max_files=100_000, max_fields=1_000)
    try:
        uploads = [item for key, item in form.multi_items() if key == "files"]
        uploads = [item for item in uploads if not isinstance(item, str)]
        if not uploads:
            raise ServeError(422, "No images: send them as multipart form field 'files'.")
        check_count(len(uploads), settings)
        named = []
        for upload in uploads:
            kind = (upload.content_type or "").lower()
            name = upload.filename or f"file[{len(named)}]"
            if not (kind.startswith("image/") or kind in IMAGE_TYPES_ALSO):
                raise ServeError(415, f"{name} is {kind}, not an image.")
            named.append((name, await upload.read()))
        return named
    finally:
        await form.close()


def base64_images(body: bytes, settings: ServeSettings) -> list[tuple[str, bytes]]:
    """The (name, bytes) of a JSON body of base64 images: 422 for a malformed one."""
    try:
        payload = Base64Images.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ServeError(
            422, f"Invalid JSON body at {where}: {first['msg']}. Expected "
            '{"images": ["<base64>", ...], "names": [...] (optional)}.'
        ) from None  # fmt: skip
    check_count(len(payload.images), settings)
    names = payload.names or [f"images[{i}]" for i in range(len(payload.images))]
    if len(names) != len(payload.images):
        raise ServeError(422, f"{len(names)} names for {len(payload.images)} images.")
    return [
        (name, _unbase64(text, i))
        for i, (name, text) in enumerate(zip(names, payload.images, strict=True))
    ]


def image_file(item: str | bytes, index: int) -> bytes:
    """An image file from a BYTES element: itself in binary data, base64 text in JSON."""
    return item if isinstance(item, bytes) else _unbase64(item, index)


def _unbase64(text: str, index: int) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ServeError(422, f"image {index} is not valid base64.") from None


def check_count(count: int, settings: ServeSettings) -> None:
    """413 for more images in one request than the server takes."""
    if count > settings.max_files:
        raise ServeError(
            413, f"{count} images in one request; the limit is {settings.max_files} "
            "(imgclf serve --max-files)."
        )  # fmt: skip
