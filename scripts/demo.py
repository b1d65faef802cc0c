"""`make demo`: every Gatehouse service as a local process, in the foreground.

Ports and routes are the fixed ones the README lists. Embedded defaults: an SQLite
accounts database and the JWT keys under .data/, an in-process round-robin
cursor; DATABASE_URL and REDIS_URL in the environment switch to PostgreSQL and
Redis. Ctrl-C (or SIGTERM) stops every child and waits for it; if one child
dies, the others are stopped too, so nothing is left running.

The gateway's admin listener (health, metrics, config, admin API, dashboard)
is bound to 127.0.0.1:9901 whatever the environment says: only this machine
reaches it. The fake backends serve their fault endpoints (--faults), which is
what the demo shows. The generated admin password is kept in
.data/admin-password (mode 0600) and printed once, when it is made; later
starts name the file instead, so the password does not pile up in logs.

The gateway also answers on https://localhost:8443 (TLS, HTTP/2 by ALPN) and
takes HTTP/2 with prior knowledge on 8080. Its certificate, for localhost,
127.0.0.1 and the demo's host names, is signed by a local CA made under
.data/tls on the first start and kept afterwards (so a trust given once
lasts); the walkthrough prints how to trust it.

Logs are for people here: each service writes one readable line per event
(time, service, level, message, request id), coloured when the terminal is
one, and leaves out the access lines of answered health checks (the gateway
checks every backend every few seconds). ``--json-logs`` (or
GATEHOUSE_DEMO_JSON_LOGS=1) keeps the JSON lines the services write by
default, as in their containers.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gatehouse_common.devcerts import LocalTls, ensure_local_tls

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data"
GATEWAY_CONFIG = ROOT / "services" / "gateway" / "config" / "demo.yaml"
# The local CA and the certificate of https://localhost:8443, made on first start.
TLS_DIR = DATA / "tls"
TLS_PORT = 8443
TLS_NAMES = (
    "localhost",
    "127.0.0.1",
    "::1",
    "service1.my-company.com",
    "service2.my-company.com",
)
ADMIN_HOST = "127.0.0.1"
ADMIN_PORT = 9901
ADMIN_URL = f"http://{ADMIN_HOST}:{ADMIN_PORT}"
PASSWORD_FILE = "admin-password"
# Each service's settings prefix (gatehouse_common.settings.ServiceSettings).
SETTINGS_PREFIXES = {
    "gatehouse_fake_backend": "GATEHOUSE_FAKE_BACKEND_",
    "gatehouse_auth": "GATEHOUSE_AUTH_",
    "gatehouse_accounts_ui": "GATEHOUSE_ACCOUNTS_UI_",
    "gatehouse_gateway": "GATEHOUSE_GATEWAY_",
}
JSON_LOGS_VARIABLE = "GATEHOUSE_DEMO_JSON_LOGS"


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    args: tuple[str, ...]
    health_url: str
    # Set for this service's process only, over the demo's environment.
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        """Whether this service's package has been built yet (it runs what exists)."""
        return importlib.util.find_spec(f"{self.module}.__main__") is not None


SERVICES = [
    Service(
        "fake-backends",
        "gatehouse_fake_backend",
        # 9005 is service1's canary group (services/gateway/config/demo.yaml)
        ("--ports", "9001-9005", "--faults"),
        "http://127.0.0.1:9005/healthz",
    ),
    Service("auth", "gatehouse_auth", ("serve", "--port", "8001"), "http://127.0.0.1:8001/healthz"),
    Service(
        "accounts-ui", "gatehouse_accounts_ui", ("--port", "8002"), "http://127.0.0.1:8002/healthz"
    ),
    Service(
        "gateway",
        "gatehouse_gateway",
        (
            "--config",
            str(GATEWAY_CONFIG),
            "--port",
            "8080",
            "--tls-port",
            str(TLS_PORT),
            "--tls-cert",
            str(TLS_DIR / "server.pem"),
            "--tls-key",
            str(TLS_DIR / "server-key.pem"),
        ),
        f"{ADMIN_URL}/-/healthz",
        env={
            "GATEHOUSE_GATEWAY_ADMIN_HOST": ADMIN_HOST,
            "GATEHOUSE_GATEWAY_ADMIN_PORT": str(ADMIN_PORT),
        },
    ),
]

PasswordSource = Literal["environment", "generated", "stored"]


def admin_password(data: Path | None = None) -> tuple[str, PasswordSource]:
    """The admin password and where it came from: GATEHOUSE_ADMIN_PASSWORD, or
    made once into ``data``/admin-password (mode 0600 from its first byte), or
    read back from there (its mode put back to 0600 if someone widened it)."""
    if password := os.environ.get("GATEHOUSE_ADMIN_PASSWORD"):
        return password, "environment"
    stored = (data or DATA) / PASSWORD_FILE
    try:
        descriptor = os.open(stored, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(stored.stat().st_mode) != 0o600:
            stored.chmod(0o600)
        return stored.read_text().strip(), "stored"
    password = secrets.token_urlsafe(12)
    with os.fdopen(descriptor, "w") as file:
        file.write(password + "\n")
    return password, "generated"


def password_line(password: str, source: PasswordSource, data: Path | None = None) -> str:
    """What the walkthrough says about the admin password: the password itself
    only the one time it was generated, otherwise where it is."""
    stored = (data or DATA) / PASSWORD_FILE
    if source == "generated":
        return f"{password}   (generated now, kept in {stored}, mode 0600; shown only this once)"
    if source == "stored":
        return f"the password in {stored}"
    return "the password in GATEHOUSE_ADMIN_PASSWORD"


def log_environment(json_logs: bool) -> dict[str, str]:
    """Every service's log settings for the demo: the readable lines unless
    ``json_logs``, and never the access lines of answered health checks."""
    env: dict[str, str] = {}
    for prefix in SETTINGS_PREFIXES.values():
        env[f"{prefix}LOG_JSON"] = "true" if json_logs else "false"
        env[f"{prefix}LOG_HEALTH_CHECKS"] = "false"
    return env


def json_logs_wanted(argv: list[str] | None = None) -> bool:
    """``--json-logs`` on the command line, or GATEHOUSE_DEMO_JSON_LOGS set to a true value."""
    parser = argparse.ArgumentParser(description="Run every Gatehouse service locally.")
    parser.add_argument(
        "--json-logs",
        action="store_true",
        help=f"JSON log lines, as in the containers (also {JSON_LOGS_VARIABLE}=1)",
    )
    args = parser.parse_args(argv)
    from_env = os.environ.get(JSON_LOGS_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}
    return bool(args.json_logs) or from_env


def demo_environment(password: str, *, json_logs: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(log_environment(json_logs))
    env.setdefault("GATEHOUSE_ADMIN_EMAIL", "admin@example.com")
    env["GATEHOUSE_ADMIN_PASSWORD"] = password
    env.setdefault("DATABASE_URL", f"sqlite:///{DATA / 'accounts.db'}")
    env.setdefault("GATEHOUSE_AUTH_KEYS_DIR", str(DATA / "keys"))
    env.setdefault("GATEHOUSE_CONFIG", str(GATEWAY_CONFIG))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 500:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def stop_all(children: list[tuple[Service, subprocess.Popen[bytes]]]) -> None:
    for _, child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 25
    for service, child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"demo: {service.name} did not stop in time, killing it", file=sys.stderr)
            child.kill()
            child.wait()


def local_tls() -> LocalTls:
    """The demo's CA and certificate under .data/tls, made once (cryptography)."""
    return ensure_local_tls(TLS_DIR, TLS_NAMES)


def trust_lines(ca_file: Path) -> str:
    """How to make clients trust the demo's local CA."""
    return f"""TLS: https://localhost:{TLS_PORT} (HTTP/2 by ALPN) is signed by the demo's own CA:
  curl --cacert {ca_file} https://localhost:{TLS_PORT}/accounts_page
  curl --cacert {ca_file} --resolve service1.my-company.com:{TLS_PORT}:127.0.0.1 \\
       -H "Authorization: Bearer $TOKEN" https://service1.my-company.com:{TLS_PORT}/hello
  trust it system-wide (Debian/Ubuntu), and remove it again the same way:
    sudo cp {ca_file} /usr/local/share/ca-certificates/gatehouse-demo.crt
    sudo update-ca-certificates
  macOS: sudo security add-trusted-cert -d -r trustRoot \\
    -k /Library/Keychains/System.keychain {ca_file}
  Firefox keeps its own list: Settings > Certificates > Import {ca_file}"""


def walkthrough(env: Mapping[str, str], running: list[str], password: str) -> str:
    """The text printed once everything is up; ``password`` is :func:`password_line`'s."""
    email = env["GATEHOUSE_ADMIN_EMAIL"]
    return f"""
Gatehouse demo is up: {", ".join(running)}
  gateway     http://localhost:8080      (metrics: http://localhost:8080/metrics;
              HTTP/1.1, and HTTP/2 with prior knowledge: curl --http2-prior-knowledge)
              https://localhost:{TLS_PORT}     (TLS, HTTP/2 by ALPN; see TLS below)
  admin       {ADMIN_URL}      (the gateway's own endpoints, this machine only:
              {ADMIN_URL}/-/dashboard, /-/config, /-/metrics, /-/readyz)
  auth        http://localhost:8001/docs
  accounts-ui http://localhost:8080/accounts_page
  admin user  {email} with {password}
  backends    http://localhost:9001 .. 9005   (faults: PUT /__backend/faults;
              9005 is service1's canary: x-canary: 1, and 10% of the rest)

Try, through the gateway:
  curl localhost:9001/anything
  curl -X POST localhost:8080/account -H 'content-type: application/json' \\
       -d '{{"username":"alice","email":"alice@example.com","password":"correct-horse"}}'
  TOKEN=$(curl -s -X POST localhost:8080/login -H 'content-type: application/json' \\
       -d '{{"email":"alice@example.com","password":"correct-horse"}}' \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -H 'Host: service1.my-company.com' -H "Authorization: Bearer $TOKEN" localhost:8080/hello
  curl -H 'Host: service2.my-company.com' -H "Authorization: Bearer $TOKEN" localhost:8080/hello
  curl -si -H 'Host: service1.my-company.com' -H "Authorization: Bearer $TOKEN" \\
       -H 'x-canary: 1' localhost:8080/hello | grep -i x-backend-instance   # backend-9005
  .venv/bin/python scripts/ws_client.py ws://localhost:8080/ws \\
       --host service1.my-company.com --token "$TOKEN" hello "close 4000 bye"
  open http://localhost:8080/accounts_page
Sessions: login also answers a refresh_token; trade it for a new pair, then log out:
  REFRESH=$(curl -s -X POST localhost:8080/login -H 'content-type: application/json' \\
       -d '{{"email":"alice@example.com","password":"correct-horse"}}' \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  curl -X POST localhost:8080/token/refresh -H 'content-type: application/json' \\
       -d "{{\\"refresh_token\\":\\"$REFRESH\\"}}"
  curl -X POST localhost:8080/token/refresh -H 'content-type: application/json' \\
       -d "{{\\"refresh_token\\":\\"$REFRESH\\"}}"    # used twice: 401, the session is ended
  curl -i -X POST localhost:8080/logout -H "Authorization: Bearer $TOKEN"    # 204
  curl localhost:8080/.well-known/openid-configuration
{trust_lines(TLS_DIR / "ca.pem")}
Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> int:
    json_logs = json_logs_wanted(argv)
    DATA.mkdir(mode=0o700, exist_ok=True)
    password, source = admin_password()
    tls = local_tls()
    if tls.created:
        print(f"demo: made a local CA and a certificate for {', '.join(TLS_NAMES)} in {TLS_DIR}")
    env = demo_environment(password, json_logs=json_logs)
    services = [s for s in SERVICES if s.available]
    missing = [s.name for s in SERVICES if not s.available]
    if missing:
        print(f"demo: not built yet, skipped: {', '.join(missing)}", file=sys.stderr)
    if any(s.module == "gatehouse_auth" for s in services):
        subprocess.run([sys.executable, "-m", "gatehouse_auth", "migrate"], env=env, check=True)

    children: list[tuple[Service, subprocess.Popen[bytes]]] = []
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for service in services:
            command = [sys.executable, "-m", service.module, *service.args]
            child = subprocess.Popen(command, env={**env, **service.env}, cwd=ROOT)
            children.append((service, child))
            if not wait_healthy(service.health_url, child):
                print(f"demo: {service.name} did not become healthy", file=sys.stderr)
                return 1
        running = [s.name for s in services]
        print(walkthrough(env, running, password_line(password, source)), flush=True)
        while not stopping:
            for service, child in children:
                if child.poll() is not None:
                    print(f"demo: {service.name} exited ({child.returncode})", file=sys.stderr)
                    return 1
            time.sleep(0.3)
        return 0
    finally:
        stop_all(children)
        print("demo: every process stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
