"""``klankkast-ingest``: run the MQTT -> InfluxDB ingest, or check its connections.

Usage::

    klankkast-ingest --config /etc/klankkast/central.toml          # run
    klankkast-ingest run --config /etc/klankkast/central.toml      # the same
    klankkast-ingest check --config /etc/klankkast/central.toml    # verify and exit

Exit status: 0 ok; 1 bad configuration or a failed check; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from klankkast.influx import (
    M_INGEST_STATS,
    RP_FOREVER,
    RP_RAW,
    PermanentWriteError,
    QueryError,
    WriteError,
    line,
)
from klankkast.ingest.config import (
    CentralConfig,
    MqttConfig,
    default_client_id,
    load_central_config,
    make_influx_client,
    make_mqtt_client,
)
from klankkast.ingest.errors import ConfigError
from klankkast.version import version as _version

__all__ = ["build_parser", "check", "check_influx", "connect_error", "main"]

log = logging.getLogger("klankkast.ingest")


EXIT_STATUSES = """exit status:
  0  run: stopped by SIGTERM/SIGINT; check: both connections, credentials and rights OK
  1  configuration error (one line naming key, value and what is allowed), a failed
     check, or the InfluxDB writer gave up
  2  usage error (unknown option, missing argument)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="klankkast-ingest",
        description=(
            "Subscribe to the klankkast node topics (MQTT v5 shared subscription "
            "$share/<share_group>/klankkast/v1/+/+/#), validate every message against the wire "
            "contract, write the levels to InfluxDB in batches and acknowledge each message only "
            "after InfluxDB stored it. Invalid messages are counted and republished to "
            "klankkast/v1/_rejected. 'check' verifies the MQTT and InfluxDB connections, "
            "credentials and permissions and says what is wrong."
        ),
        epilog=(
            "Configuration: see deploy/central/central.example.toml ([mqtt], [influxdb], "
            "[ingest]).\n\n" + EXIT_STATUSES
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"klankkast-ingest {_version()}")
    parser.add_argument(
        "command",
        nargs="?",
        choices=("run", "check"),
        default="run",
        help="run (default): run the ingest until SIGTERM/SIGINT; check: verify connections and exit",
    )
    parser.add_argument(
        "--config", "-c", required=True, metavar="FILE", help="central TOML configuration"
    )
    parser.add_argument(
        "--client-id",
        metavar="ID",
        help="MQTT client id (overrides [mqtt] client_id; must be stable per process and "
        "differ between processes of the share group)",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level (overrides [ingest] log_level)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="check: seconds per connection (default 10)",
    )
    return parser


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
    mcfg: MqttConfig,
    topics: Sequence[str],
    timeout_s: float,
    publish: tuple[str, str] | None = None,
    listen_s: float = 0.0,
) -> tuple[dict[str, Any], list[str]]:
    """Connect ``client`` with clean start and no session kept, subscribe to ``topics``
    (QoS 1) and, once subscribed, publish ``publish`` = (topic, body) at QoS 1 and
    listen ``listen_s`` for messages (the topics heard go to ``messages``: retained
    ones arrive at once when the user may read them).

    Returns the broker's answers (the reason codes under ``connect``, ``suback`` and
    ``puback``) for the caller to name in its own words, and the problems of reaching
    it at all (a failed connection, no answer in time). Shared by ``klankkast-ingest
    check`` and ``klankkast-alerts check``.
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
        client.connect(mcfg.host, mcfg.port, keepalive=30, clean_start=True, properties=props)
    except Exception as err:
        return result, [connect_error(mcfg.url, err)]
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            if "connect" not in result:
                problems.append(f"mqtt: no answer from {mcfg.url} within {timeout_s:g} s")
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


def _check_mqtt(cfg: CentralConfig, client_id: str, timeout_s: float) -> list[str]:
    """Connect, subscribe to the node topics and publish to the rejected topic.

    Uses its own client id with clean start and no session kept, and subscribes
    *without* the share group (the same topic filter and ACL check): a member of
    the group would take a share of the live messages away from the ingest.
    """
    from klankkast.ingest.service import SUBSCRIPTION

    client = make_mqtt_client(cfg.mqtt, client_id=f"{client_id}-check"[:64])
    ing = cfg.ingest
    test = None
    if ing.republish_rejected:
        body = json.dumps({"reason": "check", "topic": "", "payload": "klankkast-ingest check"})
        test = (ing.rejected_topic, body)
    result, problems = probe_mqtt(client, cfg.mqtt, [SUBSCRIPTION], timeout_s, publish=test)
    rc = result.get("connect")
    if rc is not None and rc.is_failure:
        problems.append(
            f"mqtt: broker at {cfg.mqtt.url} refused the connection: {rc} "
            f"(check [mqtt] username / password_file)"
        )
    for code in result.get("suback", []):
        if code.is_failure:
            problems.append(
                f"mqtt: subscription {SUBSCRIPTION} refused: {code} "
                "(the broker's ACL must let this user read klankkast/v1/#)"
            )
    puback = result.get("puback")
    if puback is not None and puback.is_failure:
        problems.append(
            f"mqtt: publishing to {ing.rejected_topic} refused: {puback} "
            f"(the broker's ACL must let this user write {ing.rejected_topic})"
        )
    return problems


def check_influx(cfg: CentralConfig) -> list[str]:
    """Ping, ensure the layout, write one ingest_stats point and read it back."""
    ic = cfg.influxdb
    influx = make_influx_client(ic)
    if not influx.ping():
        return [f"influxdb: no answer from {ic.url}/ping"]
    problems: list[str] = []
    try:
        influx.ensure_layout(ic.raw_retention_days)
    except QueryError as err:
        problems.append(
            f"influxdb: database {ic.database!r} or its retention policies {RP_RAW}/{RP_FOREVER} are "
            f"missing and could not be created: {err} (run deploy/influxdb/setup.sh as admin)"
        )
        return problems
    now_ms = time.time_ns() // 1_000_000
    try:
        influx.write([line(M_INGEST_STATS, {"instance": "check"}, {"check": 1}, now_ms)])
    except PermanentWriteError as err:
        hint = " (credentials or permissions)" if err.status in (401, 403) else ""
        problems.append(
            f"influxdb: write to {ic.database!r} refused: HTTP {err.status}{hint}: {err.body[:200]}"
        )
    except WriteError as err:
        problems.append(f"influxdb: write to {ic.database!r} failed: {err}")
    try:
        influx.query(f'SELECT last("check") FROM "{M_INGEST_STATS}" WHERE time > now() - 1h')
    except QueryError as err:
        problems.append(f"influxdb: read of {ic.database!r} refused: {err}")
    influx.close()
    return problems


def check(cfg: CentralConfig, client_id: str, timeout_s: float = 10.0) -> int:
    """Verify both connections, credentials and permissions; print what is wrong."""
    problems = check_influx(cfg) + _check_mqtt(cfg, client_id, timeout_s)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(
        f"ok: mqtt {cfg.mqtt.url} (shared subscription as {client_id}), "
        f"influxdb {cfg.influxdb.url} database {cfg.influxdb.database!r} ({RP_RAW}, {RP_FOREVER}) writable"
    )
    return 0


def run(cfg: CentralConfig, client_id: str) -> int:
    """Run the ingest until SIGTERM/SIGINT."""
    from klankkast.ingest.service import IngestService

    service = IngestService(cfg, client_id=client_id)

    def on_signal(signum: int, frame: Any) -> None:
        service.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("klankkast-ingest starting as %s (config %s)", client_id, cfg.path)
    service.start()
    service.run()
    service.stop()
    if service.writer_error is not None:
        return 1
    log.info("klankkast-ingest stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_central_config(args.config)
        level = args.log_level or cfg.ingest.log_level
        logging.basicConfig(
            level=getattr(logging, level),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        client_id = args.client_id or cfg.mqtt.client_id or default_client_id()
        if args.command == "check":
            return check(cfg, client_id, args.timeout)
        return run(cfg, client_id)
    except ConfigError as err:
        print(f"klankkast-ingest: config error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
