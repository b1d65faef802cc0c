"""TLS listeners in a real service process: versions, SNI, live reload, redirect, HSTS.

common/tls_app.py is served by ``gatehouse_common.server.serve`` with a TLS
listener holding two certificates (``a``: localhost, 127.0.0.1, a.test, the
default; ``b``: b.test, *.wild.test), a plain listener that redirects to it,
and h2c on the main port. Certificates come from ``gatehouse_common.devcerts``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from common.edge_servers import read_answer
from common.tls_servers import (
    Certs,
    client_context,
    make_certs,
    peer_names,
    tls_app,
    tls_socket,
)
from support.processes import ServiceProcess, free_port

from gatehouse_common.devcerts import issue

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"tls": free_port(), "redirect": free_port()}


@pytest.fixture(scope="module")
def server(certs: Certs, ports: dict[str, int]) -> Iterator[ServiceProcess]:
    listeners = [
        {"port": ports["tls"], "certificates": certs.pairs(), "hsts": 600},
        {"port": ports["redirect"], "redirect_to_https": ports["tls"]},
    ]
    with tls_app(listeners, main_h2c="1") as process:
        yield process


def _https(certs: Certs, port: int, path: str, http2: bool = True) -> httpx.Response:
    with httpx.Client(http2=http2, verify=client_context(certs.ca, ())) as client:
        return client.get(f"https://localhost:{port}{path}")


def test_tls_answers_https_with_hsts_on_both_http_versions(
    server: ServiceProcess, certs: Certs, ports: dict[str, int]
) -> None:
    for http2, version in ((True, "2"), (False, "1.1")):
        response = _https(certs, ports["tls"], "/echo?x=1", http2=http2)
        seen = response.json()
        assert response.status_code == 200
        assert (seen["scheme"], seen["http_version"]) == ("https", version)
        assert ["host", f"localhost:{ports['tls']}"] in seen["headers"]
        assert response.headers["strict-transport-security"] == "max-age=600"


def test_plain_main_port_has_no_hsts_and_takes_h2c(server: ServiceProcess) -> None:
    plain = httpx.get(server.url + "/echo")
    assert plain.json()["scheme"] == "http"
    assert "strict-transport-security" not in plain.headers
    with httpx.Client(http1=False, http2=True) as client:
        response = client.get(server.url + "/echo")
    assert response.http_version == "HTTP/2"
    assert response.json()["http_version"] == "2"


def _handshake(port: int, context: ssl.SSLContext, name: str | None = None) -> str | None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as sock,
    ):
        return sock.version()


def _old_client(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = maximum
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


# the old versions are deprecated in Python's ssl: saying them is the point here
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"]
)
def test_tls_1_0_and_1_1_are_refused(
    server: ServiceProcess, certs: Certs, ports: dict[str, int], version: ssl.TLSVersion
) -> None:
    # a control server that takes the old version proves this client can speak it
    control = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    control.minimum_version = ssl.TLSVersion.TLSv1
    control.set_ciphers("ALL:@SECLEVEL=0")
    control.load_cert_chain(*certs.a)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[str | None] = []

    def serve_once() -> None:
        conn, _ = listener.accept()
        try:
            with control.wrap_socket(conn, server_side=True) as tls:
                accepted.append(tls.version())
        except (ssl.SSLError, OSError):
            accepted.append(None)

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    with contextlib.suppress(ssl.SSLError, OSError):
        _handshake(listener.getsockname()[1], _old_client(version))
    thread.join(10)
    listener.close()
    if accepted != [version.name.replace("_", ".")]:
        pytest.skip(f"this OpenSSL cannot speak {version.name} at all")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _handshake(ports["tls"], _old_client(version))


def test_tls_1_2_and_1_3_are_taken(server: ServiceProcess, ports: dict[str, int]) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = context.maximum_version = version
        assert _handshake(ports["tls"], context) == version.name.replace("_", ".")


@pytest.mark.parametrize(
    ("server_name", "expected"),
    [
        ("localhost", "a.test"),
        ("a.test", "a.test"),
        ("b.test", "b.test"),
        ("api.wild.test", "*.wild.test"),
        ("API.WILD.TEST", "*.wild.test"),
        ("deep.api.wild.test", "a.test"),  # a wildcard is one label: the default
        ("unknown.example", "a.test"),
        (None, "a.test"),  # no SNI at all
    ],
)
def test_sni_chooses_the_certificate(
    server: ServiceProcess,
    certs: Certs,
    ports: dict[str, int],
    server_name: str | None,
    expected: str,
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(certs.ca.cert_file)
    context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", ports["tls"]), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as sock,
    ):
        assert expected in peer_names(sock)


def test_http_is_redirected_to_https_with_308(
    server: ServiceProcess, ports: dict[str, int]
) -> None:
    url = f"http://127.0.0.1:{ports['redirect']}/a/b%20c?q=1&r=2"
    response = httpx.post(url, content=b"kept for the retry", headers={"host": "shop.example:80"})
    assert response.status_code == 308
    assert response.headers["location"] == f"https://shop.example:{ports['tls']}/a/b%20c?q=1&r=2"
    for hostile in ("a b", "user@host", "", "evil/x", "[::1", "a:b:c"):
        with socket.create_connection(("127.0.0.1", ports["redirect"]), timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nhost: " + hostile.encode() + b"\r\n\r\n")
            assert read_answer(conn).status == 400


# live reload
def _copy_pair(source: tuple[Path, Path], target: tuple[Path, Path]) -> None:
    shutil.copyfile(source[1], target[1])
    shutil.copyfile(source[0], target[0])


@pytest.fixture
def live(certs: Certs, tmp_path: Path) -> tuple[Path, Path]:
    pair = (tmp_path / "live.pem", tmp_path / "live-key.pem")
    issue(certs.ca, ["localhost", "old.test"], *pair)
    return pair


def _names_seen(port: int, certs: Certs) -> list[str]:
    with tls_socket(port, certs.ca, alpn=("http/1.1",)) as sock:
        return peer_names(sock)


def _reload_keeps_open_connections(
    process: ServiceProcess, port: int, certs: Certs, live: tuple[Path, Path], trigger: object
) -> None:
    with tls_socket(port, certs.ca, alpn=("http/1.1",)) as kept:
        assert "old.test" in peer_names(kept)
        request = b"GET /echo HTTP/1.1\r\nhost: localhost\r\n\r\n"
        kept.sendall(request)
        assert read_answer(kept).status == 200
        replacement = (live[0].with_name("new.pem"), live[1].with_name("new-key.pem"))
        issue(certs.ca, ["localhost", "new.test"], *replacement)
        _copy_pair(replacement, live)
        if callable(trigger):
            trigger()
        deadline = time.monotonic() + 10
        while "new.test" not in _names_seen(port, certs):
            assert time.monotonic() < deadline, "the new certificate was never served"
            time.sleep(0.1)
        # the connection made before the reload goes on, on the old certificate
        kept.sendall(request)
        assert read_answer(kept).status == 200
        assert "old.test" in peer_names(kept)


def test_changed_files_are_served_to_new_connections_without_dropping_old_ones(
    certs: Certs, live: tuple[Path, Path]
) -> None:
    port = free_port()
    listeners = [{"port": port, "certificates": [[str(live[0]), str(live[1])]]}]
    with tls_app(listeners) as process:
        _reload_keeps_open_connections(process, port, certs, live, None)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sighup_reloads_without_dropping_connections(
    certs: Certs, live: tuple[Path, Path], workers: str
) -> None:
    port = free_port()
    listeners = [
        {
            "port": port,
            "certificates": [[str(live[0]), str(live[1])]],
            "reload_check_interval": 3600,  # only the signal can make it reload
        }
    ]
    with tls_app(listeners, workers=workers) as process:
        _reload_keeps_open_connections(
            process,
            port,
            certs,
            live,
            lambda: process.process and process.process.send_signal(signal.SIGHUP),
        )
        assert process.process is not None and process.process.poll() is None


def test_a_bad_certificate_file_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    listeners = [{"port": free_port(), "certificates": [[str(bad), str(bad)]]}]
    with pytest.raises(RuntimeError, match="exited with 3"):
        tls_app(listeners).start()


def test_a_broken_file_on_reload_keeps_the_previous_certificate(
    certs: Certs, live: tuple[Path, Path]
) -> None:
    port = free_port()
    listeners = [{"port": port, "certificates": [[str(live[0]), str(live[1])]]}]
    with tls_app(listeners) as process:
        live[1].write_text("half-written key")
        time.sleep(0.5)  # past the check interval: the broken file has been tried
        assert "old.test" in _names_seen(port, certs)
        assert "not reloaded" in process.log_text()


@pytest.mark.parametrize("alpn", ["h2", "http/1.1"])
def test_the_connection_cap_counts_tls_connections(certs: Certs, alpn: str) -> None:
    port = free_port()
    listeners = [{"port": port, "certificates": certs.pairs()}]
    with (
        tls_app(listeners, max_connections="2"),
        tls_socket(port, certs.ca, alpn=(alpn,)) as first,
        tls_socket(port, certs.ca, alpn=(alpn,)) as second,
    ):
        assert first.selected_alpn_protocol() == second.selected_alpn_protocol() == alpn
        with pytest.raises((ssl.SSLError, OSError)), tls_socket(port, certs.ca, alpn=(alpn,)):
            pass
