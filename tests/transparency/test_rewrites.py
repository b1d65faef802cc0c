"""What the gateway changes on purpose, end to end: Host (per route) and backend URLs.

``app.gatehouse.test`` keeps the defaults (``preserve_host`` on);
``own.gatehouse.test`` has ``preserve_host: false``, so httpbin sees its own
address and builds absolute URLs from it, which the gateway must not leak.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from adversarial.raw import get
from support.gateway import HOST, GatewayProcess
from support.processes import ServiceProcess, free_port
from transparency.routes import OWN_HOST


@pytest.mark.parametrize(("host", "seen"), [(HOST, None), (OWN_HOST, "backend")])
def test_preserve_host(
    host: str, seen: str | None, httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    echoed = get(gateway.url, "/headers", host).json()["headers"]
    backend = httpbin.url.removeprefix("http://")
    assert echoed["Host"] == (backend if seen else host)
    assert echoed["X-Forwarded-Host"] == host  # the client's Host is there either way


@pytest.mark.parametrize("host", [HOST, OWN_HOST])
def test_absolute_redirect_names_the_client_host(
    host: str, httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    response = get(gateway.url, "/absolute-redirect/2", host)
    assert response.status == 302
    assert response.header("location") == f"http://{host}/absolute-redirect/1"


@pytest.mark.parametrize("host", [HOST, OWN_HOST])
def test_location_naming_the_backend_is_rewritten(
    host: str, httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    target = quote(httpbin.url + "/get?a=1", safe="")
    response = get(gateway.url, f"/redirect-to?url={target}&status_code=303", host)
    assert response.status == 303
    assert response.header("location") == f"http://{host}/get?a=1"


@pytest.mark.parametrize(
    "url", ["http://example.com/x", "http://127.0.0.1:{other}/x", "/relative/x"]
)
def test_other_locations_pass_as_sent(
    url: str, httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    url = url.format(other=free_port())
    response = get(gateway.url, f"/redirect-to?url={quote(url, safe='')}", OWN_HOST)
    assert response.header("location") == url


def test_content_location_and_refresh_are_rewritten(
    httpbin: ServiceProcess, gateway: GatewayProcess
) -> None:
    query = (
        f"Content-Location={quote(httpbin.url + '/doc/1', safe='')}"
        f"&Refresh={quote('5; url=' + httpbin.url + '/later', safe='')}"
    )
    response = get(gateway.url, f"/response-headers?{query}", OWN_HOST)
    assert response.header("content-location") == f"http://{OWN_HOST}/doc/1"
    assert response.header("refresh") == f"5; url=http://{OWN_HOST}/later"
