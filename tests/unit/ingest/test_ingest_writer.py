"""Batch writing: split on 413, bisect 4xx to the bad line, ack only after 204; node health."""

from __future__ import annotations

import json
from typing import Any

import pytest

from klankkast.influx import (
    InfluxHTTP,
    PayloadTooLargeError,
    PermanentWriteError,
    RetryableWriteError,
)
from klankkast.ingest.config import parse_central_config
from klankkast.ingest.health import HealthTracker
from klankkast.ingest.service import IngestService, _Inbound, write_lines
from klankkast.sensor import wire

NOW_MS = 1_800_000_000_000


class FakeInfluxWriter(InfluxHTTP):
    """Accepts lines unless they contain ``BAD``; 413 above ``max_lines``; fails while ``down``."""

    def __init__(self, max_lines: int = 10_000) -> None:
        super().__init__("http://127.0.0.1:1", "kk")
        self.max_lines = max_lines
        self.down = 0
        self.stored: list[tuple[str | None, str]] = []
        self.calls = 0

    def write(
        self, lines: Any, *, rp: str | None = None, precision: str = "ms", db: str | None = None
    ) -> None:
        self.calls += 1
        if self.down:
            self.down -= 1
            raise RetryableWriteError("down", retry_after_s=0.0)
        if len(lines) > self.max_lines:
            raise PayloadTooLargeError(413, "too large")
        good = [ln for ln in lines if "BAD" not in ln]
        self.stored += [(rp, ln) for ln in good]  # like InfluxDB 1.x: partial write
        if len(good) != len(lines):
            raise PermanentWriteError(400, "partial write: unable to parse")

    def ensure_layout(self, raw_days: int = 30) -> None:
        pass


def test_413_splits_until_it_fits() -> None:
    fake = FakeInfluxWriter(max_lines=3)
    lines = [f"m f={i}.0 {i}" for i in range(10)]
    out = write_lines(fake, lines, "raw", lambda ln, e: pytest.fail("nothing to drop"))
    assert out.written == 10 and out.dropped == 0
    assert sorted(ln for _rp, ln in fake.stored) == sorted(lines)


def test_4xx_drops_only_the_offending_lines() -> None:
    fake = FakeInfluxWriter()
    lines = [f"m f={i}.0 {i}" for i in range(16)]
    lines[5] = "BAD line"
    lines[12] = "BAD again"
    dropped: list[str] = []
    out = write_lines(fake, lines, None, lambda ln, e: dropped.append(ln))
    assert dropped == ["BAD line", "BAD again"]
    assert out.written == 14 and out.dropped == 2
    assert {ln for _rp, ln in fake.stored} == {ln for ln in lines if "BAD" not in ln}


def test_retryable_errors_propagate() -> None:
    fake = FakeInfluxWriter()
    fake.down = 1
    with pytest.raises(RetryableWriteError):
        write_lines(fake, ["m f=1.0 1"], None, lambda ln, e: None)


class FakeMqtt:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.published: list[tuple[str, str]] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)

    def publish(self, topic: str, payload: str, qos: int = 0) -> None:
        self.published.append((topic, payload))


def frame(seq: int, **over: Any) -> bytes:
    p: dict[str, Any] = {
        "site": "yard1", "node": "n1", "t": NOW_MS - 10_000 + seq * 1000, "seq": seq, "dur_ms": 1000,
        "LAeq": 50.0, "LCeq": 55.0, "LZeq": 60.0, "LAFmax": 56.0, "LAFmin": 45.0, "LASmax": 54.0,
        "LCpeak": 80.0, "bands": {"1000": 47.0}, "overload": 0, "nonfinite": 0, "bass": 5.0,
        "impulsive": 0.0, "tonality": -3.0,
    }  # fmt: skip
    p.update(over)
    return wire.encode("second", p)


def make_service(fake: FakeInfluxWriter, fast: bool = True) -> tuple[IngestService, FakeMqtt]:
    cfg = parse_central_config({"ingest": {"max_backoff_s": 0.1, "fast_paths": fast}})
    svc = IngestService(cfg, influx=fake, clock_ms=lambda: NOW_MS)
    mq = FakeMqtt()
    svc._client = mq
    svc.client_id = "test"
    return svc, mq


def test_acks_only_after_every_point_is_stored_and_rejects_are_republished() -> None:
    fake = FakeInfluxWriter()
    fake.down = 2  # two failed attempts before InfluxDB answers 204
    svc, mq = make_service(fake)
    points: dict[str | None, list[str]] = {}
    items = [
        _Inbound(1, 1, "klankkast/v1/yard1/n1/second", frame(0), NOW_MS, 0),
        _Inbound(2, 1, "klankkast/v1/yard1/n1/second", b"{not json", NOW_MS, 0),
        _Inbound(3, 1, "klankkast/v1/yard1/n1/second", frame(1, LAeq=250.0), NOW_MS, 0),
        _Inbound(4, 1, "klankkast/v1/yard1/alerts", b"{}", NOW_MS, 0),
        _Inbound(5, 1, "klankkast/v1/yard1/n1/second", frame(2), NOW_MS, 0),
    ]
    n = sum(svc._process(it, points) for it in items)
    assert n == 2 and mq.acked == []
    assert svc.stats.rejected == {"bad_json": 1, "level_range": 1}
    assert [json.loads(p)["reason"] for _t, p in mq.published] == ["bad_json", "level_range"]
    assert all(t == "klankkast/v1/_rejected" for t, _p in mq.published)
    assert svc._flush(points, items)
    assert fake.calls == 3 and svc.stats.retries == 2
    assert mq.acked == [1, 2, 3, 4, 5]  # in arrival order, after the 204
    assert len(fake.stored) == 2 and all(rp == "raw" for rp, _ln in fake.stored)


def test_stopping_during_an_outage_acks_nothing() -> None:
    fake = FakeInfluxWriter()
    fake.down = 10**9
    svc, mq = make_service(fake)
    points: dict[str | None, list[str]] = {}
    item = _Inbound(1, 1, "klankkast/v1/yard1/n1/second", frame(0), NOW_MS, 0)
    svc._process(item, points)
    svc._stop.set()
    assert svc._flush(points, [item]) is False
    assert mq.acked == []


def test_messages_of_an_older_connection_are_not_acked() -> None:
    """After a reconnect the broker redelivers them; acking the old packet id could ack another message."""
    fake = FakeInfluxWriter()
    svc, mq = make_service(fake)
    svc._gen = 2
    points: dict[str | None, list[str]] = {}
    items = [
        _Inbound(7, 1, "klankkast/v1/yard1/n1/second", frame(0), NOW_MS, 1),
        _Inbound(8, 1, "klankkast/v1/yard1/n1/second", frame(1), NOW_MS, 2),
    ]
    for it in items:
        svc._process(it, points)
    assert svc._flush(points, items)
    assert mq.acked == [8]


def msg(kind: str, seq: int = 0, state: str = "online", t_ms: int = NOW_MS) -> wire.Message:
    if kind == "status":
        payload: dict[str, Any] = {"state": state, "t": t_ms}
    else:
        payload = {"seq": seq, "t": t_ms}
    return wire.Message(kind=kind, site="yard1", node="n1", payload=payload)


def test_health_counts_seq_gaps_per_hour_and_transitions() -> None:
    hour = NOW_MS - NOW_MS % 3_600_000
    h = HealthTracker()
    # seqs 100..109 except 103 and 107: 2 missing numbers between min and max
    for s in [100, 101, 102, 104, 105, 106, 108, 109]:
        h.observe(msg("second", s, t_ms=hour + (s - 100) * 1000), recv_ms=hour + 60_000)
    h.observe(msg("second", 101, t_ms=hour + 1000), recv_ms=hour + 61_000)  # redelivery: no effect
    h.observe(msg("status", state="offline"), recv_ms=hour + 70_000)
    lines = h.snapshot(hour + 80_000)
    transitions = [ln for ln in lines if "event=transition" in ln]
    assert len(transitions) == 2  # unknown -> online (first frame), online -> offline (last will)
    assert 'state="online"' in transitions[0] and "online=0i" in transitions[1]
    (snap,) = [ln for ln in lines if "period=snapshot" in ln]
    assert "seq_gaps_hour=2i" in snap and "frames_hour=8i" in snap and "online=0i" in snap
    assert "age_s=19.0" in snap and f"last_seen_ms={hour + 61_000}i" in snap
    (hourly,) = [ln for ln in lines if "period=hour" in ln]
    assert hourly.endswith(f" {hour}") and "seq_gaps=2i" in hourly and "seq_min=100i" in hourly
    # a later snapshot rewrites nothing hourly unless new frames arrived
    assert not [ln for ln in h.snapshot(hour + 90_000) if "period=hour" in ln]


def test_encode_chunk_in_order_with_reasons() -> None:
    from klankkast.ingest.validate import encode_chunk

    items = [
        ("klankkast/v1/yard1/n1/second", frame(0)),
        ("klankkast/v1/yard1/alerts", b"{}"),
        ("klankkast/v1/yard1/n1/second", frame(1, LAeq=-21.0)),
        ("klankkast/v1/yard1/n1/second", b"\xff"),
        ("klankkast/v1/yard1/n1/second", frame(2)),
    ]
    res = encode_chunk(items, NOW_MS, 30 * 86_400_000)
    assert [r[0] for r in res] == [True, None, False, False, True]
    assert res[2][1] == "level_range" and res[3][1] == "bad_json"
    ok = res[4]
    assert ok[1] == "raw" and ok[2].startswith("second,node=n1,site=yard1 ")
    assert ok[3:] == ("second", "yard1", "n1", NOW_MS - 10_000 + 2000, 2, None)


@pytest.mark.parametrize("fast", [True, False], ids=["fast_paths", "plain"])
def test_shutdown_takes_in_what_had_arrived_and_acks_it(fast: bool) -> None:
    """On stop the writer drains the queue as it was, writes, acks, and returns; with the
    fast paths on or off ([ingest] fast_paths)."""
    fake = FakeInfluxWriter()
    svc, mq = make_service(fake, fast)
    for seq in range(1, 8):
        svc._queue.put(_Inbound(seq, 1, "klankkast/v1/yard1/n1/second", frame(seq), NOW_MS, 0))
    svc._stop.set()
    svc._writer_loop()
    assert mq.acked == list(range(1, 8))
    assert len([ln for rp, ln in fake.stored if rp == "raw"]) == 7
    assert svc.backlog() == 0 and svc.stats.taken == svc.stats.acked == 7


def fields_of_lines(stored: list[tuple[str | None, str]]) -> list[tuple[Any, ...]]:
    """(rp, head, sorted fields, t) of each stored frame: the fast path groups fields by
    type, line protocol does not care about their order."""
    out = []
    for rp, ln in stored:
        if rp != "raw":
            continue  # the ingest's own metrics and node health (wall clock, latency)
        head, body, t = ln.split(" ")
        out.append((rp, head, sorted(body.split(",")), t))
    return out


def test_fast_paths_on_and_off_store_and_acknowledge_the_same() -> None:
    """The same messages (valid frames, a rejected one, an ignored topic) through the
    writer with [ingest] fast_paths on and off: the same points, the same acks, the same
    rejections."""
    results = []
    for fast in (True, False):
        fake = FakeInfluxWriter()
        svc, mq = make_service(fake, fast)
        msgs = [(TOPIC, frame(seq)) for seq in range(1, 6)]
        msgs += [(TOPIC, frame(6, LAeq=250.0)), ("klankkast/v1/yard1/alerts", b"{}")]
        for mid, (topic, data) in enumerate(msgs, 1):
            svc._queue.put(_Inbound(mid, 1, topic, data, NOW_MS, 0))
        svc._stop.set()
        svc._writer_loop()
        results.append(
            (fields_of_lines(fake.stored), mq.acked, dict(svc.stats.rejected), svc.stats.ignored)
        )
    assert results[0] == results[1]
    assert len(results[0][0]) == 5 and results[0][2] == {"level_range": 1}


# ---- acknowledgements to the nodes (end to end) ------------------------------------

ACK = "klankkast/v1/yard1/n1/ack"
TOPIC = "klankkast/v1/yard1/n1/second"


def make_acking(acks: bool = True) -> tuple[IngestService, FakeMqtt, FakeInfluxWriter]:
    fake = FakeInfluxWriter()
    cfg = parse_central_config({"ingest": {"max_backoff_s": 0.1, "acks": acks}})
    svc = IngestService(cfg, influx=fake, clock_ms=lambda: NOW_MS)
    mq = FakeMqtt()
    svc._client = mq
    svc.client_id = "test"
    return svc, mq, fake


def node_acks(mq: FakeMqtt) -> list[tuple[str, tuple[str, list[tuple[int, int]]]]]:
    return [(t, wire.decode_ack(p)) for t, p in mq.published if t.endswith("/ack")]  # type: ignore[arg-type]


def test_frames_are_confirmed_to_their_node_only_after_the_204() -> None:
    """Seq 0, 1 (refused: level out of range) and 2; InfluxDB fails twice, then 204:
    nothing is confirmed before; after, one message names seq 0-2 (the refused frame
    too: sending it again cannot change the outcome). An ack coming back on the
    subscription is ignored, and a frame without a readable seq is not confirmed."""
    svc, mq, fake = make_acking()
    fake.down = 2
    points: dict[str | None, list[str]] = {}
    items = [
        _Inbound(1, 1, TOPIC, frame(0), NOW_MS, 0),
        _Inbound(2, 1, TOPIC, frame(1, LAeq=250.0), NOW_MS, 0),
        _Inbound(3, 1, TOPIC, b"{not json", NOW_MS, 0),
        _Inbound(4, 1, ACK, wire.encode_ack("second", [(0, 0)]), NOW_MS, 0),
        _Inbound(5, 1, TOPIC, frame(2), NOW_MS, 0),
    ]
    assert sum(svc._process(it, points) for it in items) == 2
    assert svc.stats.ignored == 1
    svc._send_node_acks()
    assert node_acks(mq) == []
    assert svc._flush(points, items)
    assert node_acks(mq) == []  # the flusher thread sends them (here: by hand)
    svc._send_node_acks()
    assert node_acks(mq) == [(ACK, ("second", [(0, 2)]))]
    assert svc.stats.node_acks == 1


def test_nothing_is_confirmed_when_the_write_never_succeeds() -> None:
    svc, mq, fake = make_acking()
    fake.down = 10**9
    points: dict[str | None, list[str]] = {}
    item = _Inbound(1, 1, TOPIC, frame(0), NOW_MS, 0)
    svc._process(item, points)
    svc._stop.set()
    assert svc._flush(points, [item]) is False
    svc._send_node_acks(final=True)
    assert node_acks(mq) == []


def test_acks_off_sends_none() -> None:
    svc, mq, _fake = make_acking(acks=False)
    points: dict[str | None, list[str]] = {}
    item = _Inbound(1, 1, TOPIC, frame(0), NOW_MS, 0)
    svc._process(item, points)
    assert svc._flush(points, [item])
    svc._send_node_acks(final=True)
    assert node_acks(mq) == [] and mq.acked == [1]
