"""Acknowledgements to the nodes: ranges, coalescing (<= 1 message per node per second) and
the payload (pure; the ingest's use of them is in test_ingest_writer.py)."""

from __future__ import annotations

import json

import pytest

from klankkast.ingest.acks import AckCoalescer, to_ranges
from klankkast.sensor import wire

ACK = "klankkast/v1/yard1/n1/ack"
TOPIC = "klankkast/v1/yard1/n1/second"


def test_to_ranges_merges_runs_and_ignores_order_and_repeats() -> None:
    assert to_ranges([7, 1, 3, 2, 3, 9, 8]) == [(1, 3), (7, 9)]
    assert to_ranges([]) == []
    assert to_ranges([0]) == [(0, 0)]


def test_one_message_per_node_per_second_whatever_arrives() -> None:
    """Frames 0-9 at t=0 s and 10-19 at t=0.5 s give one message at 0 s ([0,9]) and,
    not before t=1.0 s, one with [10,19]; another node is not held up by the first."""
    c = AckCoalescer(interval_s=1.0)
    c.add([("yard1", "n1", "second", s) for s in range(10)], 0.0)
    assert c.due(0.0) == [(ACK, b'{"schema":1,"kind":"second","ranges":[[0,9]]}')]
    c.add([("yard1", "n1", "second", s) for s in range(10, 20)], 0.5)
    c.add([("yard1", "n2", "second", 4)], 0.5)
    assert c.due(0.5) == [
        ("klankkast/v1/yard1/n2/ack", b'{"schema":1,"kind":"second","ranges":[[4,4]]}')
    ]
    assert c.due(0.99) == []
    assert c.next_due_s() == pytest.approx(1.0)
    assert c.due(1.0) == [(ACK, b'{"schema":1,"kind":"second","ranges":[[10,19]]}')]
    assert c.due(5.0) == [] and c.next_due_s() is None
    assert (c.messages, c.frames) == (3, 21)


def test_kinds_take_turns_oldest_first() -> None:
    c = AckCoalescer()
    c.add([("yard1", "n1", "minute", 3)], 0.0)
    c.add([("yard1", "n1", "second", 180), ("yard1", "n1", "second", 181)], 0.2)
    (first,) = c.due(0.2)
    assert wire.decode_ack(first[1]) == ("minute", [(3, 3)])
    assert c.due(0.9) == []
    (second,) = c.due(1.2)
    assert wire.decode_ack(second[1]) == ("second", [(180, 181)])


def test_more_ranges_than_fit_one_message_wait_for_the_next_slot() -> None:
    n = wire.ACK_MAX_RANGES + 3
    c = AckCoalescer()
    c.add([("yard1", "n1", "second", 2 * i) for i in range(n)], 0.0)  # every other seq
    (m1,) = c.due(0.0)
    _kind, ranges = wire.decode_ack(m1[1])
    assert len(ranges) == wire.ACK_MAX_RANGES and ranges[-1] == (2 * (n - 4), 2 * (n - 4))
    (m2,) = c.due(1.0)
    assert wire.decode_ack(m2[1])[1] == [(2 * i, 2 * i) for i in range(n - 3, n)]


def test_ack_payload_roundtrip_and_refusals() -> None:
    data = wire.encode_ack("minute", [(0, 5), (7, 7)])
    assert json.loads(data) == {"schema": 1, "kind": "minute", "ranges": [[0, 5], [7, 7]]}
    assert wire.decode_ack(data) == ("minute", [(0, 5), (7, 7)])
    for bad, reason in (
        (b'{"schema":1,"kind":"status","ranges":[[0,1]]}', "unknown_kind"),
        (b'{"schema":1,"kind":"second","ranges":[[3,1]]}', "bad_ranges"),
        (b'{"schema":1,"kind":"second","ranges":[[0,4],[4,6]]}', "bad_ranges"),
        (b'{"schema":1,"kind":"second","ranges":[]}', "bad_ranges"),
        (b'{"schema":1,"kind":"second","ranges":[[-1,2]]}', "bad_type"),
        (b'{"schema":1,"kind":"second","ranges":[[true,2]]}', "bad_type"),
        (b'{"schema":2,"kind":"second","ranges":[[0,1]]}', "schema_version"),
        (b'{"schema":1,"kind":"second","ranges":[[0,1]],"x":1}', "unknown_field"),
        (b"[1]", "not_object"),
        (b"\xff", "bad_json"),
    ):
        with pytest.raises(wire.SchemaError) as err:
            wire.decode_ack(bad)
        assert err.value.reason == reason, bad
    assert wire.topic("yard1", "n1", "ack") == ACK
    assert wire.is_ack_topic(ACK) and not wire.is_ack_topic(TOPIC)
