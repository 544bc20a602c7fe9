"""Group commit of marks: marks that arrive while a write is in flight go in the next one.

Each caller awaits its own mark; the first caller with nothing in flight starts a
drain task that writes everything queued in one request (in a worker thread, so the
event loop keeps serving pages), then whatever queued meanwhile, until the queue is
empty. A slow InfluxDB write therefore costs the marks behind it one write, not one
write each; a failed write fails exactly the marks of that request, so a resident is
told "nothing stored" only when nothing was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["GroupCommit"]

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Batch ``submit``-ted items into calls of ``write(items)`` (at most ``max_batch``)."""

    def __init__(self, write: Callable[[Sequence[T]], None], max_batch: int = 500) -> None:
        self._write = write
        self._max = max_batch
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._drain: asyncio.Task[None] | None = None
        #: writes made and items written (for tests and logs)
        self.writes = 0
        self.items = 0

    async def submit(self, item: T) -> None:
        """Return when ``item`` is written; raise what ``write`` raised for its batch."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._run())
        await fut

    async def _run(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                await run_in_threadpool(self._write, [item for item, _ in batch])
            except Exception as err:  # each waiter gets its batch's error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
            else:
                self.writes += 1
                self.items += len(batch)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
