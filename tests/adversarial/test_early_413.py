"""Attack 11 (a robustness one): an oversized upload must get its 413, not a reset.

A server that answers 413 from the headers and closes at once leaves the
client's unsent body in its socket; the kernel then resets the connection and
the client (Python's http.client, curl, browsers) reports ``Connection reset``
or ``Broken pipe`` instead of the answer. The contract's lingering close reads
and discards up to ``linger_bytes`` for up to ``linger_timeout`` after an
early answer. Checked on the gateway (route ``limits.max_body_bytes``), the
auth service (its own body limit) and the accounts page's sign-in form.

Two sizes: 900 KiB and 10 MiB. http.client sends the whole body before it
reads anything, so the 10 MiB upload gets its 413 only because the lingering
close discards up to ``linger_bytes`` (64 MiB by default; nginx's
``lingering_close`` has no byte cap, only ``lingering_time``). Measured on
loopback: a server that discarded 1 MiB and then closed gave http.client
``BrokenPipeError`` for a 10 MiB POST.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from adversarial.support import route
from support.gateway import HOST, Launcher
from support.processes import ServiceProcess, free_port, python_module

TEN_MB = 10 * 1024 * 1024
SIZES = [900 * 1024, TEN_MB]
SIZE_IDS = ["900KiB", "10MiB"]


def _post(url: str, body: bytes, content_type: str, host: str | None = None) -> tuple[int, bytes]:
    """POST with urllib (http.client underneath): the status and body, or the failure."""
    headers = {"Content-Type": content_type}
    if host:
        headers["Host"] = host
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        pytest.fail(f"POST of {len(body)} bytes to {url}: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_gateway_route_limit_answers_413(launcher: Launcher, size: int) -> None:
    backend = launcher.backends(1, prefix="limit")[0]
    document = {"routes": [route("app", [backend], [HOST], limits={"max_body_bytes": 1000})]}
    gateway = launcher.gateway(document)
    status, body = _post(gateway.url + "/upload", b"x" * size, "application/octet-stream", HOST)
    assert status == 413, f"{status}: {body[:300]!r}"
    assert json.loads(body).get("error"), body[:300]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_auth_service_answers_413(tmp_path: Path, size: int) -> None:
    from support.auth import auth_env, launch

    data_dir = tmp_path / "auth"
    auth = launch(data_dir, "sqlite", auth_env(data_dir, database_url=None, redis_prefix=None))
    try:
        body = json.dumps({"username": "u", "email": "a@example.com", "password": "x" * size})
        status, answer = _post(auth.url + "/account", body.encode(), "application/json")
        assert status == 413, f"{status}: {answer[:300]!r}"
        assert json.loads(answer).get("error"), answer[:300]
    finally:
        auth.process.stop()


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_accounts_ui_login_form_answers_413(size: int) -> None:
    port = free_port()
    ui = ServiceProcess(
        name="accounts-ui-413",
        command=python_module(
            "gatehouse_accounts_ui", "--port", str(port), "--auth-url", "http://127.0.0.1:9"
        ),
        port=port,
    )
    ui.start()
    try:
        form = b"email=a%40example.com&password=" + b"x" * size
        status, answer = _post(
            ui.url + "/accounts_page/login", form, "application/x-www-form-urlencoded"
        )
        assert status == 413, f"{status}: {answer[:300]!r}"
    finally:
        ui.stop()
