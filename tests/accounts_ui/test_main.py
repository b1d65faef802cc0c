"""``gatehouse-accounts-ui``: flags, clean refusals, and one CSRF secret for all workers."""

from __future__ import annotations

import subprocess
import sys

import httpx
import psutil
from accounts_ui.stack import ADMIN_EMAIL, Stack, sign_in
from support.processes import ServiceProcess, free_port, python_module

SECRET_ENV = b"GATEHOUSE_ACCOUNTS_UI_CSRF_SECRET="


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gatehouse_accounts_ui", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_cli_help_names_the_flags() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for flag in ("--host", "--port", "--workers", "--auth-url"):
        assert flag in result.stdout


def test_cli_refuses_production_without_a_secret_cleanly() -> None:
    env = {"PATH": "/usr/bin:/bin", "GATEHOUSE_ACCOUNTS_UI_ENVIRONMENT": "production"}
    result = _cli("--port", "0", env=env)
    assert result.returncode == 1
    assert "invalid settings" in result.stderr
    assert "CSRF_SECRET must be set in production" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_refuses_a_bad_auth_url_flag() -> None:
    result = _cli("--auth-url", "not-a-url", "--port", "0")
    assert result.returncode == 1
    assert "auth_url must be an http:// or https:// URL" in result.stderr


def _secrets_of_children(pid: int) -> list[bytes]:
    """The CSRF secret each child process was started with (from /proc/<pid>/environ)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with open(f"/proc/{child.pid}/environ", "rb") as environ:
            found += [v for v in environ.read().split(b"\0") if v.startswith(SECRET_ENV)]
    return found


def test_workers_share_the_development_secret(stack: Stack) -> None:
    """A form rendered by one worker must be accepted by another."""
    port = free_port()
    command = python_module(
        "gatehouse_accounts_ui", "--port", str(port), "--workers", "2", "--auth-url", stack.auth.url
    )
    with ServiceProcess(name="accounts-ui-2-workers", command=command, port=port) as ui:
        secrets = _secrets_of_children(ui.pid)
        assert len(secrets) >= 2, secrets  # both workers got one...
        assert len(set(secrets)) == 1  # ...and it is the same
        for _ in range(6):  # new connections, spread over the workers by the kernel
            with httpx.Client(base_url=ui.url) as client:
                response = sign_in(client, ADMIN_EMAIL, "wrong-password")
            assert response.status_code == 401  # refused by auth, not by a CSRF mismatch
