"""/docs: Swagger UI from the gateway's own files (the copy the ``fastapi-offline`` package ships: Swagger UI 5,
which reads FastAPI's OpenAPI 3.1), nothing from a CDN, with the console's security headers. No /redoc."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Response

from ..errors import NotFound
from .routes.console import SECURITY_HEADERS

__all__ = ["DOCS_HEADERS", "router"]

router = APIRouter(include_in_schema=False)

# The console's headers; images also from data: URIs (Swagger UI's style sheet draws its icons with them).
DOCS_HEADERS = SECURITY_HEADERS | {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
_VENDOR = ("swagger-ui-bundle.js", "swagger-ui.css")
_OWN = resources.files("gateway.api") / "docs_page"
# Only the package's static files are used (not its app factory); swagger-ui-bundle's Swagger UI 4 cannot read
# OpenAPI 3.1 ("does not specify a valid version field").
_STATIC = resources.files("fastapi_offline") / "static"
# Read once at import (about 1.2 MB): no file access on the event loop afterwards. Only the files the page uses:
# the package's own index.html and initializer point at petstore.swagger.io.
_PAGE = (_OWN / "index.html").read_bytes()
_ASSETS = {name: (_STATIC / name).read_bytes() for name in _VENDOR} | {
    "docs-init.js": (_OWN / "docs-init.js").read_bytes()
}


@router.get("/docs")
async def docs() -> Response:
    """The Swagger UI page."""
    return Response(_PAGE, media_type=_MEDIA_TYPES[".html"], headers=DOCS_HEADERS)


@router.get("/docs/assets/{name}")
async def docs_asset(name: Annotated[str, Path(max_length=32)]) -> Response:
    """One of the page's files."""
    body = _ASSETS.get(name)
    if body is None:
        raise NotFound(f"no docs file {name!r}", code="not_found")
    return Response(body, media_type=_MEDIA_TYPES["." + name.rsplit(".", 1)[-1]], headers=DOCS_HEADERS)
