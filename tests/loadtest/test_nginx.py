"""The nginx configs: every slot filled, and nginx itself accepts what the harness writes."""

import subprocess
from pathlib import Path

import pytest
from gatehouse_loadtest.jwks import BenchKey
from gatehouse_loadtest.nginx import CONFIGS, nginx_binary, render
from gatehouse_loadtest.tls import make_certificates


def test_render_fills_every_slot() -> None:
    assert render("listen {{PORT}}; x {{PORT}};", {"PORT": 81}) == "listen 81; x 81;"


def test_render_refuses_a_slot_without_a_value() -> None:
    with pytest.raises(KeyError, match="PORT"):
        render("listen {{PORT}};", {})


def test_nginx_own_braces_and_variables_are_left_alone() -> None:
    text = "location / { proxy_set_header Host $host; }"
    assert render(text, {}) == text


@pytest.mark.parametrize(
    ("template", "values"),
    [
        (
            "backends.conf",
            {
                "BACKEND_A_PORT": 1,
                "BACKEND_B_PORT": 2,
                "JWKS_PORT": 3,
                "JWKS_JSON": BenchKey.generate().jwks_json(),
            },
        ),
        ("proxy.conf", {"BACKEND_A_PORT": 1, "BACKEND_B_PORT": 2, "PROXY_PORT": 3}),
        ("websocket.conf", {"BACKEND_PORT": 1, "PROXY_PORT": 3}),
        # nginx -t loads the certificate and key: the run's own, made here
        ("proxy-tls.conf", {"BACKEND_A_PORT": 1, "BACKEND_B_PORT": 2, "PROXY_PORT": 3}),
    ],
)
def test_nginx_accepts_the_rendered_config(
    template: str, values: dict[str, object], tmp_path: Path
) -> None:
    if template == "proxy-tls.conf":
        files = make_certificates(tmp_path / "tls")
        values = {**values, "TLS_CERT": files.cert, "TLS_KEY": files.key}
    config = tmp_path / "nginx.conf"
    config.write_text(render((CONFIGS / template).read_text(), {**values, "PREFIX": tmp_path}))
    done = subprocess.run(
        [nginx_binary(), "-t", "-q", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
