"""Background work: a loop that runs one round every `interval_s` (or at once when kicked), and
the set of tasks that shutdown lets finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class BackgroundWorker:
    name = "worker"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._wake = asyncio.Event()
        self.stopping = False
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> object:
        raise NotImplementedError

    def kick(self) -> None:
        """Something was just enqueued: run now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Shutdown: the round in progress finishes (a message sent is marked sent, so no other
        process sends it again), no new one starts; cut short after `timeout_s` seconds."""
        if self._task is None:
            return
        self.stopping = True
        self._wake.set()
        _, late = await asyncio.wait({self._task}, timeout=timeout_s)
        if late:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        while not self.stopping:
            try:
                await self.round()
            except Exception:
                log.exception("background round failed", extra={"worker": self.name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            self._wake.clear()


class RunningTasks:
    """The tasks doing a piece of work right now (an update being handled, a scheduled job's
    run), so that shutdown can let them finish before closing what they use."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self, timeout: float) -> None:
        """Until every task tracked now is done, or `timeout` seconds."""
        current = asyncio.current_task()
        running = {task for task in self._tasks if task is not current}
        if running:
            await asyncio.wait(running, timeout=timeout)

    async def cancel(self) -> None:
        """Shutdown's last resort: what is still running is cancelled where it is (its open
        transaction rolls back: the work is parked, and resumed by the next run) and awaited."""
        current = asyncio.current_task()
        running = [task for task in self._tasks if task is not current and not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=2)
