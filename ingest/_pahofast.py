"""Faster receive and acknowledge paths for one paho client (the ingest's).

paho-mqtt is written for clarity, not for a consumer that takes in ten thousand
small PUBLISH packets a second: it reads every packet with three or four ``recv``
system calls, handles one packet per ``select`` wake-up, builds a
:class:`~paho.mqtt.properties.Properties` object, an ``MQTTMessage`` and a topic
match per message, and writes each PUBACK with its own system call. In the ingest
that made paho's network thread the bottleneck of the whole pipeline (about 80 % of
the main process's CPU went to parsing packets; see ``ingest/README.md``).

This module keeps paho for everything it is there for (connecting, TLS,
authentication, keepalive, reconnects, subscriptions, QoS 2, every other packet
type) and adds three things on top of one client's private hooks:

* :class:`ReadBuffer` serves paho's ``_sock_recv`` from 256 kB reads and, in
  ``loop_read``, goes on handling what is already buffered;
* :func:`take_publishes` parses the plain QoS 0/1 ``PUBLISH`` packets at the front
  of that buffer (MQTT 5 §3.3 / MQTT 3.1.1 §3.3) and hands them to the consumer
  in one call; anything it does not fully understand (another packet type, QoS 2,
  a topic alias, an unknown property, invalid UTF-8, an incomplete packet) stops it
  and is left to paho, which parses it as before;
* :func:`bulk_ack` queues the PUBACKs of many messages as one write.

For QoS 0 and QoS 1 with ``manual_ack=True`` paho itself does nothing with a
PUBLISH but call ``on_message`` (it keeps no state for it), so handing such a
packet to the consumer directly changes nothing else. The hooks are checked when
installing; with a paho that lacks them nothing is installed and paho works as is.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["Publish", "ReadBuffer", "bulk_ack", "take_publishes"]

#: (packet id, QoS, topic, payload) of one PUBLISH packet.
Publish = tuple[int, int, str, bytes]

_READ_SIZE: Final = 256 * 1024
#: Rounds of handling what is already buffered per wake-up of paho's network thread.
_READ_BURST: Final = 2000

# MQTT 5 §2.2.2.2: properties a PUBLISH may carry, by identifier: their size in
# bytes, or how to find it (-1 Variable Byte Integer, -2 two-byte length + data,
# -3 two such strings). Topic Alias (0x23) is absent on purpose: a packet with one is
# left to paho, as is any identifier not listed.
_PUBLISH_PROPS: Final = {0x01: 1, 0x02: 4, 0x03: -2, 0x08: -2, 0x09: -2, 0x0B: -1, 0x26: -3}


def _varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    """(value, index after) of the Variable Byte Integer at ``buf[i]`` (MQTT 5 §1.5.5).

    (-1, i) if it does not end before ``end`` or is longer than four bytes.
    """
    value = shift = 0
    j = i
    while j < end and shift <= 21:
        b = buf[j]
        j += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, j
        shift += 7
    return -1, i


def _skip_properties(buf: bytes, i: int, end: int) -> int:
    """Index after the property block of a PUBLISH starting at ``i``; -1 to leave it to paho."""
    length, i = _varint(buf, i, end)
    stop = i + length
    if length < 0 or stop > end:
        return -1
    while i < stop:
        size = _PUBLISH_PROPS.get(buf[i], 0)
        i += 1
        if size > 0:
            i += size
        elif size == -1:
            while i < stop and buf[i] & 0x80:
                i += 1
            i += 1
        elif size == -2:
            if i + 2 > stop:
                return -1
            i += 2 + ((buf[i] << 8) | buf[i + 1])
        elif size == -3:
            for _ in range(2):
                if i + 2 > stop:
                    return -1
                i += 2 + ((buf[i] << 8) | buf[i + 1])
        else:
            return -1
    return stop if i == stop else -1


def take_publishes(buf: bytes, pos: int, v5: bool) -> tuple[int, list[Publish]]:
    """Parse the whole QoS 0/1 PUBLISH packets at ``buf[pos:]``.

    Returns the index after the last packet taken and the packets. Stops (without
    error) at the first packet that is incomplete or that is anything else than a
    well-formed QoS 0/1 PUBLISH with a non-empty UTF-8 topic and, for MQTT 5
    (``v5``), only the properties a server may send without a topic alias; the
    caller leaves that packet to paho.
    """
    out: list[Publish] = []
    n = len(buf)
    append = out.append
    while pos < n:
        cmd = buf[pos]
        qos = (cmd >> 1) & 3
        if cmd >> 4 != 3 or qos > 1:
            break
        rl, i = _varint(buf, pos + 1, n)  # Remaining Length
        end = i + rl
        if end > n or rl < 2:
            break
        tend = i + 2 + ((buf[i] << 8) | buf[i + 1])
        if tend > end or tend == i + 2:
            break
        topic_b = buf[i + 2 : tend]
        i = tend
        mid = 0
        if qos:
            if i + 2 > end:
                break
            mid = (buf[i] << 8) | buf[i + 1]
            i += 2
        if v5:
            i = _skip_properties(buf, i, end)
            if i < 0:
                break
        try:
            topic = topic_b.decode("utf-8")
        except UnicodeDecodeError:
            break
        append((mid, qos, topic, buf[i:end]))
        pos = end
    return pos, out


class ReadBuffer:
    """Buffered reads (and, with a consumer, direct PUBLISH handling) for one paho client.

    Installed with :meth:`install`. Serves paho's ``_sock_recv`` from up to 256 kB
    per system call; ``loop_read`` goes on handling the packets already in the
    buffer (without reading the socket again, so a partial packet at the end waits
    for ``select`` as before). With ``on_publishes``, runs of plain QoS 0/1 PUBLISH
    packets are parsed by :func:`take_publishes` and given to it as one list, in
    order, on paho's network thread; every other packet still goes through paho. A
    new connection starts with an empty buffer.
    """

    def __init__(
        self, client: Any, on_publishes: Callable[[list[Publish]], None] | None = None
    ) -> None:
        self._client = client
        self._recv: Callable[[int], bytes] = client._sock_recv
        self._loop_read: Callable[[int], Any] = client.loop_read
        self._on_publishes = on_publishes
        self._sock: Any = None
        self._buf = b""
        self._pos = 0
        self._refill = True

    @classmethod
    def install(
        cls, client: Any, on_publishes: Callable[[list[Publish]], None] | None = None
    ) -> ReadBuffer | None:
        """Wrap ``client``'s reads; None (nothing changed) if this paho lacks the hooks.

        ``on_publishes`` (optional) receives QoS 0/1 PUBLISH packets instead of
        paho's ``on_message``; it is only used on a client with ``manual_ack``, where
        paho sends no PUBACK of its own.
        """
        hooks = ("_sock_recv", "loop_read")
        if not all(callable(getattr(client, name, None)) for name in hooks):
            return None
        if on_publishes is not None:
            packet = getattr(client, "_in_packet", None)
            if not (
                getattr(client, "_manual_ack", False)
                and isinstance(packet, dict)
                and "command" in packet
                and hasattr(client, "_protocol")
            ):
                on_publishes = None
        buf = cls(client, on_publishes)
        client._sock_recv = buf.recv
        client.loop_read = buf.loop_read
        return buf

    def recv(self, bufsize: int) -> bytes:
        sock = self._client._sock
        if sock is not self._sock:  # (re)connected: nothing buffered belongs to it
            self._sock, self._buf, self._pos = sock, b"", 0
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            if not self._refill:
                raise BlockingIOError
            buf = self._recv(_READ_SIZE)  # paho's own: SSL errors, closed socket
            if not buf:
                return buf
            pos = 0
        end = pos + bufsize
        self._buf, self._pos = buf, end
        return buf[pos:end]

    def loop_read(self, max_packets: int = 1) -> Any:
        client = self._client
        rc = self._loop_read(max_packets)
        if client._sock is not self._sock:
            return rc
        on_publishes = self._on_publishes
        v5 = client._protocol == 5 if on_publishes is not None else False
        self._refill = False
        try:
            for _ in range(_READ_BURST):
                if rc != 0 or self._pos >= len(self._buf) or client._sock is not self._sock:
                    break
                if on_publishes is not None and client._in_packet["command"] == 0:
                    pos, msgs = take_publishes(self._buf, self._pos, v5)
                    if msgs:
                        self._pos = pos
                        self._touch()
                        on_publishes(msgs)
                        continue
                rc = self._loop_read(1)
        finally:
            self._refill = True
        return rc

    def _touch(self) -> None:
        """Tell paho's keepalive that bytes arrived (what its ``_packet_read`` does)."""
        client = self._client
        mutex = getattr(client, "_msgtime_mutex", None)
        if mutex is None:
            client._last_bytes_received = time.monotonic()
            return
        with mutex:
            client._last_bytes_received = time.monotonic()


_PUBACK: Final = struct.Struct("!BBH")


def bulk_ack(client: Any, mids: Sequence[int]) -> None:
    """Send the PUBACKs of QoS 1 messages ``mids`` (in this order) in one write.

    paho's ``Client.ack`` queues one packet per message, wakes its network thread
    and writes each 4-byte PUBACK with its own system call; for thousands of messages
    per batch that costs as much as receiving them. The same packets (MQTT 3.1.1
    §3.4 / MQTT 5 §3.4: fixed header 0x40, remaining length 2, packet id; reason
    code omitted = success) are queued here as one buffer through paho's packet
    queue. Falls back to ``Client.ack`` if that internal method is missing.
    """
    if not mids:
        return
    queue_packet = getattr(client, "_packet_queue", None)
    if queue_packet is None or not getattr(client, "_manual_ack", False):
        for mid in mids:
            client.ack(mid, 1)
        return
    data = b"".join([_PUBACK.pack(0x40, 2, mid) for mid in mids])
    queue_packet(0x40, data, 0, 0)
