"""The bench's targets: the configs, command lines and certificates they are started with."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from gatehouse_loadtest.bench import (
    DEFAULT_TARGETS,
    GATEWAY_SETTINGS,
    SERVER_TARGETS,
    build_parser,
    wanted_targets,
)
from gatehouse_loadtest.gateway import BENCH_HOST, GatewaySetting, gateway_config, granian_command
from gatehouse_loadtest.servers import bare_server_command
from gatehouse_loadtest.tls import CertFiles, make_certificates
from gatehouse_loadtest.user_gateway import console_script, original_config

from gatehouse_gateway.config.loader import parse_config

BACKENDS = ["http://127.0.0.1:9101", "http://127.0.0.1:9102"]
JWKS = "http://127.0.0.1:9103/.well-known/jwks.json"


@pytest.mark.parametrize("name", list(GATEWAY_SETTINGS))
def test_every_bench_config_is_one_the_gateway_accepts(name: str) -> None:
    _, setting = GATEWAY_SETTINGS[name]
    loaded = parse_config(gateway_config(setting, port=8000, backends=BACKENDS, jwks_url=JWKS))
    route = next(r for r in loaded.config.routes if r.name == "bench")
    assert route.hosts == [BENCH_HOST]
    assert route.auth == ("required" if setting.auth else "none")
    assert [str(b.url).rstrip("/") for b in route.backends] == BACKENDS
    assert loaded.config.cursor.store == setting.cursor


def test_original_format_config_is_read_as_the_original_app_wrote_it() -> None:
    loaded = parse_config(original_config(8000, BACKENDS))
    assert loaded.original_format
    route = next(r for r in loaded.config.routes if r.name == "bench")
    assert route.hosts == [BENCH_HOST]
    assert route.auth == "none"
    assert route.strategy == "round_robin"
    assert [str(b.url).rstrip("/") for b in route.backends] == BACKENDS
    assert loaded.config.listen.port == 8000
    # what a user of the original format gets and the bench's own configs do not name
    assert loaded.config.public_metrics
    assert loaded.config.cursor.store == "redis"


def test_console_script_is_the_one_beside_the_venvs_python() -> None:
    assert console_script("venv/bin/python") == Path("venv/bin/gatehouse-gateway").absolute()


def test_tls_setting_adds_a_listener_with_the_certificate(tmp_path: Path) -> None:
    certs = CertFiles(cert=tmp_path / "c.pem", key=tmp_path / "k.pem", ca=tmp_path / "ca.pem")
    document = gateway_config(
        GatewaySetting(tls=certs), port=8000, backends=BACKENDS, jwks_url=JWKS, tls_port=8443
    )
    assert document["listeners"] == [
        {
            "address": "127.0.0.1",
            "port": 8443,
            "tls": {"certificates": [{"cert_file": str(certs.cert), "key_file": str(certs.key)}]},
        }
    ]
    assert "listeners" not in gateway_config(
        GatewaySetting(), port=8000, backends=BACKENDS, jwks_url=JWKS
    )
    with pytest.raises(ValueError, match="port"):
        gateway_config(GatewaySetting(tls=certs), port=8000, backends=BACKENDS, jwks_url=JWKS)


def test_granian_command_serves_the_factory_on_uvloop_with_one_thread() -> None:
    command = granian_command("py", "asgi", "gatehouse_gateway.app:create_app", 8000)
    assert command[:3] == ["py", "-m", "granian"]
    assert command[-2:] == ["--factory", "gatehouse_gateway.app:create_app"]
    for flag, value in (("--interface", "asgi"), ("--loop", "uvloop"), ("--port", "8000")):
        assert command[command.index(flag) + 1] == value
    assert command[command.index("--runtime-threads") + 1] == "1"
    assert "--no-ws" in command


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("server-uvicorn-edge", ["py", "-m", "gatehouse_loadtest.bare_app", "--port", "8000"]),
        ("server-granian-asgi", "gatehouse_loadtest.bare_app:app"),
        ("server-granian-rsgi", "gatehouse_loadtest.bare_app:rsgi_app"),
    ],
)
def test_bare_servers_command_lines(name: str, expected: list[str] | str) -> None:
    command = bare_server_command(name, "py", 8000)
    if isinstance(expected, list):
        assert command == expected
    else:
        assert command[-1] == expected
        assert "--factory" not in command
        interface = command[command.index("--interface") + 1]
        assert interface == name.rsplit("-", 1)[1]


def test_server_comparison_is_opt_in() -> None:
    parser = build_parser()
    default = wanted_targets(parser.parse_args([]))
    assert default == list(DEFAULT_TARGETS)
    assert not set(SERVER_TARGETS) & set(default)
    with_servers = wanted_targets(parser.parse_args(["--servers"]))
    assert with_servers == [*DEFAULT_TARGETS, *SERVER_TARGETS]
    assert wanted_targets(parser.parse_args(["--only", "nginx", "server-granian-rsgi"])) == [
        "nginx",
        "server-granian-rsgi",
    ]


def test_run_certificate_serves_127_0_0_1_and_is_trusted_by_its_ca(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    # PKCS#8, the one format granian reads; readable by its owner only
    assert files.key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert files.key.stat().st_mode & 0o077 == 0
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.cert, files.key)  # the pair matches
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)


def test_tls_config_is_one_the_gateway_accepts(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    setting = GatewaySetting(tls=files)
    document = gateway_config(setting, port=8000, backends=BACKENDS, jwks_url=JWKS, tls_port=8443)
    listener = parse_config(document).config.listeners[0]
    assert listener.port == 8443
    assert listener.tls is not None
    assert listener.tls.certificates[0].cert_file == str(files.cert)
