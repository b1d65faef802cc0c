"""The demo's printed walkthrough, run as written with curl through a gateway routed as the demo is.

The original steps (sign up, log in, call both services with the token) must
work unchanged, and the session steps after them (refresh, reuse refused,
logout, discovery) must do what their comments say.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support.auth import StartAuth
from support.demo_script import load_demo
from support.gateway import Launcher, gateway_route
from support.processes import REPO_ROOT, ServiceProcess

demo = load_demo()

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def _demo_routes() -> dict[str, dict[str, object]]:
    document = yaml.safe_load((REPO_ROOT / "services/gateway/config/demo.yaml").read_text())
    return {route["name"]: route for route in document["routes"]}


def _walkthrough_script(gateway_url: str) -> str:
    text = demo.walkthrough({"GATEHOUSE_ADMIN_EMAIL": "admin@example.com"}, ["gateway"], "-")
    # The HTTP steps; the WebSocket and TLS steps have tests of their own
    # (tests/gateway/test_websocket*.py, tests/gateway/test_listeners.py).
    section = text[text.index("Try, through the gateway:") : text.index("\nTLS:")]
    commands = [
        command
        for command in section.replace("\\\n", "\\\x00").splitlines()[1:]
        if command.startswith("  ")
        and not any(skip in command for skip in ("localhost:9001", "open http", "ws_client"))
    ]
    commands = [command.replace("\\\x00", "\\\n") for command in commands]
    host = gateway_url.removeprefix("http://")
    return "\n".join(commands).replace("localhost:8080", host) + "\n"


def test_the_walkthrough_works_through_the_demo_routes(
    start_auth: StartAuth, launcher: Launcher, backends: list[ServiceProcess], tmp_path: Path
) -> None:
    auth = start_auth(name="walkthrough", redis=False)
    routes = _demo_routes()
    document = {
        "auth": {"jwks_url": auth.url + "/.well-known/jwks.json"},
        "routes": [
            gateway_route(
                backends[:1], name="service1", hosts=routes["service1"]["hosts"], auth="required"
            ),
            gateway_route(
                backends[1:2], name="service2", hosts=routes["service2"]["hosts"], auth="required"
            ),
            {
                "name": "auth",
                "path_prefix": routes["auth"]["path_prefix"],
                "backends": [{"url": auth.url}],
            },
        ],
    }
    gateway = launcher.gateway(document)
    script = tmp_path / "walkthrough.sh"
    script.write_text("set -eu\n" + _walkthrough_script(gateway.url))
    run = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert '"username":"alice"' in out  # signed up
    assert out.count('"instance"') == 2, out  # both services answered the token
    assert out.count('"refresh_expires_in"') == 1  # refreshed (the login's went to REFRESH)
    assert '"invalid_refresh_token"' in out  # the used one refused
    assert "HTTP/1.1 204" in out  # logged out
    assert '"jwks_uri"' in out
