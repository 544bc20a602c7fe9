"""Group commit: marks that arrive during a write go together in the next write; a
failed write fails exactly its own marks. No sleeps: the first write is held on an
event until the others have queued."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from klankkast.courtyard.groupcommit import GroupCommit


def test_marks_queued_during_a_write_share_the_next_write() -> None:
    calls: list[list[int]] = []
    started, release = threading.Event(), threading.Event()

    def write(items: Sequence[int]) -> None:
        calls.append(list(items))
        if len(calls) == 1:
            started.set()
            assert release.wait(10)

    async def scenario() -> None:
        gc: GroupCommit[int] = GroupCommit(write)
        first = asyncio.create_task(gc.submit(1))
        assert await asyncio.to_thread(started.wait, 10)
        rest = [asyncio.create_task(gc.submit(k)) for k in (2, 3, 4)]
        await asyncio.sleep(0)  # let them queue (a yield, not a delay)
        release.set()
        await asyncio.gather(first, *rest)
        assert (gc.writes, gc.items) == (2, 4)

    asyncio.run(scenario())
    assert calls == [[1], [2, 3, 4]]


def test_a_failed_write_fails_only_its_own_marks() -> None:
    calls: list[list[int]] = []
    started, release = threading.Event(), threading.Event()

    def write(items: Sequence[int]) -> None:
        calls.append(list(items))
        if len(calls) == 1:
            started.set()
            assert release.wait(10)
            raise OSError("InfluxDB unreachable")

    async def scenario() -> None:
        gc: GroupCommit[int] = GroupCommit(write)
        first = asyncio.create_task(gc.submit(1))
        assert await asyncio.to_thread(started.wait, 10)
        second = asyncio.create_task(gc.submit(2))
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(OSError, match="unreachable"):
            await first
        await second  # written by the next request
        assert gc.items == 1

    asyncio.run(scenario())
    assert calls == [[1], [2]]
