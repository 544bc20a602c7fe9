"""Delivery from the outbox with flow control, against a fake publisher (no network)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from klankkast.sensor.delivery import Dispatcher
from klankkast.sensor.outbox import MemoryOutbox, NewFrame
from klankkast.sensor.publisher import FakePublisher


def fill(box: MemoryOutbox, n: int, kind: str = "second") -> list[int]:
    return [
        box.append(
            NewFrame("s/n/" + kind, kind, "klankkast/v1/s/n/" + kind, lambda s: b"%d" % s)
        ).id
        for _ in range(n)
    ]


@contextmanager
def running(d: Dispatcher, pub: FakePublisher | None = None) -> Iterator[Dispatcher]:
    """Start ``d`` (and ``pub``'s acknowledging thread, when given); stop ``d`` at the end."""
    d.start()
    if pub is not None:
        pub.start()
    try:
        yield d
    finally:
        d.stop()


def until(cond, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return bool(cond())


def test_never_more_in_flight_than_the_window_and_drains_in_order() -> None:
    box = MemoryOutbox()
    fill(box, 50)
    pub = FakePublisher(window=7)
    pub.hold = True
    with running(Dispatcher(box, pub), pub) as d:
        assert until(lambda: len(pub.sent) == 7)
        assert d.wait_rounds()
        assert len(pub.sent) == 7  # nothing more until acks come
        while box.depth():
            pub.release()
            until(lambda: bool(pub.held) or box.depth() == 0, 2.0)
        assert pub.max_outstanding <= 7
        assert d.wait_drained(2.0)
        payloads = [int(p) for t, p, _ in pub.sent]
        assert sorted(payloads) == list(range(50))
        # backlog oldest-first, with a quarter of the window (here 1) for the newest
        assert payloads[:7] == [0, 1, 2, 3, 4, 5, 49]


def test_nothing_is_published_while_disconnected_and_all_after_reconnect() -> None:
    box = MemoryOutbox()
    pub = FakePublisher(window=5, connected=False)
    with running(Dispatcher(box, pub)) as d:
        fill(box, 30)
        d.notify()
        assert d.wait_rounds()
        assert pub.sent == []
        pub.set_connected(True)
        assert d.wait_drained(5.0)
        assert len(pub.sent) == 30 and box.depth() == 0


def test_live_frames_flow_while_a_backlog_drains() -> None:
    """With a backlog of 200 and window 8, the newest frame goes out in the first round."""
    box = MemoryOutbox()
    fill(box, 200)
    pub = FakePublisher(window=8)
    pub.hold = True
    with running(Dispatcher(box, pub), pub) as d:
        assert until(lambda: len(pub.sent) == 8)
        sent = [int(p) for _, p, _ in pub.sent]
        assert 199 in sent and 0 in sent
        pub.hold = False
        pub.release()
        assert d.wait_drained(5.0)


def test_permanent_rejection_is_dropped_and_counted_transient_is_retried() -> None:
    box = MemoryOutbox()
    fill(box, 3)
    pub = FakePublisher(window=10)
    pub.reason = 0x87  # not authorized: never succeeds
    with running(Dispatcher(box, pub), pub) as d:
        assert d.wait_drained(2.0)
        assert d.stats.rejected == 3
    box2 = MemoryOutbox()
    fill(box2, 2)
    pub2 = FakePublisher(window=10)
    pub2.reason = 0x97  # quota exceeded: retry later
    with running(Dispatcher(box2, pub2, retry_s=0.05), pub2) as d2:
        assert until(lambda: d2.stats.retried >= 4)
        assert box2.depth() == 2
        pub2.reason = 0
        assert d2.wait_drained(2.0)


def test_status_is_sent_retained_latest_wins() -> None:
    box = MemoryOutbox()
    pub = FakePublisher(connected=False)
    with running(Dispatcher(box, pub)) as d:
        d.publish_status("klankkast/v1/s/n/status", b"1")
        d.publish_status("klankkast/v1/s/n/status", b"2")
        pub.set_connected(True)
        assert d.wait_drained(2.0)
        assert pub.sent == [("klankkast/v1/s/n/status", b"2", True)]


# ---- confirm = "ingest": a PUBACK is not enough, the ingest's ack deletes ----------


class Clock:
    """Injected clocks: the wall clock of the confirmation timeout (ms) and the
    monotonic one of the dispatcher's re-check period (s)."""

    def __init__(self) -> None:
        self.ms = 1_000_000
        self.mono_s = 100.0

    def __call__(self) -> int:
        return self.ms

    def monotonic(self) -> float:
        return self.mono_s

    def dispatcher(self, box: MemoryOutbox, pub: FakePublisher, **kw: float) -> Dispatcher:
        """A dispatcher awaiting the ingest's confirmations, on these clocks."""
        return Dispatcher(
            box, pub, confirm="ingest", clock_ms=self, monotonic_s=self.monotonic, **kw
        )

    def advance(self, ms: int) -> None:
        """Move both clocks on by ``ms``."""
        self.ms += ms
        self.mono_s += ms / 1000


def test_ingest_mode_keeps_frames_after_puback_until_the_ingest_confirms() -> None:
    box = MemoryOutbox()
    fill(box, 10)
    pub = FakePublisher(window=20)
    with running(
        Dispatcher(box, pub, confirm="ingest", confirm_timeout_s=120, clock_ms=Clock()), pub
    ) as d:
        assert until(lambda: box.unconfirmed()[0] == 10)
        assert box.depth() == 10 and box.pending(100) == []
        assert not d.wait_drained(0.1, include_status=False)
        d.confirmed("s/n/second", [(0, 3), (5, 9)])
        assert until(lambda: box.depth() == 1)
        assert d.stats.confirmed == 9
        assert box.unconfirmed()[0] == 1
        d.confirmed("s/n/second", [(4, 4)])
        assert d.wait_drained(2.0, include_status=False)
        assert len(pub.sent) == 10  # published once each: nothing timed out


def test_unconfirmed_frames_are_published_again_after_the_timeout_with_same_bytes() -> None:
    """Timeout 2 s on injected clocks: at +1.9 s nothing is re-sent; by +2.5 s (the
    timeout and the re-check period, timeout / 4) all three are, with identical topic
    and payload; then an ack deletes them."""
    box = MemoryOutbox()
    fill(box, 3)
    pub = FakePublisher(window=20)
    clock = Clock()
    with running(clock.dispatcher(box, pub, confirm_timeout_s=2.0), pub) as d:
        assert until(lambda: box.unconfirmed()[0] == 3)
        first = list(pub.sent)
        clock.advance(1_900)
        assert d.wait_rounds()
        assert len(pub.sent) == 3
        clock.advance(600)
        assert d.wait_rounds()
        assert until(lambda: len(pub.sent) == 6)
        assert pub.sent[3:] == first
        assert d.stats.resent == 3
        d.confirmed("s/n/second", [(0, 2)])
        assert d.wait_drained(2.0, include_status=False)


def test_resending_backs_off_while_nothing_is_confirmed_and_resets_on_an_ack() -> None:
    """Timeout 1 s: without any confirmation re-sends come after 1 s, then 2 s, then
    4 s of injected time (each within the re-check period of 0.25 s); a confirmation
    resets the wait to 1 s."""
    box = MemoryOutbox()
    fill(box, 2)
    pub = FakePublisher(window=20)
    clock = Clock()
    with running(clock.dispatcher(box, pub, confirm_timeout_s=1.0), pub) as d:
        assert until(lambda: len(pub.sent) == 2)
        sent = 2
        for wait_ms in (1_000, 2_000, 4_000):
            clock.advance(wait_ms - 1)
            assert d.wait_rounds()
            assert len(pub.sent) == sent, wait_ms
            clock.advance(1 + 250)
            assert d.wait_rounds()
            assert until(lambda n=sent: len(pub.sent) == n + 2), wait_ms
            sent += 2
        d.confirmed("s/n/second", [(0, 0)])
        assert until(lambda: box.depth() == 1)
        clock.advance(1_000 + 250)
        assert d.wait_rounds()
        assert until(lambda: len(pub.sent) == sent + 1)


def test_broker_mode_deletes_on_puback_as_before() -> None:
    box = MemoryOutbox()
    fill(box, 5)
    pub = FakePublisher(window=20)
    with running(Dispatcher(box, pub, confirm="broker"), pub) as d:
        assert d.wait_drained(2.0, include_status=False)
        assert box.unconfirmed() == (0, None)


def test_switching_back_to_broker_mode_publishes_and_deletes_what_waited_for_acks() -> None:
    """Frames left awaiting a confirmation by an ingest-mode run would never get one
    once the node uses confirm = broker: they are published again and deleted."""
    box = MemoryOutbox()
    ids = fill(box, 3)
    box.published(ids, 5)
    pub = FakePublisher(window=20)
    with running(Dispatcher(box, pub, confirm="broker"), pub) as d:
        assert d.wait_drained(2.0, include_status=False)
        assert len(pub.sent) == 3
