"""`make demo`: every Gatehouse service as a local process, in the foreground.

Ports and routes are the fixed ones the README lists. Embedded defaults: an SQLite
accounts database and the JWT keys under .data/, an in-process round-robin
cursor; DATABASE_URL and REDIS_URL in the environment switch to PostgreSQL and
Redis. Ctrl-C (or SIGTERM) stops every child and waits for it; if one child
dies, the others are stopped too, so nothing is left running.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data"
GATEWAY_CONFIG = ROOT / "services" / "gateway" / "config" / "demo.yaml"


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    args: tuple[str, ...]
    health_url: str

    @property
    def available(self) -> bool:
        """Whether this service's package has been built yet (it runs what exists)."""
        return importlib.util.find_spec(f"{self.module}.__main__") is not None


SERVICES = [
    Service(
        "fake-backends",
        "gatehouse_fake_backend",
        ("--ports", "9001-9004"),
        "http://127.0.0.1:9004/healthz",
    ),
    Service("auth", "gatehouse_auth", ("serve", "--port", "8001"), "http://127.0.0.1:8001/healthz"),
    Service(
        "accounts-ui", "gatehouse_accounts_ui", ("--port", "8002"), "http://127.0.0.1:8002/healthz"
    ),
    Service(
        "gateway",
        "gatehouse_gateway",
        ("--config", str(GATEWAY_CONFIG), "--port", "8080"),
        "http://127.0.0.1:8080/-/healthz",
    ),
]


def admin_password() -> str:
    """The admin password: from the environment, or made once and kept in .data/."""
    if password := os.environ.get("GATEHOUSE_ADMIN_PASSWORD"):
        return password
    stored = DATA / "admin-password"
    if not stored.exists():
        stored.write_text(secrets.token_urlsafe(12) + "\n")
        stored.chmod(0o600)
    return stored.read_text().strip()


def demo_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GATEHOUSE_ADMIN_EMAIL", "admin@example.com")
    env["GATEHOUSE_ADMIN_PASSWORD"] = admin_password()
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


def print_walkthrough(env: dict[str, str], running: list[str]) -> None:
    email, password = env["GATEHOUSE_ADMIN_EMAIL"], env["GATEHOUSE_ADMIN_PASSWORD"]
    print(
        f"""
Gatehouse demo is up: {", ".join(running)}
  gateway     http://localhost:8080      (metrics: http://localhost:8080/metrics)
  auth        http://localhost:8001/docs
  accounts-ui http://localhost:8080/accounts_page   admin: {email} / {password}
  dashboard   http://localhost:8080/-/dashboard      (the gateway's operator view, same admin)
  backends    http://localhost:9001 .. 9004

Try, through the gateway:
  curl localhost:9001/anything
  curl -X POST localhost:8080/account -H 'content-type: application/json' \\
       -d '{{"username":"alice","email":"alice@example.com","password":"correct-horse"}}'
  TOKEN=$(curl -s -X POST localhost:8080/login -H 'content-type: application/json' \\
       -d '{{"email":"alice@example.com","password":"correct-horse"}}' \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -H 'Host: service1.my-company.com' -H "Authorization: Bearer $TOKEN" localhost:8080/hello
  curl -H 'Host: service2.my-company.com' -H "Authorization: Bearer $TOKEN" localhost:8080/hello
  open http://localhost:8080/accounts_page
Ctrl-C stops everything.
""",
        flush=True,
    )


def main() -> int:
    DATA.mkdir(exist_ok=True)
    env = demo_environment()
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
            child = subprocess.Popen(command, env=env, cwd=ROOT)
            children.append((service, child))
            if not wait_healthy(service.health_url, child):
                print(f"demo: {service.name} did not become healthy", file=sys.stderr)
                return 1
        print_walkthrough(env, [s.name for s in services])
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
