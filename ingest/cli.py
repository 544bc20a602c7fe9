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
import sys
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
    default_client_id,
    load_central_config,
    make_influx_client,
    make_mqtt_client,
)
from klankkast.ingest.errors import ConfigError
from klankkast.mqttprobe import probe_mqtt
from klankkast.version import version as _version

__all__ = ["build_parser", "check", "check_influx", "main"]

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
    mc = cfg.mqtt
    result, problems = probe_mqtt(
        client, mc.host, mc.port, mc.url, [SUBSCRIPTION], timeout_s, publish=test
    )
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
