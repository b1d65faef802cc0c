"""Every URL of the page lives under one prefix, so one gateway route covers it all."""

from __future__ import annotations

from urllib.parse import urlencode

PREFIX = "/accounts_page"
STATIC_PREFIX = f"{PREFIX}/static"
LOGIN_PATH = f"{PREFIX}/login"
LOGOUT_PATH = f"{PREFIX}/logout"


def page_url(**params: str | int) -> str:
    """``/accounts_page`` with the given query, empty values left out.

    An absolute path rather than a full URL: it stays right whether the browser
    reached this service directly or through the gateway.
    """
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return f"{PREFIX}?{query}" if query else PREFIX
