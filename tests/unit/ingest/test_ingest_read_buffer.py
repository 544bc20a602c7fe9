"""The ingest's buffered reads hand paho every packet, whole, in order.

A real paho client reads MQTT v5 PUBLISH packets from one end of a local socket pair
(no network, no broker); the bytes arrive in arbitrary pieces, so packets straddle
the reads and the buffer's end.
"""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from klankkast.ingest.service import _ReadBuffer


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
        payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 50, 127, 128, 700])))
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
