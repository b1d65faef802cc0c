"""Bringing deploy/compose/docker-compose.yml up for real, with podman, and down again.

No container registry is reachable where the suite runs, so the base and
infrastructure images are built locally first (deploy/local-images/build.sh,
cached), the service images are built from the one Dockerfile with podman
(layer-cached, ``--build-arg SERVICE=...``), and docker-compose 1.29 talks to a private
``podman system service`` socket as if it were Docker. Without systemd podman
never runs health checks by itself, so :class:`HealthDriver` runs
``podman healthcheck run`` for every container of the project in a loop; the
compose file's ``service_healthy`` conditions then advance.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
LOG_DIR = REPO / "tests" / "artifacts" / "logs"
SERVICES = ("gateway", "auth", "accounts-ui", "fake-backend")
IMAGE_PREFIX = "localhost/gatehouse"
IMAGE_TAG = "compose-test"
# One fixed name, so a run that died half-way is cleaned up by the next one.
PROJECT = "gatehouse-compose-test"
UP_TIMEOUT = 420.0
BUILD_TIMEOUT = 900.0


class ComposeError(RuntimeError):
    """A step of bringing the stack up or down failed; the message has its output."""


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded), raising with its output when it fails."""
    result = subprocess.run(
        list(command),
        cwd=REPO,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise ComposeError(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def service_container(service: str, project: str = PROJECT) -> str:
    """The id of the one running container of a compose ``service``."""
    command = ["podman", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
               "--filter", f"label=com.docker.compose.service={service}"]  # fmt: skip
    (container,) = run(command, timeout=30).stdout.split()
    return container


def project_containers(project: str = PROJECT, *, running_only: bool = True) -> list[str]:
    """Ids of the containers compose made for ``project``."""
    command = ["podman", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"]
    if not running_only:
        command.insert(2, "-a")
    return run(command, timeout=30).stdout.split()


class HealthDriver:
    """Runs the containers' health checks in a thread: those not yet healthy about
    once a second, healthy ones every ``healthy_interval`` seconds. Each check
    starts a process in the container, so checking everything every second
    would take both cores of a small machine away from the services."""

    def __init__(self, project: str = PROJECT, healthy_interval: float = 15.0) -> None:
        self._project = project
        self._healthy_interval = healthy_interval
        self._last_checked: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="health-driver", daemon=True)

    def _due(self) -> list[str]:
        listing = run(
            [
                "podman",
                "ps",
                "--filter",
                f"label=com.docker.compose.project={self._project}",
                "--format",
                "{{.ID}} {{.Status}}",
            ],
            timeout=30,
        ).stdout
        now = time.monotonic()
        due = []
        for line in listing.splitlines():
            container, _, status = line.partition(" ")
            if "(" not in status:
                continue  # no health check
            healthy = "(healthy)" in status
            last = self._last_checked.get(container, 0.0)
            if not healthy or now - last >= self._healthy_interval:
                due.append(container)
                self._last_checked[container] = now
        return due

    def _check(self, container: str) -> None:
        subprocess.run(
            ["podman", "healthcheck", "run", container],
            capture_output=True,
            timeout=20,
            check=False,
        )

    def _loop(self) -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            while not self._stop.is_set():
                try:
                    due = self._due()
                except (ComposeError, subprocess.TimeoutExpired):
                    due = []
                list(pool.map(self._check, due))
                self._stop.wait(1.0)

    def __enter__(self) -> HealthDriver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@contextmanager
def podman_socket() -> Iterator[str]:
    """A ``podman system service`` of our own, as a Docker API socket (DOCKER_HOST)."""
    folder = Path(tempfile.mkdtemp(prefix="gatehouse-podman-"))
    socket = folder / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                raise ComposeError("podman system service did not open its socket")
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)


PACKAGES = (*SERVICES, "common")


def source_digest(package: str) -> str:
    """sha256 over a package's .py files in the working tree (sorted by path)."""
    module = f"gatehouse_{package.replace('-', '_')}"
    folder = REPO / ("libs" if package == "common" else "services") / package / "src" / module
    data = b"".join(path.read_bytes() for path in sorted(folder.rglob("*.py")))
    return hashlib.sha256(data).hexdigest()


def _build_service_image(service: str) -> None:
    run(
        [
            "podman",
            "build",
            "--quiet",
            "--format",
            "docker",
            "--build-arg",
            f"SERVICE={service}",
            "-t",
            f"{IMAGE_PREFIX}/{service}:{IMAGE_TAG}",
            ".",
        ],
        timeout=BUILD_TIMEOUT,
    )


def build_images() -> None:
    """The local base and infrastructure images (cached), then the four service images
    (the repository's one Dockerfile, once per ``SERVICE``).

    The four builds run side by side: on a warm layer cache each is mostly
    podman waiting on its own lookups (~30% less time than one after another).
    """
    run([str(REPO / "deploy" / "local-images" / "build.sh")], timeout=BUILD_TIMEOUT)
    with ThreadPoolExecutor(len(SERVICES)) as pool:
        list(pool.map(_build_service_image, SERVICES))


@dataclass(frozen=True)
class Stack:
    """The running stack: where to reach it and what it was started with."""

    base_url: str
    prometheus_url: str
    # Each gateway replica's admin listener, published on 127.0.0.1.
    admin_urls: Mapping[str, str]
    secrets_dir: Path
    env: Mapping[str, str]
    # The sources as they were when the images were built (others may edit on).
    built_from: Mapping[str, str]

    def compose(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        command = ["docker-compose", "-f", str(COMPOSE_FILE), "-p", PROJECT, *args]
        return run(command, env=self.env, timeout=timeout)

    @property
    def admin_password(self) -> str:
        return (self.secrets_dir / "admin_password").read_text().strip()


def _save_logs(stack: Stack, reason: str) -> Path:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    path = LOG_DIR / f"compose-{int(time.time())}.log"
    logs = run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "-p", PROJECT, "logs", "--no-color"],
        env=stack.env,
        timeout=120,
        check=False,
    )
    path.write_text(f"{reason}\n\n{logs.stdout}\n{logs.stderr}")
    return path


def _down(stack: Stack) -> None:
    stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180)


def _wait_for_backends(stack: Stack, timeout: float = 90.0) -> None:
    """Until both gateway replicas see every backend available (their active
    checks start with the replica; a container DNS hiccup at start delays them).
    Each replica's state comes from its own admin listener."""
    deadline = time.monotonic() + timeout
    seen: dict[str, list[tuple[str, bool]]] = {}
    while time.monotonic() < deadline:
        try:
            states = {
                replica: httpx.get(f"{url}/-/config", timeout=5).json()
                for replica, url in stack.admin_urls.items()
            }
        except (httpx.HTTPError, ValueError):
            states = {}
        seen = {
            replica: [
                (backend["name"], backend["available"])
                for route in state["routes"]
                for backend in route["backends"]
            ]
            for replica, state in states.items()
        }
        if len(seen) == 2 and all(ok for backends in seen.values() for _, ok in backends):
            return
        time.sleep(0.5)
    saved = _save_logs(stack, f"backends not available: {seen}")
    raise ComposeError(f"the gateways never saw every backend available (logs: {saved}): {seen}")


@contextmanager
def compose_stack(
    http_port: int, prometheus_port: int, admin_ports: tuple[int, int]
) -> Iterator[Stack]:
    """Build, bring the stack up (health-gated), yield it, and bring it down."""
    built_from = {package: source_digest(package) for package in PACKAGES}
    build_images()
    secrets = Path(tempfile.mkdtemp(prefix="gatehouse-secrets-"))
    run([str(COMPOSE_DIR / "make-secrets.sh"), str(secrets)], timeout=60)
    with podman_socket() as docker_host:
        env = {
            **os.environ,
            "DOCKER_HOST": docker_host,
            "COMPOSE_PROJECT_NAME": PROJECT,
            "GATEHOUSE_SECRETS_DIR": str(secrets),
            "GATEHOUSE_IMAGE_PREFIX": IMAGE_PREFIX,
            "GATEHOUSE_IMAGE_TAG": IMAGE_TAG,
            "GATEHOUSE_HTTP_PORT": str(http_port),
            "GATEHOUSE_PROMETHEUS_PORT": str(prometheus_port),
            "GATEHOUSE_GATEWAY_1_ADMIN_PORT": str(admin_ports[0]),
            "GATEHOUSE_GATEWAY_2_ADMIN_PORT": str(admin_ports[1]),
        }
        stack = Stack(
            base_url=f"http://127.0.0.1:{http_port}",
            prometheus_url=f"http://127.0.0.1:{prometheus_port}",
            admin_urls={
                "gateway-1": f"http://127.0.0.1:{admin_ports[0]}",
                "gateway-2": f"http://127.0.0.1:{admin_ports[1]}",
            },
            secrets_dir=secrets,
            env=env,
            built_from=built_from,
        )
        try:
            with HealthDriver():
                _down(stack)  # whatever a crashed earlier run left
                try:
                    stack.compose("up", "-d", "--no-build", timeout=UP_TIMEOUT)
                except (ComposeError, subprocess.TimeoutExpired) as exc:
                    saved = _save_logs(stack, str(exc))
                    raise ComposeError(f"compose up failed (logs: {saved}): {exc}") from exc
                _wait_for_backends(stack)
                try:
                    yield stack
                finally:
                    _save_logs(stack, "after the tests")
        finally:
            try:
                _down(stack)
            finally:
                shutil.rmtree(secrets, ignore_errors=True)
        left = project_containers(running_only=False)
        if left:
            raise ComposeError(f"containers left behind by compose down: {left}")
