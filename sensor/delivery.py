"""Delivery: moves frames from the outbox to the broker with flow control.

One thread owns all delivery state. It publishes outbox entries with QoS 1, never
more in flight than the publisher's window (the broker's Receive Maximum, capped by
``max_inflight``), and removes an entry from flight only when its PUBACK arrives. After a
reconnect paho re-sends what was in flight (same session), and the backlog goes
out oldest-first; while a backlog is draining a quarter of the window carries the
newest frames, so live data keeps flowing.

Who confirms a frame (``confirm``): with ``"broker"`` a PUBACK deletes the entry;
with ``"ingest"`` (end to end) a PUBACK only marks it published
(:meth:`~klankkast.sensor.outbox.Outbox.published`), and the entry is deleted when
the ingest confirms its ``(stream, seq)`` (:meth:`Dispatcher.confirmed`, fed from
the node's ack topic). An entry published but unconfirmed for ``confirm_timeout_s``
goes back to pending and is published again, same ``seq`` and payload. While
nothing at all is being confirmed (the ingest is away), each further round of
re-sending waits twice as long, up to 32 × ``confirm_timeout_s``, so that an
outage of hours does not fill the broker's queues with copies; the first
confirmation resets it.

Status messages (retained, not durable: only the latest matters) go through
:meth:`Dispatcher.publish_status` and are sent when connected.

Acknowledgements arrive on paho's network thread; they are only queued there and
handled on the delivery thread, so there is no lock order between paho and us.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from klankkast.sensor.outbox import Entry, Outbox
from klankkast.sensor.publisher import Publisher

__all__ = ["MAX_RESEND_BACKOFF", "DeliveryStats", "Dispatcher"]

log = logging.getLogger(__name__)

#: Largest factor by which re-sending backs off while nothing is confirmed.
MAX_RESEND_BACKOFF = 32


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


#: PUBACK reason codes that will never succeed on retry (MQTT v5 §3.4.2.1):
#: not authorized, topic name invalid, packet too large, payload format invalid.
_PERMANENT = {0x87, 0x90, 0x95, 0x99}


@dataclass
class DeliveryStats:
    published: int = 0
    acked: int = 0
    rejected: int = 0
    retried: int = 0
    refused_by_client: int = 0
    confirmed: int = 0
    resent: int = 0


class Dispatcher:
    """Publishes the outbox through a :class:`Publisher`; see the module docstring."""

    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        *,
        retry_s: float = 1.0,
        on_connect: Callable[[], None] | None = None,
        confirm: str = "broker",
        confirm_timeout_s: float = 120.0,
        clock_ms: Callable[[], int] = _wall_ms,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        if confirm not in ("broker", "ingest"):
            raise ValueError(f"confirm must be 'broker' or 'ingest'; got {confirm!r}")
        self.outbox = outbox
        self.publisher = publisher
        self.retry_s = retry_s
        self.confirm = confirm
        self.confirm_timeout_s = confirm_timeout_s
        self._clock_ms = clock_ms
        self._monotonic_s = monotonic_s
        self._rounds = 0
        self._rounds_cv = threading.Condition()
        self._confirmations: collections.deque[tuple[str, list[tuple[int, int]]]] = (
            collections.deque()
        )
        self._backoff = 1
        self._confirmed_since_resend = False
        self._next_requeue = 0.0
        self.stats = DeliveryStats()
        self._cv = threading.Condition()
        self._acks: collections.deque[tuple[int, int]] = collections.deque()
        self._status: dict[str, bytes] = {}
        self._status_mids: set[int] = set()
        self._inflight: dict[int, int] = {}  # mid -> outbox id
        self._inflight_ids: set[int] = set()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._idle = threading.Event()
        self._on_connect_hook = on_connect
        publisher.set_handlers(self._on_ack, self._connected, self._wake)

    # ---- called from other threads -------------------------------------------------
    def _on_ack(self, mid: int, reason: int) -> None:
        self._acks.append((mid, reason))
        self._wake()

    def _wake(self) -> None:
        with self._cv:
            self._idle.clear()
            self._cv.notify()

    def _connected(self) -> None:
        if self._on_connect_hook is not None:
            self._on_connect_hook()
        self._wake()

    def confirmed(self, stream: str, ranges: list[tuple[int, int]]) -> None:
        """The ingest confirmed ``stream``'s ``seq`` ranges (any thread; handled on ours).

        Not urgent, so it does not wake the delivery thread: the deletes ride along
        with its next round (the next frame, PUBACK or its idle tick, <= 0.5 s), which
        saves the node a wake-up per ack (``bench/bench_node.py``).
        """
        self._confirmations.append((stream, ranges))

    def notify(self) -> None:
        """Tell the dispatcher that new entries are in the outbox."""
        self._wake()

    def publish_status(self, topic: str, payload: bytes) -> None:
        """Queue a retained status message (the latest per topic wins)."""
        with self._cv:
            self._status[topic] = payload
        self._wake()

    @property
    def inflight(self) -> int:
        return len(self._inflight) + len(self._status_mids)

    def start(self) -> None:
        if self.confirm == "broker":
            # frames left awaiting the ingest's confirmation by a run with confirm =
            # "ingest": without acks they would wait for ever, so publish them again
            # (and delete them on their PUBACK)
            n = self.outbox.requeue(2**62)
            if n:
                log.info("confirm = broker: %d frame(s) left unconfirmed are published again", n)
        self._thread = threading.Thread(target=self._run, name="klankkast-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wait_drained(self, timeout_s: float, *, include_status: bool = True) -> bool:
        """Wait until the outbox is empty and nothing is in flight; True if it is."""
        deadline = time.monotonic() + timeout_s
        while True:
            if (
                self.outbox.depth() == 0
                and not self._inflight
                and (not include_status or (not self._status and not self._status_mids))
            ):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wake()
            time.sleep(min(0.05, left))

    def wait_rounds(self, n: int = 2, timeout_s: float = 5.0) -> bool:
        """Wake the delivery thread and wait until it has finished ``n`` more rounds, so
        that a round that began after the wake-up has looked at the outbox, the acks
        and the clocks (how a test knows that nothing happened); True if it has."""
        with self._rounds_cv:
            target = self._rounds + n
        self._wake()
        with self._rounds_cv:
            return self._rounds_cv.wait_for(lambda: self._rounds >= target, timeout_s)

    # ---- the delivery thread -----------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cv:
                if self._stop:
                    return
            try:
                busy = self._step()
            except Exception:  # top of a run loop: log, back off, go on
                log.exception("delivery step failed; retrying")
                busy = False
                time.sleep(self.retry_s)
            with self._rounds_cv:
                self._rounds += 1
                self._rounds_cv.notify_all()
            if not busy:
                with self._cv:
                    if self._stop:
                        return
                    if not self._acks and not self._confirmations:
                        self._idle.set()
                        timeout = 0.5
                        if self._retry_at:
                            timeout = max(0.01, min(timeout, self._retry_at - time.monotonic()))
                        self._cv.wait(timeout)

    def _step(self) -> bool:
        """One round: handle acks, send status, fill the window. True if work was done."""
        done: list[int] = []
        published: list[int] = []
        worked = False
        while self._acks:
            mid, reason = self._acks.popleft()
            worked = True
            if mid in self._status_mids:
                self._status_mids.discard(mid)
                continue
            oid = self._inflight.pop(mid, None)
            if oid is None:
                continue
            self._inflight_ids.discard(oid)
            if reason < 0x80:
                (published if self.confirm == "ingest" else done).append(oid)
                self.stats.acked += 1
            elif reason in _PERMANENT:
                log.error(
                    "broker rejected outbox entry %d permanently (reason 0x%02x)", oid, reason
                )
                done.append(oid)
                self.stats.rejected += 1
            else:
                log.warning("broker refused outbox entry %d (reason 0x%02x); retrying", oid, reason)
                self.stats.retried += 1
                self._retry_at = time.monotonic() + self.retry_s
        if done:
            self.outbox.ack(done)
        if published:
            self.outbox.published(published, self._clock_ms())
        while self._confirmations:
            stream, ranges = self._confirmations.popleft()
            worked = True
            self.stats.confirmed += self.outbox.confirm(stream, ranges)
            self._backoff, self._confirmed_since_resend = 1, True
        if self.confirm == "ingest":
            self._requeue_due()
        if not self.publisher.connected:
            return worked
        with self._cv:
            status, self._status = self._status, {}
        for topic, payload in status.items():
            status_mid = self.publisher.publish(topic, payload, retain=True)
            if status_mid is not None:
                self._status_mids.add(status_mid)
            worked = True
        if self._retry_at and time.monotonic() < self._retry_at:
            return worked
        self._retry_at = 0.0
        free = self.publisher.window - len(self._inflight)
        depth = self.outbox.depth()
        if free <= 0 or depth == 0:
            return worked
        batch: list[Entry] = []
        if depth > 2 * self.publisher.window and free >= 2:
            batch = self.outbox.pending(max(1, free // 4), self._inflight_ids, newest=True)
        exclude = self._inflight_ids | {e.id for e in batch}
        batch = self.outbox.pending(free - len(batch), exclude) + batch
        for e in batch:
            sent_mid = self.publisher.publish(e.topic, e.payload)
            if sent_mid is None:
                self.stats.refused_by_client += 1
                self._retry_at = time.monotonic() + self.retry_s
                break
            self._inflight[sent_mid] = e.id
            self._inflight_ids.add(e.id)
            self.stats.published += 1
            worked = True
        return worked

    def _requeue_due(self) -> None:
        """Put frames unconfirmed for the (backed-off) timeout back to pending."""
        now = self._monotonic_s()
        if now < self._next_requeue:
            return
        timeout_s = self.confirm_timeout_s * self._backoff
        self._next_requeue = now + min(5.0, max(0.05, self.confirm_timeout_s / 4))
        n = self.outbox.requeue(self._clock_ms() - int(timeout_s * 1000))
        if not n:
            return
        self.stats.resent += n
        log.warning(
            "%d frame(s) published but not confirmed by the ingest within %.0f s; "
            "publishing them again",
            n,
            timeout_s,
        )
        if not self._confirmed_since_resend:
            self._backoff = min(self._backoff * 2, MAX_RESEND_BACKOFF)
        self._confirmed_since_resend = False
