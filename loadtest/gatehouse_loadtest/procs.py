"""Processes the benchmark starts, and what it reads about them from /proc.

Everything the harness starts runs in its own session (process group) so that
stopping it also stops its children (uvicorn workers, nginx workers), whatever
state the run ended in. CPU time and RSS come from psutil, which reads /proc.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import psutil

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_open_files_limit(wanted: int = 65536) -> int:
    """Raise this process's (and so its children's) open-file limit as far as allowed.

    1,000 client connections plus as many upstream ones do not fit the usual
    soft limit of 1,024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ManagedProcess:
    """A process group the harness started; its log goes to ``log_path``."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    def wait_http(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
        ca_file: Path | None = None,
    ) -> None:
        """Wait until ``url`` answers below 500, or fail with the log's tail.

        ``ca_file``: an https URL's certificate is verified against it.
        """
        deadline = time.monotonic() + timeout_s
        last = "never answered"
        verify = tls_verify(ca_file)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(url, timeout=1.0, headers=dict(headers or {}), verify=verify)
                if response.status_code < 500:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready at {url}: {last}\n{self.log_tail()}")

    def start_ready(
        self, url: str, *, timeout_s: float = 60.0, headers: Mapping[str, str] | None = None
    ) -> ManagedProcess:
        """Start, then wait until ``url`` answers; a process that never does is stopped."""
        self.start()
        try:
            self.wait_http(url, timeout_s=timeout_s, headers=headers)
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the group, wait, then SIGKILL whatever is left."""
        if self.process is None:
            return
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        _signal_group(self.process.pid, signal.SIGKILL)


def tls_verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a target: its own CA file, else the system's."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else True


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (uvicorn's or nginx's workers)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time used so far by these processes and their descendants."""
    total = 0.0
    for pid in pids:
        for proc in process_tree(pid):
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def uss_bytes(pid: int) -> int:
    """Private memory (USS) of the largest process in the tree: RSS less shared pages.

    Shared library pages count in every worker's RSS but exist once; USS is
    what one more worker really costs. Reading it walks /proc/<pid>/smaps, so
    it is read once at the end, not sampled.
    """
    sizes = []
    for proc in process_tree(pid):
        try:
            sizes.append(int(proc.memory_full_info().uss))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return max(sizes, default=0)


def rss_bytes(pid: int, *, workers_only: bool = False) -> list[int]:
    """Resident set size of each process in the tree (or of the children only)."""
    tree = process_tree(pid)
    if workers_only and len(tree) > 1:
        tree = tree[1:]
    sizes = []
    for proc in tree:
        try:
            sizes.append(int(proc.memory_info().rss))
        except psutil.NoSuchProcess:
            continue
    return sizes
