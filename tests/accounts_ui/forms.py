"""What the page's HTTP tests do as a browser would: fresh accounts, form posts with a token."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from accounts_ui.conftest import ActionStack
from accounts_ui.stack import csrf_token

PASSWORD = "correct horse battery"


def new_account(stack: ActionStack) -> dict[str, Any]:
    """A fresh account (sign-up through auth) and its id."""
    tag = uuid.uuid4().hex[:10]
    body = {"username": f"act_{tag}", "email": f"act.{tag}@example.com", "password": PASSWORD}
    created = httpx.post(stack.auth.url + "/account", json=body, timeout=30)
    assert created.status_code == 201, created.text
    return {**body, "id": created.json()["id"]}


def token_of(client: httpx.Client, path: str = "/accounts_page") -> str:
    """The form token of the page at ``path``, as the browser holding its cookie sees it."""
    return csrf_token(client.get(path).text)


def post(client: httpx.Client, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={"csrf_token": token_of(client), **form})


def is_page(response: httpx.Response, status: int) -> None:
    """An HTML page with ``status``: the page never answers JSON or a bare 500."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
