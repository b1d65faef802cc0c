"""The dashboard page ``/-/dashboard`` and its assets, served by the gateway itself.

No CDN, no inline script or style: the page loads ``dashboard.js`` and
``dashboard.css`` from here, and every response carries a Content-Security-
Policy that allows nothing else (``connect-src 'self'`` for its API calls and
the sign-in). The files are read once, when the module is imported.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Response

from gatehouse_common.errors import ServiceError

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

_STATIC = files("gatehouse_gateway.operator") / "static"
_ASSETS = {
    name: (_STATIC.joinpath(name).read_bytes(), media_type)
    for name, media_type in (
        ("dashboard.html", "text/html; charset=utf-8"),
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
    )
}

router = APIRouter(prefix="/-/dashboard", tags=["operator"], include_in_schema=False)


def _asset(name: str) -> Response:
    found = _ASSETS.get(name)
    if found is None:
        raise ServiceError(404, "not_found", "no such dashboard asset")
    body, media_type = found
    return Response(body, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("")
async def page() -> Response:
    """The page itself; it signs in and fetches everything else with the admin token."""
    return _asset("dashboard.html")


@router.get("/{name}")
async def asset(name: str) -> Response:
    return _asset(name)
