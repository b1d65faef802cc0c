"""TLS to backends through a real gateway: trust per route, client certificates, names.

One gateway serves every case, a route (host) per case, against real TLS
backends whose CA and certificates each test run makes anew.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway.tls_support import TLSBackend, TLSBackends, tls_route
from support.gateway import GatewayProcess, Launcher

from gatehouse_gateway.balancing.cursor import LocalCursor
from gatehouse_gateway.config.loader import ConfigError, parse_config
from gatehouse_gateway.routing import build_table
from gatehouse_gateway.upstream.tls import TLSContexts

Setup = TLSBackends[TLSBackend]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    setup = Setup(tmp_path_factory.mktemp("tls"), TLSBackend)
    yield setup
    setup.close()


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, setup: Setup) -> GatewayProcess:
    ca = str(setup.ca.cert_file)
    client = setup.client_files()
    routes = [
        tls_route("trusted", setup.plain.url, ca_file=ca),
        tls_route("system-store", setup.plain.url),
        tls_route("wrong-ca", setup.plain.url, ca_file=str(setup.other_ca.cert_file)),
        tls_route("mtls", setup.mtls.url, ca_file=ca, **client),
        tls_route("mtls-without-cert", setup.mtls.url, ca_file=ca),
        tls_route("named", setup.named.url, ca_file=ca, server_name="backend.internal"),
        tls_route("misnamed", setup.named.url, ca_file=ca),
        tls_route("unverified", setup.plain.url, verify=False),
    ]
    return module_launcher.gateway({"routes": routes})


def _get(gateway: GatewayProcess, route: str) -> httpx.Response:
    return httpx.get(gateway.url + "/x", headers={"Host": f"{route}.test"}, timeout=15)


def test_a_backend_signed_by_the_routes_ca_is_reached(gateway: GatewayProcess) -> None:
    response = _get(gateway, "trusted")
    assert response.status_code == 200, response.text
    assert response.json() == {"client_cn": None}


@pytest.mark.parametrize("route", ["wrong-ca", "system-store"])
def test_a_backend_no_trusted_ca_signed_is_a_clear_502(gateway: GatewayProcess, route: str) -> None:
    """Without ``ca_file`` the system trust store decides, and it knows no test CA."""
    response = _get(gateway, route)
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "upstream_tls_failed"
    assert "CERTIFICATE_VERIFY_FAILED" in body["detail"]
    assert "127.0.0.1" not in body["detail"]  # the backend's address stays inside


def test_mtls_with_the_client_certificate_is_200(gateway: GatewayProcess) -> None:
    response = _get(gateway, "mtls")
    assert response.status_code == 200, response.text
    assert response.json() == {"client_cn": "gateway-1"}


def test_mtls_without_a_client_certificate_is_502(gateway: GatewayProcess, setup: Setup) -> None:
    response = _get(gateway, "mtls-without-cert")
    assert response.status_code == 502
    assert response.json()["error"] == "upstream_tls_failed"
    # refused by the backend, not by the gateway; its thread records the refusal
    # after the alert left, so it may come a moment after the gateway's answer
    deadline = time.monotonic() + 5
    while not setup.mtls.handshake_failures and time.monotonic() < deadline:
        time.sleep(0.01)
    assert setup.mtls.handshake_failures


def test_server_name_is_the_name_checked_and_sent(gateway: GatewayProcess) -> None:
    assert _get(gateway, "named").status_code == 200
    refused = _get(gateway, "misnamed")  # a certificate for backend.internal, reached by IP
    assert refused.status_code == 502
    assert refused.json()["error"] == "upstream_tls_failed"


def test_verify_false_reaches_any_backend_and_says_so(gateway: GatewayProcess) -> None:
    assert _get(gateway, "unverified").status_code == 200
    assert "WITHOUT verifying" in gateway.log_text()


def test_tls_settings_are_checked_when_the_config_loads(setup: Setup, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key_file needs cert_file"):
        parse_config(
            {"routes": [tls_route("r", setup.plain.url, key_file=str(setup.client_cert.key_file))]}
        )
    missing = parse_config(
        {"routes": [tls_route("r", setup.plain.url, ca_file=str(tmp_path / "none.pem"))]}
    )
    with pytest.raises(ConfigError, match="route 'r': tls"):
        build_table(missing.config, LocalCursor())
    # an http:// backend never reads the files
    plain = parse_config(
        {"routes": [tls_route("r", "http://127.0.0.1:1", ca_file=str(tmp_path / "none.pem"))]}
    )
    assert build_table(plain.config, LocalCursor()).routes[0].backends[0].tls is None


def test_a_reload_keeping_a_tls_block_keeps_its_context(setup: Setup) -> None:
    """The upstream client pools connections per context: an unchanged block
    keeps its pooled connections across a reload, a changed one gets new ones."""
    contexts = TLSContexts()
    ca = str(setup.ca.cert_file)
    first = build_table(
        parse_config({"routes": [tls_route("r", setup.plain.url, ca_file=ca)]}).config,
        LocalCursor(),
        tls=contexts,
    )
    same = build_table(
        parse_config({"routes": [tls_route("r", setup.plain.url, ca_file=ca)]}).config,
        LocalCursor(),
        previous=first,
        tls=contexts,
    )
    kept = first.routes[0].backends[0].tls
    assert kept is not None and same.routes[0].backends[0].tls is kept
    changed = build_table(
        parse_config({"routes": [tls_route("r", setup.plain.url, verify=False)]}).config,
        LocalCursor(),
        previous=same,
        tls=contexts,
    )
    assert changed.routes[0].backends[0].tls is not kept
