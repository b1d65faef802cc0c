"""The gateway's memory: RSS under 1,000 connections, and while 100 MB streams each way.

A proxy that buffers bodies grows by the body's size; one that streams grows
by a few chunks. Each figure is the gateway's resident set size read from
/proc while the load runs (sampled every 50 ms, peak kept), against the RSS
just before.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from gatehouse_loadtest.procs import rss_bytes, uss_bytes
from gatehouse_loadtest.wrk import WrkResult, run_wrk

MIB = 1 << 20
STREAM_BYTES = 100 * MIB
_CHUNK = bytes(range(256)) * 256  # 64 KiB


class RssSampler:
    """Samples the largest per-process RSS of a process tree in a thread, keeping the peak."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        return max(rss_bytes(self.pid), default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


@dataclass(frozen=True)
class StreamFigure:
    direction: str
    size: int
    seconds: float
    rss_before: int
    rss_peak: int

    @property
    def growth(self) -> int:
        return max(0, self.rss_peak - self.rss_before)


@dataclass(frozen=True)
class ConnectionsFigure:
    connections: int
    seconds: float
    rss_before: int
    rss_peak: int
    rss_after: int
    uss_after: int
    result: WrkResult
    setting: str = "plain"
    pinned: bool = False  # the gateway on a CPU of its own, wrk on the others


def _upload_body(size: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        chunk = _CHUNK if remaining >= len(_CHUNK) else _CHUNK[:remaining]
        remaining -= len(chunk)
        yield chunk


def stream_download(pid: int, url: str, host: str, size: int = STREAM_BYTES) -> StreamFigure:
    """GET ``size`` bytes from the fake backend through the gateway, counting them."""
    received = 0
    started = time.monotonic()
    with RssSampler(pid) as sampler:
        before = sampler.peak
        with httpx.stream(
            "GET", f"{url}/__backend/bytes/{size}", headers={"host": host}, timeout=120.0
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_raw(64 * 1024):
                received += len(chunk)
    if received != size:
        raise RuntimeError(f"download through the gateway gave {received} bytes, not {size}")
    return StreamFigure("download", size, time.monotonic() - started, before, sampler.peak)


def stream_upload(pid: int, url: str, host: str, size: int = STREAM_BYTES) -> StreamFigure:
    """POST ``size`` bytes through the gateway to the fake backend's echo, which counts them."""
    started = time.monotonic()
    with RssSampler(pid) as sampler:
        before = sampler.peak
        response = httpx.post(
            f"{url}/upload",
            headers={"host": host, "content-type": "application/octet-stream"},
            content=_upload_body(size),
            timeout=120.0,
        )
    response.raise_for_status()
    seen = response.json()["body"]["size"]
    if seen != size:
        raise RuntimeError(f"the backend saw {seen} bytes of a {size}-byte upload")
    return StreamFigure("upload", size, time.monotonic() - started, before, sampler.peak)


def many_connections(
    pid: int,
    url: str,
    headers: dict[str, str],
    *,
    connections: int = 1000,
    duration_s: float = 60.0,
) -> ConnectionsFigure:
    """wrk with ``connections`` open connections for ``duration_s``; RSS peak and after.

    With two CPUs or more the gateway gets one of its own and wrk the others.
    Unpinned on two cores, a thousand connections made wrk report a few hundred
    requests over 5 s (of ~900,000) while the gateway's own histogram had none
    over 250 ms; pinned, wrk's p99 fell from seconds to ~100 ms at the same
    req/s, so those were the scheduler's, not the gateway's (loadtest/README.md).
    """
    pinned = _pin_apart(pid)
    started = time.monotonic()
    try:
        with RssSampler(pid, interval_s=0.5) as sampler:
            before = sampler.peak
            result, _ = run_wrk(
                url,
                threads=2,
                connections=connections,
                duration_s=duration_s,
                headers=headers,
                cpus=pinned[1] if pinned else None,
            )
            after = sampler.current()
            uss = uss_bytes(pid)
    finally:
        if pinned:
            _set_affinity(pid, pinned[2])
    return ConnectionsFigure(
        connections,
        time.monotonic() - started,
        before,
        sampler.peak,
        after,
        uss,
        result,
        pinned=pinned is not None,
    )


def _pin_apart(pid: int) -> tuple[set[int], set[int], set[int]] | None:
    """Pin ``pid`` to one CPU: (its CPU, the others for the load, what it had before)."""
    available = os.sched_getaffinity(pid)
    if len(available) < 2:
        return None
    own = {min(available)}
    _set_affinity(pid, own)
    return own, available - own, available


def _set_affinity(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` (sched_setaffinity on a pid moves only its main thread)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task), cpus)
