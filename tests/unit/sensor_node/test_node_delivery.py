"""Delivery from the outbox with flow control, against a fake publisher (no network)."""

from __future__ import annotations

import time

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
    d = Dispatcher(box, pub)
    d.start()
    pub.start()
    try:
        assert until(lambda: len(pub.sent) == 7)
        time.sleep(0.05)
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
    finally:
        d.stop()


def test_nothing_is_published_while_disconnected_and_all_after_reconnect() -> None:
    box = MemoryOutbox()
    pub = FakePublisher(window=5, connected=False)
    d = Dispatcher(box, pub)
    d.start()
    try:
        fill(box, 30)
        d.notify()
        time.sleep(0.05)
        assert pub.sent == []
        pub.set_connected(True)
        assert d.wait_drained(5.0)
        assert len(pub.sent) == 30 and box.depth() == 0
    finally:
        d.stop()


def test_live_frames_flow_while_a_backlog_drains() -> None:
    """With a backlog of 200 and window 8, the newest frame goes out in the first round."""
    box = MemoryOutbox()
    fill(box, 200)
    pub = FakePublisher(window=8)
    pub.hold = True
    d = Dispatcher(box, pub)
    d.start()
    pub.start()
    try:
        assert until(lambda: len(pub.sent) == 8)
        sent = [int(p) for _, p, _ in pub.sent]
        assert 199 in sent and 0 in sent
        pub.hold = False
        pub.release()
        assert d.wait_drained(5.0)
    finally:
        d.stop()


def test_permanent_rejection_is_dropped_and_counted_transient_is_retried() -> None:
    box = MemoryOutbox()
    fill(box, 3)
    pub = FakePublisher(window=10)
    pub.reason = 0x87  # not authorized: never succeeds
    d = Dispatcher(box, pub)
    d.start()
    pub.start()
    try:
        assert d.wait_drained(2.0)
        assert d.stats.rejected == 3
    finally:
        d.stop()
    box2 = MemoryOutbox()
    fill(box2, 2)
    pub2 = FakePublisher(window=10)
    pub2.reason = 0x97  # quota exceeded: retry later
    d2 = Dispatcher(box2, pub2, retry_s=0.05)
    d2.start()
    pub2.start()
    try:
        assert until(lambda: d2.stats.retried >= 4)
        assert box2.depth() == 2
        pub2.reason = 0
        assert d2.wait_drained(2.0)
    finally:
        d2.stop()


def test_status_is_sent_retained_latest_wins() -> None:
    box = MemoryOutbox()
    pub = FakePublisher(connected=False)
    d = Dispatcher(box, pub)
    d.start()
    try:
        d.publish_status("klankkast/v1/s/n/status", b"1")
        d.publish_status("klankkast/v1/s/n/status", b"2")
        pub.set_connected(True)
        assert d.wait_drained(2.0)
        assert pub.sent == [("klankkast/v1/s/n/status", b"2", True)]
    finally:
        d.stop()
