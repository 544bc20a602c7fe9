"""``klankkast-alerts [check] --config F``: live nuisance alerts from the MQTT stream.

Wiring only; the decisions are made in :mod:`klankkast.alerts.engine` (which
applies the analysis' episode rules, :mod:`klankkast.analysis.episodes`).

Data flow
---------
paho (normal, non-shared subscription to ``klankkast/v1/+/+/second``, QoS 1: a
shared subscription would split one site's frames over processes; and to the nodes'
retained ``status``: when every node of a site is ``offline`` its open alert ends
``hold_s`` after the last frame) -> inbound queue
-> one worker thread: :func:`klankkast.sensor.wire.decode` -> :class:`AlertEngine`
-> for each alert: retained publish on ``klankkast/v1/{site}/alerts``, a point in
InfluxDB measurement ``alert`` (retention policy ``forever``, written by its own
thread) and, unless late or in quiet hours, a POST to each webhook (its own thread;
a slow or dead receiver never blocks the MQTT loop). Malformed frames are counted
and skipped.

``[alerts]`` (all optional; see ``deploy/central/central.example.toml``)
------------------------------------------------------------------------
``confirm_s`` (300), ``update_s`` (60), ``min_gap_s`` (900), ``hysteresis_db`` (1.0),
``late_after_s`` (600), ``quiet_hours`` (table site -> list of ``"HH:MM-HH:MM"``
local time of the rules' time zone; ``"*"`` = every site), ``webhooks`` (array of tables
``{url, format = "json" | "slack", timeout_s = 5}``), ``rules`` (rules TOML of the
analysis; default: its documented defaults), ``frames`` (``"second"`` or
``"minute"``), ``hold_s`` (10), ``idle_end_s`` (900), ``client_id``, ``influx``
(true), ``log_level``.

The ``[mqtt]`` and ``[influxdb]`` sections are those of the ingest (the alerts
process uses its own client id, default ``klankkast-alerts-<hostname>``, and
credentials from ``[mqtt]``, or ``[alerts] username`` / ``password_file``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from klankkast.alerts.engine import (
    Alert,
    AlertEngine,
)
from klankkast.ingest.errors import ConfigError
from klankkast.sensor import wire

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

    from klankkast.analysis.rules import Rules
    from klankkast.ingest.config import CentralConfig, MqttConfig
from klankkast.alerts.config import (
    SCHEMA,
    AlertsConfig,
    Webhook,
    load,
    parse_alerts_config,
)
from klankkast.alerts.webhooks import HttpWebhooks, webhook_body
from klankkast.alerts.writer import InfluxAlertWriter, alert_line

__all__ = [
    "SCHEMA",
    "AlertsConfig",
    "AlertsService",
    "HttpWebhooks",
    "InfluxAlertWriter",
    "Webhook",
    "alert_line",
    "load",
    "main",
    "mqtt_config",
    "parse_alerts_config",
    "subscriptions",
    "webhook_body",
]

log = logging.getLogger("klankkast.alerts")


# -- the service --------------------------------------------------------------------


def mqtt_config(central: CentralConfig, acfg: AlertsConfig) -> MqttConfig:
    """``[mqtt]`` with the alerts' own credentials when ``[alerts]`` names them."""
    if acfg.username is None:
        return central.mqtt
    return replace(central.mqtt, username=acfg.username, password_file=acfg.password_file)


def secret_error(err: ConfigError, acfg: AlertsConfig) -> ConfigError:
    """``err`` under the key the operator wrote: the alerts' own MQTT password file is
    ``alerts.password_file``, though it is read as ``[mqtt]``'s."""
    if err.key == "mqtt.password_file" and acfg.username is not None:
        return ConfigError("alerts.password_file", err.value, err.allowed)
    return err


def subscriptions(acfg: AlertsConfig) -> list[str]:
    """The frames topic filter and the nodes' status topic filter."""
    return [f"{wire.TOPIC_ROOT}/+/+/{acfg.frames}", f"{wire.TOPIC_ROOT}/+/+/status"]


class AlertsService:
    """config -> adapters -> engine -> run loop -> ordered shutdown."""

    def __init__(self, central: CentralConfig, acfg: AlertsConfig, rules: Rules) -> None:
        self.central = central
        self.acfg = acfg
        self.engine = AlertEngine(rules, acfg.settings)
        self.webhooks = HttpWebhooks(acfg.webhooks, tz=rules.timezone)
        self.influx: InfluxAlertWriter | None = None
        self._inbound: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self.malformed = 0
        self.published = 0

    @property
    def subscription(self) -> str:
        return subscriptions(self.acfg)[0]

    @property
    def status_subscription(self) -> str:
        return subscriptions(self.acfg)[1]

    def start(self) -> None:
        from klankkast.ingest.config import (
            default_client_id,
            make_influx_client,
            make_mqtt_client,
            mqtt_connect,
        )

        mcfg = mqtt_config(self.central, self.acfg)
        if self.acfg.influx:
            self.influx = InfluxAlertWriter(
                make_influx_client(self.central.influxdb), self.central.influxdb.raw_retention_days
            )
            self.influx.start()
        self.webhooks.start()
        client = make_mqtt_client(
            mcfg, client_id=self.acfg.client_id or default_client_id("klankkast-alerts")
        )
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self._client = client
        self._worker = threading.Thread(target=self._work, name="alerts-engine", daemon=True)
        self._worker.start()
        mqtt_connect(client, mcfg)
        client.loop_start()
        log.info("klankkast-alerts: subscribing to %s at %s", self.subscription, mcfg.url)

    # paho callbacks (network thread): never block
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT connect refused: %s", reason)
            return
        client.subscribe([(self.subscription, 1), (self.status_subscription, 1)])
        log.info("MQTT connected (%s)", reason)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if not self._stop.is_set():
            log.warning("MQTT disconnected (%s); paho reconnects", reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._inbound.put((msg.topic, bytes(msg.payload)))

    # worker
    def _work(self) -> None:
        last_idle = time.monotonic()
        last_stats = time.monotonic()
        while True:
            try:
                item = self._inbound.get(timeout=1.0)
            except queue.Empty:
                item = ()  # type: ignore[assignment]
            if item is None:
                return
            try:
                if item:
                    self._frame(*item)
                now = time.monotonic()
                if now - last_idle >= 1.0:
                    last_idle = now
                    self._deliver(self.engine.idle(_now_ms()))
                if now - last_stats >= 60.0:
                    last_stats = now
                    log.info(
                        "alerts: %s malformed=%d published=%d webhooks sent=%d failed=%d",
                        self.engine.counters, self.malformed, self.published,
                        self.webhooks.sent, self.webhooks.failed,
                    )  # fmt: skip
            except Exception:  # top of the run loop: log, keep going
                log.exception("alerts: error while processing a frame")

    def _frame(self, topic: str, payload: bytes) -> None:
        try:
            msg = wire.decode(topic, payload)
        except wire.SchemaError as err:
            self.malformed += 1
            log.debug("skipped malformed frame on %s: %s", topic, err)
            return
        if msg.kind == "status":
            self.engine.status(msg.site, msg.node, str(msg.payload["state"]))
            return
        if msg.kind not in wire.FRAME_KINDS:
            return
        p = msg.payload
        alerts = self.engine.frame(
            msg.site, msg.node, int(p["t"]), float(p["LAeq"]), float(p["LCeq"]),
            float(p["LAFmax"]), p.get("LA90"), now_ms=_now_ms(), seq=int(p["seq"]),
        )  # fmt: skip
        self._deliver(alerts)

    def _deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            p = alert.payload
            log.info(
                "alert %s %s started=%s t=%s LAeq=%s late=%s quiet=%s",
                alert.site, alert.state, p["started"], p["t"], p["LAeq"], p["late"], p["quiet"],
            )  # fmt: skip
            if self._client is not None:
                self._client.publish(
                    wire.ALERT_TOPIC_FMT.format(site=alert.site),
                    json.dumps(p, separators=(",", ":")),
                    qos=1,
                    retain=alert.retain,
                )
                self.published += 1
            if self.influx is not None:
                self.influx.write(alert)
            if alert.notify:
                self.webhooks.send(alert)

    def stop(self) -> None:
        """Ordered shutdown: stop taking frames, finish the queued ones, flush, disconnect."""
        self._stop.set()
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):  # best effort while shutting down
                client.unsubscribe([self.subscription, self.status_subscription])
        self._inbound.put(None)
        if self._worker is not None:
            self._worker.join(30.0)
        self.webhooks.close()
        if self.influx is not None:
            self.influx.close()
        if client is not None:
            client.disconnect()
            client.loop_stop()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def main(argv: list[str] | None = None) -> int:
    """``klankkast-alerts`` (:func:`klankkast.alerts.cli.main`)."""
    from klankkast.alerts.cli import main as cli_main

    return cli_main(argv)
