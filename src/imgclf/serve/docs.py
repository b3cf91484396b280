"""The OpenAPI side: Swagger UI at /docs from local files (FastAPI's own loads a CDN, which
fails offline), and the request bodies of /v1/predict and the protocol's inference.

The files are fastapi-offline's: Swagger UI 5, which reads the OpenAPI 3.1 that FastAPI writes
(swagger-ui-bundle's 4.x cannot, and /docs was blank with "Unable to render this definition").
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

ASSETS_PACKAGE = "fastapi_offline"
ASSETS = {  # the name under /docs/: the media type
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


def docs_routes(openapi_url: str, title: str) -> APIRouter:
    """/docs and its three assets, read once from the package (no path from the request)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"imgclf: {title}",
            swagger_js_url="/docs/swagger-ui-bundle.js", swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
        )  # fmt: skip

    static = resources.files(ASSETS_PACKAGE).joinpath("static")
    for name, kind in ASSETS.items():
        content = static.joinpath(name).read_bytes()
        router.add_api_route(f"/docs/{name}", _fixed(content, kind), methods=["GET"])
    return router


def _fixed(content: bytes, media_type: str):
    def asset() -> Response:
        return Response(content, media_type=media_type, headers={"Cache-Control": "max-age=86400"})

    return asset


def predict_body_doc(json_schema: dict[str, Any]) -> dict[str, Any]:
    """The two forms /v1/predict takes: multipart ``files``, or JSON of ``json_schema``."""
    files = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"files": files}, "required": ["files"]}
            },
            "application/json": {"schema": json_schema},
        },
    }


def infer_body_doc(json_schema: dict[str, Any]) -> dict[str, Any]:
    """The protocol's inference body: JSON of ``json_schema`` (its ``$defs`` inlined: a
    request body's schema cannot refer to them), whatever the Content-Type, or that JSON
    followed by binary tensor data (then Inference-Header-Content-Length gives its length)."""
    schema = _inlined(json_schema, json_schema.get("$defs", {}))
    framed = {"type": "string", "format": "binary"}
    return {
        "required": True,
        "content": {"application/json": {"schema": schema},
                    "application/octet-stream": {"schema": framed}},
    }  # fmt: skip


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inlined(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _inlined(value, defs) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inlined(item, defs) for item in node]
    return node
