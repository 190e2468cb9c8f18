"""A background loop that runs one round every `interval_s`, or at once when kicked."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class BackgroundWorker:
    name = "worker"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> object:
        raise NotImplementedError

    def kick(self) -> None:
        """Something was just enqueued: run now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("background round failed", extra={"worker": self.name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            self._wake.clear()
