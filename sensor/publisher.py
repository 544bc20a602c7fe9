"""MQTT publishing: the :class:`Publisher` role and its paho-mqtt 2.x adapter.

:class:`PahoPublisher` speaks MQTT v5 with a persistent session (clean start off,
session expiry set), optional TLS (CA file, optional client certificate),
username + password, a retained last will, and reconnects with exponential
backoff (paho's network thread). It does no flow control itself: the
:class:`~klankkast.sensor.delivery.Dispatcher` never has more messages in flight
than :attr:`PahoPublisher.window` (the smaller of ``max_inflight`` and the broker's
Receive Maximum), so paho never queues beyond its limit and never drops a publish.

Nothing connects in ``__init__``; :meth:`start` does.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["AckHandler", "FakePublisher", "MessageHandler", "PahoPublisher", "Publisher", "Will"]

log = logging.getLogger(__name__)

#: ``on_ack(mid, reason_code_value)``; values >= 0x80 are failures (MQTT v5 §3.4.2.1).
AckHandler = Callable[[int, int], None]
#: ``on_message(topic, payload)`` for a subscribed topic, called on the network thread.
MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True


class Publisher(Protocol):
    """Role: publishes to a broker and reports acknowledgements by message id."""

    def set_handlers(
        self,
        on_ack: AckHandler,
        on_connect: Callable[[], None],
        on_disconnect: Callable[[], None],
    ) -> None: ...

    def subscribe(self, topic: str, on_message: MessageHandler) -> None: ...

    def start(self) -> None: ...

    @property
    def connected(self) -> bool: ...

    @property
    def window(self) -> int: ...

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None: ...

    def close(self) -> None: ...


class _Handlers:
    """The three callbacks a :class:`Publisher` calls, as :meth:`set_handlers` sets them."""

    _on_ack: AckHandler = staticmethod(lambda mid, rc: None)
    _on_connect: Callable[[], None] = staticmethod(lambda: None)
    _on_disconnect: Callable[[], None] = staticmethod(lambda: None)

    def set_handlers(
        self,
        on_ack: AckHandler,
        on_connect: Callable[[], None],
        on_disconnect: Callable[[], None],
    ) -> None:
        self._on_ack, self._on_connect, self._on_disconnect = on_ack, on_connect, on_disconnect


class PahoPublisher(_Handlers):
    """:class:`Publisher` on paho-mqtt 2.x (``CallbackAPIVersion.VERSION2``, MQTT v5)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        keepalive_s: int = 30,
        session_expiry_s: int = 7 * 24 * 3600,
        max_inflight: int = 20,
        will: Will | None = None,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 30,
    ) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.tls = tls
        self.username, self.password = username, password
        self.ca_file, self.cert_file, self.key_file = ca_file, cert_file, key_file
        self.keepalive_s = keepalive_s
        self.session_expiry_s = session_expiry_s
        self.max_inflight = max_inflight
        self.will = will
        self.reconnect = (reconnect_min_s, reconnect_max_s)
        self._client: Any = None
        self._connected = threading.Event()
        self._window = max_inflight
        self.last_error: str | None = None
        self.connects = 0
        self._closing = False
        self._subscriptions: dict[str, MessageHandler] = {}

    def subscribe(self, topic: str, on_message: MessageHandler) -> None:
        """Subscribe (QoS 1, in the persistent session) on every connect; call before start."""
        self._subscriptions[topic] = on_message

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def window(self) -> int:
        return self._window

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def start(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        if self.username:
            c.username_pw_set(self.username, self.password)
        if self.tls:
            c.tls_set(
                ca_certs=self.ca_file,
                certfile=self.cert_file,
                keyfile=self.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if self.will is not None:
            c.will_set(self.will.topic, self.will.payload, qos=1, retain=self.will.retain)
        c.reconnect_delay_set(*self.reconnect)
        c.max_inflight_messages_set(self.max_inflight)
        # The dispatcher keeps at most `window` in flight plus a few status messages;
        # a generous cap means paho refuses (rc QUEUE_SIZE, which we see) instead of
        # holding an unbounded queue.
        c.max_queued_messages_set(self.max_inflight + 64)
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_publish = self._handle_publish
        c.on_message = self._handle_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        self._client = c
        c.connect_async(
            self.host, self.port, keepalive=self.keepalive_s, clean_start=False, properties=props
        )
        c.loop_start()

    def _handle_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            self.last_error = f"connect refused: {reason_code}"
            log.warning(
                "broker %s:%s refused the connection: %s", self.host, self.port, reason_code
            )
            return
        recv_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        self._window = max(1, min(self.max_inflight, int(recv_max or 65535)))
        self.last_error = None
        self.connects += 1
        log.info(
            "connected to %s:%s (session present: %s, window %d)",
            self.host,
            self.port,
            getattr(flags, "session_present", "?"),
            self._window,
        )
        for topic in self._subscriptions:
            # again on every connect: a broker that lost its state (no persistence
            # file, or one saved before this subscription) would not route to us
            client.subscribe(topic, qos=1)
        self._connected.set()
        self._on_connect()

    def _handle_message(self, client: Any, userdata: Any, msg: Any) -> None:
        handler = self._subscriptions.get(msg.topic)
        if handler is not None:
            handler(msg.topic, bytes(msg.payload))

    def _handle_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._closing:
            log.warning("disconnected from %s:%s: %s", self.host, self.port, reason_code)
            self.last_error = f"disconnected: {reason_code}"
        self._on_disconnect()

    def _handle_publish(
        self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        self._on_ack(mid, int(getattr(reason_code, "value", 0)))

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        """Publish with QoS 1; the message id, or None when paho refused to queue it."""
        import paho.mqtt.client as mqtt

        if self._client is None:
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("paho refused a publish on %s: %s", topic, mqtt.error_string(info.rc))
            return None
        return int(info.mid)

    def close(self) -> None:
        if self._client is None:
            return
        self._closing = True
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._connected.clear()
            self._client = None


class FakePublisher(_Handlers):
    """In-process :class:`Publisher` for tests and benchmarks: acks everything at once
    (or holds acks while ``hold`` is set), records what was published."""

    def __init__(self, window: int = 20, connected: bool = True) -> None:
        self._window = window
        self._connected = connected
        self.sent: list[tuple[str, bytes, bool]] = []
        self.hold = False
        self.held: list[int] = []
        self.reason = 0
        self._mid = 0
        self.max_outstanding = 0
        self._outstanding: set[int] = set()
        self.subscriptions: dict[str, MessageHandler] = {}

    def subscribe(self, topic: str, on_message: MessageHandler) -> None:
        self.subscriptions[topic] = on_message

    def deliver(self, topic: str, payload: bytes) -> None:
        """Hand a message to the handler of a subscribed topic (what the broker would do)."""
        self.subscriptions[topic](topic, payload)

    def start(self) -> None:
        if self._connected:
            self._on_connect()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def window(self) -> int:
        return self._window

    def set_connected(self, value: bool) -> None:
        self._connected = value
        (self._on_connect if value else self._on_disconnect)()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        self._mid += 1
        self.sent.append((topic, payload, retain))
        self._outstanding.add(self._mid)
        self.max_outstanding = max(self.max_outstanding, len(self._outstanding))
        if self.hold:
            self.held.append(self._mid)
        else:
            self._ack(self._mid)
        return self._mid

    def _ack(self, mid: int) -> None:
        self._outstanding.discard(mid)
        self._on_ack(mid, self.reason)

    def release(self) -> None:
        held, self.held = self.held, []
        for mid in held:
            self._ack(mid)

    def close(self) -> None:
        self._connected = False
