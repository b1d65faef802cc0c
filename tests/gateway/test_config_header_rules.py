"""Header rules the gateway could only ignore are config errors, at load and on reload.

The WebSocket handshake's own headers (``Sec-WebSocket-*``) and the hop-by-hop
ones (``Upgrade``, ``Connection``...) are written by the gateway's connections
and the server on every request, answer and handshake: a rule naming one
would be silently dropped, so the file is refused, naming the route, the rule
and why. A reload of such a file keeps the running config.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.gateway import Launcher, gateway_route, write_yaml
from support.processes import ServiceProcess

from gatehouse_gateway.config.loader import ConfigError, load_config

HANDSHAKE = "WebSocket handshake's own"
HOP_BY_HOP = "hop-by-hop"


def _document(direction: str, op: str, name: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"remove": [name]} if op == "remove" else {op: {name: "v"}}
    route = {
        "name": "chat",
        "backends": [{"url": "http://127.0.0.1:9"}],
        "headers": {direction: rule},
    }
    other = {"name": "other", "hosts": ["other.test"], "backends": [{"url": "http://127.0.0.1:9"}]}
    return {"routes": [other, route]}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("sec-websocket-key", HANDSHAKE),
        ("Sec-WebSocket-Key", HANDSHAKE),
        ("SEC-WEBSOCKET-VERSION", HANDSHAKE),
        ("Sec-Websocket-Extensions", HANDSHAKE),
        ("sec-websocket-accept", HANDSHAKE),
        ("Sec-WebSocket-Protocol", HANDSHAKE),
        ("sec_websocket_key", HANDSHAKE),  # WSGI servers read _ as -
        ("Upgrade", HOP_BY_HOP),
        ("CONNECTION", HOP_BY_HOP),
        ("Keep-Alive", HOP_BY_HOP),
        ("transfer_encoding", HOP_BY_HOP),
    ],
)
@pytest.mark.parametrize("direction", ["request", "response"])
@pytest.mark.parametrize("op", ["set", "add", "remove"])
def test_a_rule_on_a_header_the_gateway_writes_is_refused_naming_route_rule_and_why(
    tmp_path: Path, name: str, why: str, direction: str, op: str
) -> None:
    path = tmp_path / "gateway.yaml"
    write_yaml(path, _document(direction, op, name))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert f"route 'chat': routes[1].headers.{direction}.{op}" in message
    assert repr(name) in message
    assert why in message


@pytest.mark.unit
@pytest.mark.parametrize("name", [" sec-websocket-key", "Sec-WebSocket-Key ", " Upgrade "])
def test_a_name_with_spaces_around_it_is_no_header_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "gateway.yaml"
    write_yaml(path, _document("request", "set", name))
    with pytest.raises(ConfigError, match=r"route 'chat': .*not a header name \(spaces around"):
        load_config(path)


@pytest.mark.unit
@pytest.mark.parametrize("name", ["x-sec-websocket-key", "sec-fetch-site", "x-upgrade", "origin"])
def test_names_that_only_look_alike_are_the_route_s_to_set(tmp_path: Path, name: str) -> None:
    path = tmp_path / "gateway.yaml"
    write_yaml(path, _document("request", "set", name))
    assert load_config(path).config.routes[1].headers is not None


def test_a_reload_with_such_a_rule_keeps_the_running_config(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    backend = backends[0]
    good = gateway_route([backend], headers={"request": {"set": {"x-rule": "one"}}})
    gateway = launcher.gateway({"routes": [good]}, env={"GATEHOUSE_GATEWAY_WATCH_CONFIG": "false"})
    bad = gateway_route([backend], headers={"request": {"set": {"Sec-WebSocket-Key": "x"}}})
    gateway.write_config({"routes": [bad]})
    gateway.signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "config reload (SIGHUP) failed" not in gateway.log_text():
        assert time.monotonic() < deadline, gateway.log_tail()
        time.sleep(0.05)
    config = httpx.get(gateway.admin_url + "/-/config", timeout=10).json()
    assert config["version"] == 1
    error = config["last_reload_error"]
    assert "route 'app': routes[0].headers.request.set" in error
    assert "'Sec-WebSocket-Key'" in error and HANDSHAKE in error
    with gateway.client() as client:
        seen = client.get("/anything").json()["headers"]
    assert seen["x-rule"] == "one"  # the old rules still run


@pytest.mark.unit
@pytest.mark.parametrize("op", ["set", "add", "remove"])
@pytest.mark.parametrize("name", ["Date", "DATE"])
def test_a_response_rule_on_the_date_the_server_writes_is_refused(
    tmp_path: Path, op: str, name: str
) -> None:
    path = tmp_path / "gateway.yaml"
    write_yaml(path, _document("response", op, name))
    with pytest.raises(ConfigError, match=r"route 'chat': .*\['date'\]: the server writes"):
        load_config(path)
    write_yaml(path, _document("request", op, name))  # a request's Date is the client's
    assert load_config(path).config.routes[1].headers is not None
