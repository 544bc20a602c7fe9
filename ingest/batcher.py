"""The writer loop's decisions as a state machine: chunks, batches, timers, shutdown.

The ingest's writer thread (:meth:`klankkast.ingest.service.IngestService._writer_loop`)
takes messages from the queue, cuts them into chunks for the encoder processes, folds
the encoded chunks into a batch **in arrival order**, and hands the batch to the
flusher (InfluxDB, then the MQTT acknowledgements) when it is big or old enough. All
of its choices are made here, by a :class:`Batcher` that does no I/O and reads no
clock (``now`` is passed in, in seconds of a monotonic clock), so each rule has a unit
test:

1. **Chunks.** Taken messages go into the open chunk; it is cut (handed to an encoder)
   at ``chunk_items`` messages or when the queue is empty for now.
2. **Order.** Encoded chunks are merged from the front of the in-flight queue only, so
   the batch's points and its acknowledgements keep the order of arrival even when a
   later chunk is encoded first. A chunk is merged when it is done, or when more than
   ``max_pending`` are in flight (backpressure: wait for the oldest).
3. **Batch by size and age.** The batch timer starts with the first message taken
   while nothing is in flight. The batch is handed over once it holds
   ``batch_points`` points, or ``batch_s`` after its timer started (then everything in
   flight is merged into it first).
4. **Waiting.** With chunks in flight the loop polls (2 ms); with a batch open it waits
   for the queue until the batch is due; otherwise until the next stats/health tick
   (at most 0.2 s, so a stop request is seen promptly).
5. **Shutdown.** On stop the batcher takes in exactly the messages queued at that
   moment (what arrives later stays unacknowledged and is redelivered), hands over
   a last batch with everything in flight, and is then finished.

The flusher's retries of a batch InfluxDB did not take (and the start-up's wait for
InfluxDB) wait as a :class:`Backoff` says: doubling up to ``[ingest] max_backoff_s``,
a server's ``Retry-After`` taking precedence.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["Backoff", "BatchLimits", "Batcher", "Ticker"]


class _Future(Protocol):
    def done(self) -> bool: ...


T = TypeVar("T")
F = TypeVar("F", bound=_Future)

#: Points of a batch by retention policy (``None``: the database default).
Points = dict[str | None, list[str]]

#: Poll interval while chunks are being encoded.
POLL_S = 0.002
#: Longest wait for the queue when idle, so that a stop request is seen promptly.
IDLE_MAX_S = 0.2


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """When to cut a chunk and hand over a batch (``[ingest] batch_points``, ``batch_ms``)."""

    batch_points: int
    batch_s: float
    chunk_items: int = 500
    max_pending: int = 5


class Ticker:
    """A periodic deadline: :meth:`due` is true once per ``interval_s`` (then re-armed)."""

    def __init__(self, interval_s: float, now: float) -> None:
        self.interval_s = interval_s
        self.next = now + interval_s

    def due(self, now: float) -> bool:
        if now < self.next:
            return False
        self.next = now + self.interval_s
        return True


class Batcher(Generic[T, F]):
    """The writer loop's state: the open chunk, chunks in flight, the batch, the timers.

    ``T`` is a message, ``F`` the future of an encoded chunk (anything with ``done()``).
    """

    def __init__(self, limits: BatchLimits, now: float, stats_s: float, health_s: float) -> None:
        self.limits = limits
        self.chunk: list[T] = []
        self.pending: deque[tuple[F, list[T]]] = deque()
        self.points: Points = {}
        self.n_points = 0
        self.acks: list[T] = []  # the batch's messages, in arrival order
        self.started = 0.0
        self.stopping = False
        self.remaining = -1  # once stopping: queued messages still to take in
        self.stats_tick = Ticker(stats_s, now)
        self.health_tick = Ticker(health_s, now)

    # -- taking messages ------------------------------------------------------------
    def stop(self, queued: int) -> None:
        """Stop requested with ``queued`` messages in the queue: take in just those."""
        if not self.stopping:
            self.stopping = True
            self.remaining = queued

    def wait_s(self, now: float) -> float | None:
        """How long to wait for the queue; ``None``: take nothing (stopping, all taken),
        ``0.0`` while stopping: take without waiting."""
        if self.stopping:
            return 0.0 if self.remaining > 0 else None
        if self.pending:
            return POLL_S
        if self.acks:
            return max(0.0, self.started + self.limits.batch_s - now)
        return min(IDLE_MAX_S, max(0.0, min(self.stats_tick.next, self.health_tick.next) - now))

    def take(self, item: T, now: float) -> bool:
        """Add a message to the open chunk; True when the chunk is to be cut now."""
        if not (self.acks or self.chunk or self.pending):
            self.started = now
        self.chunk.append(item)
        if self.stopping:
            self.remaining -= 1
        return len(self.chunk) >= self.limits.chunk_items or (self.stopping and self.remaining <= 0)

    def cut(self) -> list[T]:
        """The open chunk (possibly empty), to be encoded; a new chunk is opened."""
        chunk, self.chunk = self.chunk, []
        return chunk

    def submitted(self, future: F, chunk: list[T]) -> None:
        """``chunk`` is being encoded by ``future``."""
        self.pending.append((future, chunk))

    # -- merging encoded chunks -------------------------------------------------------
    def ready(self) -> tuple[F, list[T]] | None:
        """The oldest chunk in flight if it is done or too many are in flight."""
        if self.pending and (
            self.pending[0][0].done() or len(self.pending) > self.limits.max_pending
        ):
            return self.pending.popleft()
        return None

    def aged(self, now: float) -> bool:
        return now - self.started >= self.limits.batch_s

    def closing(self, now: float) -> tuple[F, list[T]] | None:
        """The oldest chunk in flight when the batch is closing (aged or stopping)."""
        if self.pending and (self.aged(now) or self.stopping):
            return self.pending.popleft()
        return None

    def merged(self, chunk: list[T], n_points: int) -> None:
        """``chunk`` was merged into :attr:`points`, adding ``n_points``."""
        self.n_points += n_points
        self.acks.extend(chunk)

    # -- handing over -------------------------------------------------------------------
    def batch_due(self, now: float) -> bool:
        """Whether the batch is to be handed over: big enough, old enough, or stopping."""
        return bool(self.acks) and (
            self.n_points >= self.limits.batch_points or self.aged(now) or self.stopping
        )

    def batch(self) -> tuple[Points, list[T]]:
        return self.points, self.acks

    def handed_over(self, now: float) -> None:
        """The batch went to the flusher: open a new one, its timer from ``now``."""
        self.points = {}
        self.n_points = 0
        self.acks = []
        self.started = now

    def finished(self) -> bool:
        """Stopping, and nothing taken in is left outside a handed-over batch."""
        return self.stopping and not self.acks and not self.pending


class Backoff:
    """Waits between retries: ``first_s``, then doubling, at most ``max_s`` after the first.

    A server's ``Retry-After`` (429/503) is waited instead when given, clamped to 0..1 h;
    the doubling goes on underneath it.
    """

    def __init__(self, max_s: float, first_s: float = 0.25) -> None:
        self.max_s = max_s
        self.delay = first_s

    def next_wait(self, retry_after_s: float | None = None) -> float:
        wait = self.delay if retry_after_s is None else min(max(retry_after_s, 0.0), 3600.0)
        self.delay = min(self.delay * 2, self.max_s)
        return wait
