"""Does a broker let this client in, and what does it answer? Shared by the checks of
the node (``klankkast-sensor check``), the ingest and the alerts, so that each names a
broker failure the same way: name resolution, refused, TLS verification, no answer,
then the broker's own reason codes for the login, the subscriptions and a publish.

paho-mqtt is imported when a probe runs; imports no part.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["connect_error", "probe_mqtt"]


def connect_error(url: str, err: BaseException) -> str:
    """One line naming why a TCP/TLS connection to the broker failed: name resolution,
    refused, TLS verification (and against which CA), another TLS failure, no answer."""
    if isinstance(err, socket.gaierror):
        return f"mqtt: name resolution failed for {url}: {err.strerror or err}"
    if isinstance(err, ConnectionRefusedError):
        return f"mqtt: connection refused by {url} (is the broker listening on that port?)"
    if isinstance(err, ssl.SSLCertVerificationError):
        return (
            f"mqtt: TLS verification of {url} failed: {err.verify_message} "
            "(check [mqtt] ca_file: it must sign the broker's certificate)"
        )
    if isinstance(err, ssl.SSLError):
        return f"mqtt: TLS handshake with {url} failed: {err.reason or err}"
    if isinstance(err, TimeoutError):
        return f"mqtt: no answer from {url} (firewall, or a wrong port?)"
    return f"mqtt: cannot connect to {url}: {type(err).__name__}: {err}"


def probe_mqtt(
    client: Any,
    host: str,
    port: int,
    url: str,
    topics: Sequence[str],
    timeout_s: float,
    publish: tuple[str, str | bytes] | None = None,
    listen_s: float = 0.0,
) -> tuple[dict[str, Any], list[str]]:
    """Connect ``client`` with clean start and no session kept, subscribe to ``topics``
    (QoS 1; none: just log in) and, once subscribed, publish ``publish`` = (topic, body) at QoS 1 and
    listen ``listen_s`` for messages (the topics heard go to ``messages``: retained
    ones arrive at once when the user may read them).

    Returns the broker's answers (the reason codes under ``connect``, ``suback`` and
    ``puback``; the exception of a failed connection under ``error``) for the caller to name in its own words, and the problems of reaching
    it at all (a failed connection, no answer in time).
    """
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions

    problems: list[str] = []
    done = threading.Event()
    published = threading.Event()
    result: dict[str, Any] = {"messages": set()}

    def on_connect(c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        result["connect"] = rc
        if rc.is_failure:
            done.set()
            return
        if not topics:  # a login (and a publish) only
            result["suback"] = []
            done.set()
            return
        c.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])

    def on_subscribe(c: Any, u: Any, mid: Any, rcs: Any, props: Any) -> None:
        result["suback"] = rcs
        done.set()

    def on_publish(c: Any, u: Any, mid: Any, rc: Any, props: Any) -> None:
        result["puback"] = rc
        published.set()

    def on_message(c: Any, u: Any, msg: Any) -> None:
        result["messages"].add(msg.topic)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    try:
        client.connect(host, port, keepalive=30, clean_start=True, properties=props)
    except Exception as err:
        result["error"] = err
        return result, [connect_error(url, err)]
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            if "connect" not in result:
                problems.append(f"mqtt: no answer from {url} within {timeout_s:g} s")
            else:
                problems.append("mqtt: connected but the subscription got no answer")
        if publish is not None and "suback" in result:
            client.publish(publish[0], publish[1], qos=1)
            if not published.wait(timeout_s):
                problems.append(f"mqtt: no PUBACK for a test message to {publish[0]}")
        if listen_s > 0 and "suback" in result:
            time.sleep(listen_s)  # retained messages are sent right after the SUBACK
    finally:
        client.disconnect()
        client.loop_stop()
    return result, problems
