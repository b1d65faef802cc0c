"""100 MB through the gateway each way, with its memory watched while it streams."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import psutil
import pytest
from support.gateway import GatewayProcess, Launcher, gateway_route
from support.processes import ServiceProcess

from gatehouse_fake_backend.app import pattern_bytes

SIZE = 100 * 1024 * 1024
CHUNK = 1024 * 1024
# The target is 20 MB of growth (checked by make bench); the test
# allows more so a busy CI machine does not fail it, yet any whole-body
# buffering (100 MB) fails it.
MAX_GROWTH = 40 * 1024 * 1024


class PeakRSS:
    """Samples a process's resident memory in a thread and keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def growth(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak - self.baseline


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, backend_pool: list[ServiceProcess]) -> GatewayProcess:
    backend = backend_pool[0]
    gateway = module_launcher.gateway({"routes": [gateway_route([backend])]})
    with gateway.client() as client:  # warm up: pools, imports, first allocations
        for _ in range(20):
            client.post("/warm", content=b"w" * 200_000).raise_for_status()
            client.get("/__backend/bytes/2000000").raise_for_status()
    return gateway


def _upload() -> Iterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    for _ in range(SIZE // CHUNK):
        yield block


@pytest.mark.slow
def test_100mb_upload_streams_with_flat_memory(gateway: GatewayProcess) -> None:
    expected = hashlib.sha256()
    for block in _upload():
        expected.update(block)
    rss = PeakRSS(gateway.pid)
    with gateway.client(timeout=120) as client:
        response = client.post("/upload", content=_upload())
    growth = rss.growth()
    assert response.status_code == 200, response.text
    assert response.json()["body"] == {"size": SIZE, "sha256": expected.hexdigest()}
    assert growth < MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MB"


@pytest.mark.slow
def test_100mb_download_streams_with_flat_memory(gateway: GatewayProcess) -> None:
    expected = hashlib.sha256()
    unit = pattern_bytes(CHUNK)
    for _ in range(SIZE // CHUNK):
        expected.update(unit)
    rss = PeakRSS(gateway.pid)
    digest = hashlib.sha256()
    size = 0
    with (
        gateway.client(timeout=120) as client,
        client.stream("GET", f"/__backend/bytes/{SIZE}") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-length"] == str(SIZE)
        for chunk in response.iter_raw():
            size += len(chunk)
            digest.update(chunk)
    growth = rss.growth()
    assert size == SIZE and digest.hexdigest() == expected.hexdigest()
    assert growth < MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MB"
