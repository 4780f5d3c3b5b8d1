"""`GET /dashboard`: one static page over the JSON APIs, and its assets under `/dashboard/static/`.

The page holds no secret and needs nothing from the runtime: the browser keeps the key the user
pasted in `sessionStorage` and sends it as `Authorization: Bearer` to `/v1/usage`, `/v1/budgets`
and, for the admin key, `/admin/v1/costs`, `/admin/v1/budgets` and `/admin/v1/deployments`, which
do their own authorization.

The page links each asset as `/dashboard/static/<name>?v=<content hash>`: a request with the
current hash may be cached for a year; any other (a module import, an old page) is revalidated
by ETag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.errors import NotFound

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}
_PAGE = "index.html"
_STATIC_PREFIX = "/dashboard/static/"
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
# The key sits in sessionStorage, so script injection is the threat: no inline script or style,
# no third-party origin, no framing.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    version: str
    """The first 16 hex digits of the body's SHA-256."""


def load_assets() -> dict[str, Asset]:
    """Every file of `static/` by name, the page with its asset links stamped with their versions."""
    folder = files(__package__ or "gateway.dashboard") / "static"
    bodies = {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(suffix) for suffix in _CONTENT_TYPES)
    }
    assets = {name: _asset(name, body) for name, body in bodies.items() if name != _PAGE}
    page = bodies[_PAGE].decode()
    for name, asset in assets.items():
        link = f'"{_STATIC_PREFIX}{name}"'
        page = page.replace(link, f'"{_STATIC_PREFIX}{name}?v={asset.version}"')
    assets[_PAGE] = _asset(_PAGE, page.encode())
    return assets


def dashboard_routes() -> list[Route]:
    assets = load_assets()

    async def page(request: Request) -> Response:
        asset = assets[_PAGE]
        headers = {**_SECURITY_HEADERS, "content-security-policy": _PAGE_POLICY}
        return _serve(request, asset, _REVALIDATE, headers)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        asset = assets.get(name) if name != _PAGE else None
        if asset is None:
            raise NotFound(f"No dashboard asset '{name}'.", code="unknown_route")
        cache = _IMMUTABLE if request.query_params.get("v") == asset.version else _REVALIDATE
        return _serve(request, asset, cache, _SECURITY_HEADERS)

    return [
        Route("/dashboard", page, methods=["GET"]),
        Route(_STATIC_PREFIX + "{name}", static, methods=["GET"]),
    ]


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rindex(".") :]
    version = hashlib.sha256(body).hexdigest()[:16]
    return Asset(body, _CONTENT_TYPES[suffix], f'"{version}"', version)


def _serve(request: Request, asset: Asset, cache_control: str, extra: dict[str, str]) -> Response:
    headers = {**extra, "cache-control": cache_control, "etag": asset.etag}
    if _matches(request.headers.get("if-none-match", ""), asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags
