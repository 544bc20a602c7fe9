"""The ingest's buffered reads and direct PUBLISH path lose, repeat and reorder nothing.

A real paho client reads MQTT v5 packets from one end of a local socket pair (no
network, no broker); the bytes arrive in arbitrary pieces, so packets straddle the
reads and the buffer's end. ``take_publishes`` is checked against paho's own PUBLISH
parser (``paho.mqtt._packet.decode_publish``) on packets built by hand from the MQTT 5
specification (§3.3), and must leave to paho everything paho keeps state for or that
it does not fully understand.
"""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from klankkast.ingest._pahofast import ReadBuffer as _ReadBuffer
from klankkast.ingest._pahofast import take_publishes


def varint(n: int) -> bytes:
    """MQTT Variable Byte Integer (MQTT 5 §1.5.5)."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, mid: int) -> bytes:
    """QoS 1 PUBLISH of MQTT 5 (§3.3): topic, packet id, empty properties, payload."""
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + struct.pack("!H", mid) + b"\x00" + payload
    return bytes([0x32]) + varint(len(body)) + body


def test_every_packet_arrives_whole_and_in_order_across_piecewise_reads() -> None:
    rng = random.Random(5)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    got: list[tuple[str, bytes, int]] = []

    def on_message(c: Any, u: Any, msg: Any) -> None:
        got.append((msg.topic, msg.payload, msg.mid))

    client.on_message = on_message
    assert _ReadBuffer.install(client) is not None
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    sent = []
    stream = bytearray()
    for i in range(3000):
        payload = rng.randbytes(rng.choice([0, 1, 50, 127, 128, 700]))
        topic = f"klankkast/v1/yard1/n{i % 7}/second"
        sent.append((topic, payload, i % 65535 + 1))
        stream += publish_packet(topic, payload, i % 65535 + 1)
    pos = 0
    while pos < len(stream):
        n = rng.choice([1, 2, 3, 100, 4096, 70_000])
        theirs.sendall(stream[pos : pos + n])
        pos += n
        for _ in range(3):  # what one select() wake-up does, a few times
            client.loop_read()
    for _ in range(10):
        client.loop_read()
    assert got == sent
    ours.close()
    theirs.close()


def test_a_new_connection_starts_with_an_empty_buffer() -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    got: list[str] = []
    client.on_message = lambda c, u, msg: got.append(msg.topic)
    _ReadBuffer.install(client)
    a1, b1 = socket.socketpair()
    a1.setblocking(False)
    client._sock = a1
    whole = publish_packet("klankkast/v1/s/n/second", b"{}", 1)
    b1.sendall(whole + whole[:5])  # one packet and the start of another
    client.loop_read()
    assert got == ["klankkast/v1/s/n/second"]
    a2, b2 = socket.socketpair()  # reconnect: paho resets its packet state, we our buffer
    a2.setblocking(False)
    client._sock = a2
    client._in_packet = {
        "command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
        "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0,
    }  # fmt: skip
    b2.sendall(publish_packet("klankkast/v1/s/n/minute", b"{}", 1))
    client.loop_read()
    assert got == ["klankkast/v1/s/n/second", "klankkast/v1/s/n/minute"]
    for s in (a1, b1, a2, b2):
        s.close()


# -- the direct PUBLISH path (take_publishes / ReadBuffer with a consumer) ----------
def prop_bytes(rng: random.Random) -> bytes:
    """Random MQTT 5 PUBLISH properties a server may send (§3.3.2.3), none a topic alias."""

    def text(n: int) -> bytes:
        raw = bytes(rng.randrange(32, 127) for _ in range(n))
        return struct.pack("!H", len(raw)) + raw

    out = b""
    once = [0x01, 0x02, 0x03, 0x08, 0x09]  # the rest may repeat (§3.3.2.3)
    pids = rng.sample(once, rng.choice([0, 0, 1, 3])) + [0x0B, 0x26] * rng.randrange(2)
    for pid in rng.sample(pids, len(pids)):
        if pid == 0x01:
            out += bytes([pid, rng.randrange(2)])
        elif pid == 0x02:
            out += bytes([pid]) + struct.pack("!I", rng.randrange(2**32))
        elif pid == 0x0B:
            out += bytes([pid]) + varint(rng.choice([1, 127, 128, 16_383, 16_384, 268_435_455]))
        elif pid == 0x26:
            out += bytes([pid]) + text(rng.randrange(8)) + text(rng.randrange(300))
        else:
            out += bytes([pid]) + text(rng.randrange(200))
    return varint(len(out)) + out


def publish_v5(
    topic: bytes, payload: bytes, mid: int, qos: int, props: bytes, flags: int = 0
) -> bytes:
    """A PUBLISH of MQTT 5 (§3.3) with any QoS, DUP/RETAIN ``flags`` and raw properties."""
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    body += props + payload
    return bytes([0x30 | qos << 1 | flags]) + varint(len(body)) + body


def paho_decode(packet: bytes) -> tuple[int, int, str, bytes]:
    """paho's own parser (the reference): (mid, qos, topic, payload) of one whole packet."""
    from paho.mqtt import _packet

    i = 1
    while packet[i] & 0x80:
        i += 1
    res = _packet.decode_publish(packet[0], packet[i + 1 :], mqtt.MQTTv5)
    return res.mid, res.qos, res.topic.decode(), res.payload


def test_take_publishes_reads_what_paho_reads() -> None:
    """Every QoS 0/1 PUBLISH, with or without properties, is taken whole, as paho parses it."""
    rng = random.Random(11)
    stream = b""
    want = []
    for i in range(2000):
        qos = rng.randrange(2)
        topic = f"klankkast/v1/y{i % 5}/n{i % 9}/second".encode()
        payload = rng.randbytes(rng.choice([0, 1, 127, 128, 2000]))
        pkt = publish_v5(topic, payload, rng.randrange(1, 65536), qos, prop_bytes(rng),
                         rng.choice([0, 0x01, 0x08, 0x09]))  # fmt: skip
        want.append(paho_decode(pkt))
        stream += pkt
    pos, got = take_publishes(stream, 0, True)
    assert pos == len(stream)
    assert got == want


def test_take_publishes_reads_mqtt_311_packets() -> None:
    """Without properties (MQTT 3.1.1 §3.3) the payload follows the packet id directly."""
    body = struct.pack("!H", 3) + b"a/b" + struct.pack("!H", 7) + b"payload"
    pkts = [bytes([0x32]) + varint(len(body)) + body]
    body0 = struct.pack("!H", 3) + b"c/d" + b"p0"
    pkts.append(bytes([0x30]) + varint(len(body0)) + body0)
    pos, got = take_publishes(b"".join(pkts), 0, False)
    assert pos == sum(map(len, pkts))
    assert got == [(7, 1, "a/b", b"payload"), (0, 0, "c/d", b"p0")]


@pytest.mark.parametrize(
    "other",
    [
        publish_v5(b"t/q2", b"{}", 9, 2, b"\x00"),  # QoS 2: paho keeps state for it
        publish_v5(b"t/alias", b"{}", 9, 1, b"\x03\x23\x00\x01"),  # a topic alias
        publish_v5(b"", b"{}", 9, 1, b"\x00"),  # empty topic
        publish_v5(b"t/\xff", b"{}", 9, 1, b"\x00"),  # not UTF-8
        publish_v5(b"t/x", b"{}", 9, 1, b"\x02\x17\x01"),  # 0x17: not a PUBLISH property
        publish_v5(b"t/x", b"{}", 9, 1, b"\x05\x26\x00\x01a"),  # user property cut short
        bytes([0xD0, 0x00]),  # PINGRESP
        bytes([0x90, 0x04, 0x00, 0x01, 0x00, 0x01]),  # SUBACK
    ],
)
def test_take_publishes_stops_at_what_it_leaves_to_paho(other: bytes) -> None:
    first = publish_v5(b"t/1", b"one", 1, 1, b"\x00")
    last = publish_v5(b"t/2", b"two", 2, 1, b"\x00")
    pos, got = take_publishes(first + other + last, 0, True)
    assert (pos, got) == (len(first), [(1, 1, "t/1", b"one")])
    assert take_publishes(first + other + last, pos, True) == (pos, [])


def test_take_publishes_never_takes_a_partial_packet() -> None:
    rng = random.Random(3)
    whole = publish_v5(b"klankkast/v1/y/n/second", bytes(300), 5, 1, prop_bytes(rng))
    head = publish_v5(b"t/0", b"zero", 4, 0, b"\x00")
    for cut in range(len(whole)):
        assert take_publishes(head + whole[:cut], 0, True) == (len(head), [(0, 0, "t/0", b"zero")])


def test_direct_path_delivers_every_message_once_in_order_beside_paho() -> None:
    """A real paho client on a socket pair; QoS 2 and alias packets still go through paho.

    Messages are collected from both routes into one list: the direct path must not
    drop, repeat or reorder anything around the packets it leaves to paho, and paho
    must still answer a QoS 2 PUBLISH with PUBREC (§4.3.3).
    """
    rng = random.Random(8)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    got: list[tuple[str, bytes, int]] = []
    runs: list[int] = []

    seen_by_keepalive: list[float] = []  # paho's keepalive clock when a run arrives

    def on_publishes(msgs: list[Any]) -> None:
        runs.append(len(msgs))
        seen_by_keepalive.append(client._last_bytes_received)
        got.extend((topic, payload, mid) for mid, _qos, topic, payload in msgs)

    client.on_message = lambda c, u, msg: got.append((msg.topic, msg.payload, msg.mid))
    buf = _ReadBuffer.install(client, on_publishes)
    assert buf is not None
    paho_loop_read = buf._loop_read

    def paho_then_forget(max_packets: int) -> Any:
        # whatever paho itself handled set the clock; forget it, so that only the
        # direct path can have set it when a run arrives
        rc = paho_loop_read(max_packets)
        client._last_bytes_received = 0.0
        return rc

    buf._loop_read = paho_then_forget
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    sent = []
    stream = bytearray()
    n_q2 = 0
    for i in range(3000):
        topic = f"klankkast/v1/yard1/n{i % 7}/second"
        payload = rng.randbytes(rng.choice([0, 50, 700]))
        mid = i % 65535 + 1
        qos = 2 if i % 97 == 0 else rng.randrange(2)
        n_q2 += qos == 2
        sent.append((topic, payload, mid if qos else 0))
        stream += publish_v5(topic.encode(), payload, mid, qos, prop_bytes(rng))
    pos = 0
    while pos < len(stream):
        n = rng.choice([1, 2, 3, 100, 4096, 70_000])
        theirs.sendall(stream[pos : pos + n])
        pos += n
        for _ in range(3):
            client.loop_read()
    for _ in range(10):
        client.loop_read()
    # a QoS 2 message reaches on_message only after PUBREL (not sent here); the rest
    # arrive once each, in order
    assert got == [s for k, s in enumerate(sent) if k % 97 != 0]
    assert sum(runs) > len(sent) // 2  # most went the direct way
    assert seen_by_keepalive and min(seen_by_keepalive) > 0.0  # the direct path tells keepalive
    client.loop_write()
    pubrecs = theirs.recv(1 << 20)
    assert pubrecs.count(b"\x50\x02") >= n_q2  # PUBREC (fixed header 0x50, length 2) per QoS 2
    ours.close()
    theirs.close()
