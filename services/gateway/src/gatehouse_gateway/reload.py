"""Reloading the config on SIGHUP and when the file changes.

The file's directory is watched rather than the file, because editors and
Kubernetes ConfigMaps replace a file (rename, symlink swap) instead of
writing into it. Either trigger calls :meth:`Gateway.reload`, which keeps the
running config when the new one is bad.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from watchfiles import Change, awatch

from gatehouse_gateway.runtime import Gateway

logger = logging.getLogger(__name__)


class ConfigReloader:
    def __init__(self, gateway: Gateway, *, watch: bool) -> None:
        self.gateway = gateway
        self.watch = watch
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._signal_installed = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._signal_installed = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            logger.warning("SIGHUP reload is not available in this process")
        if self.watch:
            self._watcher = loop.create_task(self._watch_file())

    async def stop(self) -> None:
        if self._signal_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    def _on_sighup(self) -> None:
        self._spawn("SIGHUP")

    def _spawn(self, reason: str) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(
            self.gateway.reload(reason)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_file(self) -> None:
        target = Path(self.gateway.loaded.source).resolve()

        def relevant(_change: Change, path: str) -> bool:
            name = Path(path).name
            return name == target.name or name.startswith("..")  # ConfigMap swaps

        try:
            async for _changes in awatch(
                target.parent, watch_filter=relevant, stop_event=self._stop, debounce=300
            ):
                await self.gateway.reload("file changed")
        except (OSError, RuntimeError) as exc:
            logger.warning("not watching %s for changes: %s", target, exc)
