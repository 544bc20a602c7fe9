"""The node's run loop with in-process adapters: a fake source, the real metrology core,
the memory outbox and a fake publisher (no audio device, no network)."""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np

from klankkast.sensor import wire
from klankkast.sensor.capture import Block, FakeSource, Gap
from klankkast.sensor.config import parse_config
from klankkast.sensor.outbox import MemoryOutbox
from klankkast.sensor.publisher import FakePublisher
from klankkast.sensor.service import Node, SystemdNotifier, make_meter

FS = 16000


def config(**audio: Any) -> Any:
    return parse_config(
        {
            "node": {"id": "n1", "site": "yard1", "status_interval_s": 1},
            "audio": {"samplerate": FS, "block_ms": 100, **audio},
            "calibration": {"offset_db": 94.0},
            "mqtt": {"url": "mqtt://127.0.0.1:1883"},
            # deleted on PUBACK: these tests have no ingest (test_node_delivery covers acks)
            "outbox": {"confirm": "broker"},
        }
    )


def sine(seconds: float, ms: float = 0.01, f_hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return np.sqrt(2 * ms) * np.sin(2 * np.pi * f_hz * t)


class StoppingSource(FakeSource):
    """Stops the node when the signal is exhausted."""

    node: Node

    def read(self, timeout_s: float) -> Block | Gap | None:
        item = super().read(timeout_s)
        if item is None:
            self.node.stop_event.set()
        return item


def run_node(
    source: Any,
    cfg: Any = None,
    *,
    pub: FakePublisher | None = None,
    box: MemoryOutbox | None = None,
    drain_s: float = 2.0,
) -> tuple[Node, FakePublisher, MemoryOutbox]:
    """Run a node on ``source`` until the source stops it; wait at most ``drain_s`` for
    the outbox to empty."""
    cfg = cfg or config()
    pub = FakePublisher() if pub is None else pub
    box = MemoryOutbox() if box is None else box
    node = Node(
        cfg,
        source=source,
        outbox=box,
        publisher=pub,
        meter_factory=lambda: make_meter(cfg),
        clock_synced=lambda: True,
        drain_s=drain_s,
        audio_backoff_s=0.01,
    )
    source.node = node
    t = threading.Thread(target=node.run)
    t.start()
    t.join(30)
    assert not t.is_alive()
    return node, pub, box


def decoded(pub: FakePublisher, kind: str) -> list[dict[str, Any]]:
    return [
        wire.decode(topic, payload).payload
        for topic, payload, _ in pub.sent
        if topic.endswith("/" + kind)
    ]


def test_known_sine_gives_calibrated_levels_contiguous_seq_and_sample_clock_times() -> None:
    """1 kHz sine, mean square 0.01, offset 94 dB: LAeq = 94 + 10 lg 0.01 = 74.0 dB
    (A weighting is 0 dB at 1 kHz). 3.5 s: three full seconds and a 500-ms partial at
    shutdown, one summary of 3.5 s; t steps by exactly 1000 ms from the anchor."""
    src = StoppingSource(sine(3.5), FS)
    _node, pub, box = run_node(src)
    seconds = decoded(pub, "second")
    assert [s["seq"] for s in seconds] == [0, 1, 2, 3]
    assert [s["dur_ms"] for s in seconds] == [1000, 1000, 1000, 500]
    for s in seconds:
        assert abs(s["LAeq"] - 74.0) < 0.05
    t0 = round(src.t0_ms)
    assert [s["t"] - t0 for s in seconds] == [0, 1000, 2000, 3000]
    (minute,) = decoded(pub, "minute")
    assert minute["seq"] == 0 and minute["dur_ms"] == 3500
    assert abs(minute["LAeq"] - 74.0) < 0.05
    assert box.depth() == 0
    statuses = decoded(pub, "status")
    assert statuses[-1]["state"] == "offline"
    assert any(s["state"] == "online" for s in statuses)
    assert all(retain for topic, _, retain in pub.sent if topic.endswith("/status"))


def test_offline_will_is_a_valid_retained_status() -> None:
    cfg = config()
    node = Node(
        cfg,
        source=FakeSource(np.zeros(10), FS),
        outbox=MemoryOutbox(),
        publisher=FakePublisher(),
        meter_factory=lambda: make_meter(cfg),
        clock_synced=lambda: None,
    )
    will = node.will()
    assert will.retain and will.topic == "klankkast/v1/yard1/n1/status"
    msg = wire.decode(will.topic, will.payload)
    assert msg.payload["state"] == "offline"


class LosingSource(FakeSource):
    """Delivers 2 s, then loses the device once (Gap), then 2 s more after reopening."""

    node: Node

    def __init__(self) -> None:
        super().__init__(sine(2.0), FS)
        self.phase = 0
        self.reopens = 0

    def read(self, timeout_s: float) -> Block | Gap | None:
        item = super().read(timeout_s)
        if item is None and self.phase == 0:
            self.phase = 1
            self.state = "lost"
            return Gap("USB device unplugged")
        if item is None:
            self.node.stop_event.set()
        return item

    def reopen(self) -> None:
        self.reopens += 1
        self.signal = sine(2.0, ms=0.1).astype(np.float32)  # 84 dB after re-plugging
        self.pos = 0
        self.t0_ms += 10_000
        self.state = "running"


def test_lost_device_is_reopened_and_seq_continues() -> None:
    src = LosingSource()
    _node, pub, _ = run_node(src)
    assert src.reopens == 1
    seconds = decoded(pub, "second")
    assert [s["seq"] for s in seconds] == [0, 1, 2, 3]
    assert [round(s["LAeq"]) for s in seconds] == [74, 74, 84, 84]
    # the new stream is anchored to its own start, 10 s after the first stream's
    assert seconds[2]["t"] - seconds[0]["t"] == 10_000
    assert any(s["state"] == "degraded" for s in decoded(pub, "status"))


def test_systemd_notifier_sends_datagrams(tmp_path: Any) -> None:
    import socket

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(path)
        n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
        assert n.watchdog_s == 2.0
        assert n.notify("READY=1")
        n.watchdog()
        n.watchdog()  # within half the interval: not sent again
        srv.settimeout(1)
        assert srv.recv(100) == b"READY=1"
        assert srv.recv(100) == b"WATCHDOG=1"
        srv.setblocking(False)
        try:
            extra = srv.recv(100)
        except BlockingIOError:
            extra = b""
        assert extra == b""
    assert not SystemdNotifier({}).notify("READY=1")


def test_status_payload_fields() -> None:
    src = StoppingSource(sine(1.0), FS)
    _, pub, _ = run_node(src)
    online = next(s for s in decoded(pub, "status") if s["state"] == "online")
    for key in ("version", "uptime_s", "xruns", "outbox_depth", "outbox_evictions", "clock_synced"):
        assert key in online, key
    assert online["clock_synced"] is True
    json.dumps(online)


def test_full_outbox_while_offline_evicts_oldest_seconds_and_reports_it() -> None:
    """Broker unreachable, outbox bound at 3 frames' worth: after 6 s of audio the
    oldest seconds were evicted (counted in status) and the minute summary kept."""
    cfg = config()
    src = StoppingSource(sine(6.0), FS)
    pub = FakePublisher(connected=False)
    frame_bytes = 1000  # a 1-s frame with 27 bands at 16 kHz is ~600-700 bytes
    box = MemoryOutbox(max_bytes=3 * frame_bytes)
    node, _, _ = run_node(src, cfg, pub=pub, box=box, drain_s=0.1)
    left = box.pending(100)
    kinds = [e.kind for e in left]
    assert "minute" in kinds
    assert box.evictions >= 2
    seconds = [e.seq for e in left if e.kind == "second"]
    assert seconds == sorted(seconds) and seconds[-1] == 5  # the newest survive
    assert min(seconds) > 0  # the oldest went first
    assert node._status_payload()["outbox_evictions"] == box.evictions


class FailingSource(FakeSource):
    """Raises once in the middle (a PortAudio error surfacing in read)."""

    node: Node

    def __init__(self) -> None:
        super().__init__(sine(2.0), FS)
        self.failed = False
        self.reopened = 0

    def read(self, timeout_s: float) -> Block | Gap | None:
        if self.pos >= FS and not self.failed:
            self.failed = True
            raise RuntimeError("PortAudio error -9999: unanticipated host error")
        item = super().read(timeout_s)
        if item is None and self.reopened:
            self.node.stop_event.set()
        return item

    def reopen(self) -> None:
        self.reopened += 1
        self.pos = 0
        self.t0_ms += 5000


def test_an_error_in_the_loop_restarts_the_stream_instead_of_dying() -> None:
    src = FailingSource()
    _node, pub, _ = run_node(src)
    assert src.reopened == 1
    seconds = decoded(pub, "second")
    assert [s["seq"] for s in seconds] == [0, 1, 2]
    assert any(
        s["state"] == "degraded" and "PortAudio" in (s.get("error") or "")
        for s in decoded(pub, "status")
    )


def test_status_reports_unconfirmed_frames_and_the_oldest_age() -> None:
    """confirm = ingest: 3 frames published 90 s ago (injected into the outbox's state)
    and 1 pending give unconfirmed 3 and an age of 90 s (+- 5 s of test run time)."""
    import time as _time

    from klankkast.sensor.outbox import NewFrame

    cfg = parse_config(
        {
            "node": {"id": "n1", "site": "yard1"},
            "audio": {"samplerate": FS},
            "mqtt": {"url": "mqtt://127.0.0.1:1883"},
        }
    )
    assert cfg.outbox.confirm == "ingest" and cfg.outbox.confirm_timeout_s == 120.0
    box = MemoryOutbox()
    pub = FakePublisher()
    node = Node(cfg, source=FakeSource(np.zeros(FS), FS), outbox=box, publisher=pub,
                meter_factory=lambda: make_meter(cfg), clock_synced=lambda: True)  # fmt: skip
    assert list(pub.subscriptions) == ["klankkast/v1/yard1/n1/ack"]
    ids = [box.append(NewFrame("yard1/n1/second", "second", "t", lambda s: b"x")).id
           for _ in range(4)]  # fmt: skip
    box.published(ids[:3], _time.time_ns() // 1_000_000 - 90_000)
    p = node._status_payload()
    assert p["unconfirmed"] == 3 and p["outbox_depth"] == 4
    assert abs(p["unconfirmed_age_s"] - 90.0) < 5.0
    wire.encode("status", p)  # the contract accepts both fields
    # an ack on the node's topic reaches the dispatcher as (stream, ranges)
    pub.deliver("klankkast/v1/yard1/n1/ack", wire.encode_ack("second", [(0, 1)]))
    assert list(node.dispatcher._confirmations) == [("yard1/n1/second", [(0, 1)])]
    pub.deliver("klankkast/v1/yard1/n1/ack", b"not json")
    assert node.bad_acks == 1
