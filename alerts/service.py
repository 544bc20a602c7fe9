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

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import queue
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from klankkast import configcheck as _cc
from klankkast.alerts.engine import (
    Alert,
    AlertEngine,
    AlertSettings,
    QuietHours,
    parse_quiet_range,
)
from klankkast.influx import PermanentWriteError, RetryableWriteError
from klankkast.ingest.config import check_log_level
from klankkast.ingest.errors import ConfigError
from klankkast.sensor import wire

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

    from klankkast.analysis.rules import Rules
    from klankkast.influx import InfluxHTTP
    from klankkast.ingest.config import CentralConfig, MqttConfig

__all__ = [
    "SCHEMA",
    "AlertsConfig",
    "AlertsService",
    "HttpWebhooks",
    "InfluxAlertWriter",
    "Webhook",
    "alert_line",
    "main",
    "mqtt_config",
    "parse_alerts_config",
    "subscriptions",
    "webhook_body",
]

log = logging.getLogger("klankkast.alerts")

_FORMATS: Final = ("json", "slack")
_FRAMES: Final = ("second", "minute")


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str = "json"
    timeout_s: float = 5.0


@dataclass(frozen=True)
class AlertsConfig:
    """The validated ``[alerts]`` section."""

    settings: AlertSettings = field(default_factory=AlertSettings)
    webhooks: tuple[Webhook, ...] = ()
    rules_path: Path | None = None
    frames: str = "second"
    client_id: str | None = None
    influx: bool = True
    log_level: str = "INFO"
    username: str | None = None
    password_file: Path | None = None


def _http_url(value: str) -> str | None:
    parts = urllib.parse.urlsplit(value)
    ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    return None if ok else "must be an http:// or https:// URL"


def _a_table(value: Any) -> str | None:
    return None if isinstance(value, dict) else 'must be a table: site = ["HH:MM-HH:MM", ...]'


def _a_list(value: Any) -> str | None:
    return None if isinstance(value, list) else "must be an array of tables {url, format}"


def _at_most_64(value: str) -> str | None:
    return None if len(value) <= 64 else "must be at most 64 characters"


#: Every key of ``[alerts]`` (documented in ``deploy/central/central.example.toml``).
SCHEMA: Final[_cc.Schema] = {
    "alerts": {
        "confirm_s": _cc.integer(300, 0, 86_400),
        "update_s": _cc.integer(60, 1, 86_400),
        "min_gap_s": _cc.integer(900, 0, 86_400),
        "hysteresis_db": _cc.number(1.0, 0.0, 20.0),
        "late_after_s": _cc.integer(600, 1, 7 * 86_400),
        "quiet_hours": _cc.custom({}, _a_table),
        "webhooks": _cc.custom([], _a_list),
        "rules": _cc.string(None),
        "frames": _cc.choice("second", _FRAMES),
        "hold_s": _cc.number(10.0, 0.0, 600.0),
        "idle_end_s": _cc.number(900.0, 10.0, 86_400.0),
        "client_id": _cc.string(None, check=_at_most_64),
        "influx": _cc.boolean(True),
        "log_level": _cc.custom("INFO", check_log_level),
        "username": _cc.string(None),
        "password_file": _cc.string(None),
    }
}
#: The keys of ``[alerts]`` that are :class:`AlertSettings` fields of the same name.
_SETTINGS: Final = (
    "confirm_s", "update_s", "min_gap_s", "hysteresis_db", "late_after_s", "hold_s", "idle_end_s",
)  # fmt: skip
#: One table of ``[[alerts.webhooks]]``.
WEBHOOK: Final[Mapping[str, _cc.Field]] = {
    "url": _cc.string(_cc.MISSING, check=_http_url),
    "format": _cc.choice("json", _FORMATS),
    "timeout_s": _cc.number(5.0, 0.1, 120.0),
}


def _quiet_hours(qh: dict[str, Any], problems: _cc.Problems) -> dict[str, list[tuple[int, int]]]:
    quiet: dict[str, list[tuple[int, int]]] = {}
    for site, ranges in qh.items():
        key = f"alerts.quiet_hours.{site}"
        if site != "*" and not wire.valid_id(site):
            problems.add(key, site, 'must be a site id or "*" (the key)')
            continue
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, list):
            problems.add(key, ranges, 'must be a list of "HH:MM-HH:MM" local times')
            continue
        for r in ranges:
            try:
                quiet.setdefault(site, []).append(parse_quiet_range(str(r)))
            except ValueError as err:
                problems.add(key, r, f'must be "HH:MM-HH:MM" local time ({err})')
    return quiet


def _webhooks(hooks: list[Any], problems: _cc.Problems) -> list[Webhook]:
    out = []
    for i, h in enumerate(hooks):
        key = f"alerts.webhooks[{i}]"
        before = len(problems.errors)
        v = _cc.check_all({key: h}, {key: WEBHOOK}, problems)[key]
        if len(problems.errors) == before:
            out.append(Webhook(str(v["url"]), v["format"], v["timeout_s"]))
    return out


def parse_alerts_config(raw: Any, base_dir: Path | None = None) -> AlertsConfig:
    """Validate ``[alerts]`` (a dict from the TOML file); one :class:`ConfigError` names
    every bad key."""
    base = base_dir or Path.cwd()
    problems = _cc.Problems()
    v = _cc.check_all({"alerts": {} if raw is None else raw}, SCHEMA, problems)["alerts"]
    quiet = _quiet_hours(v["quiet_hours"], problems)
    webhooks = _webhooks(v["webhooks"], problems)
    password_file = _cc.resolve_path(v["password_file"], base)
    if password_file is not None and v["username"] is None:
        problems.add("alerts.username", _cc.MISSING, "must be set when alerts.password_file is set")
    problems.raise_as(ConfigError)
    settings = AlertSettings(
        **{k: v[k] for k in _SETTINGS},
        step_s=1 if v["frames"] == "second" else 60,
        quiet=QuietHours(quiet),
    )
    return AlertsConfig(
        settings=settings,
        webhooks=tuple(webhooks),
        rules_path=_cc.resolve_path(v["rules"], base),
        frames=v["frames"],
        client_id=v["client_id"],
        influx=v["influx"],
        log_level=v["log_level"].upper(),
        username=v["username"],
        password_file=password_file,
    )


# -- message formats ----------------------------------------------------------------


def _local(t_ms: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(t_ms / 1000, ZoneInfo(tz)).strftime("%a %d %b %H:%M")


def webhook_body(alert: Alert, fmt: str, tz: str = "Europe/Amsterdam") -> bytes:
    """The POST body: the alert JSON, or ``{"text": ...}`` for Slack/Teams webhooks (times
    on the wall clock of ``tz``, the rules' time zone)."""
    p = alert.payload
    if fmt == "json":
        return json.dumps(p, separators=(",", ":")).encode()
    verb = {"start": "started", "update": "going on", "end": "ended"}[alert.state]
    nodes = ", ".join(p["nodes"]) or "-"
    text = (
        f"[klankkast] {p['site']}: nuisance {verb} (since {_local(p['started'], tz)}, "
        f"{p['duration_s'] / 60:.0f} min): LAeq {p['LAeq']} dB(A), LAFmax {p['LAFmax']} dB(A), "
        f"bass {p['bass']} dB, rule {p['rule'] or '-'}, nodes {nodes}"
    )
    return json.dumps({"text": text}).encode()


def alert_line(alert: Alert) -> str:
    """One point of InfluxDB measurement ``alert`` (tags site, state; time = ``t``)."""
    from klankkast.influx import M_ALERT, line

    p = alert.payload
    fields: dict[str, float | int | str | bool] = {
        "started": int(p["started"]),
        "duration_s": float(p["duration_s"]),
        "nodes": len(p["nodes"]),
        "node_list": ",".join(p["nodes"]),
        "late": bool(p["late"]),
        "quiet": bool(p["quiet"]),
        "rule": str(p["rule"] or ""),
        "id": str(p["id"]),
    }
    for key in ("LAeq", "LCeq", "LAFmax", "bass"):
        if p.get(key) is not None:
            fields[key] = float(p[key])
    if p.get("ended") is not None:
        fields["ended"] = int(p["ended"])
    return str(line(M_ALERT, {"site": alert.site, "state": alert.state}, fields, int(p["t"])))


# -- adapters -----------------------------------------------------------------------


class HttpWebhooks:
    """POSTs alerts to webhooks from one background thread (urllib, with a timeout).

    :meth:`send` only enqueues (a full queue drops the oldest and counts it), so the
    MQTT side never waits for a receiver. Failures are logged and counted.
    """

    def __init__(
        self, hooks: tuple[Webhook, ...], max_queue: int = 1000, tz: str = "Europe/Amsterdam"
    ) -> None:
        self.hooks = hooks
        self.tz = tz
        self._q: queue.Queue[Alert | None] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def start(self) -> None:
        if self.hooks and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alerts-webhooks", daemon=True)
            self._thread.start()

    def send(self, alert: Alert) -> None:
        if not self.hooks:
            return
        while True:
            try:
                self._q.put_nowait(alert)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def close(self, timeout_s: float = 10.0) -> None:
        if self._thread is None:
            return
        self._q.put(None)
        self._thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        while True:
            alert = self._q.get()
            if alert is None:
                return
            for hook in self.hooks:
                self._post(hook, alert)

    def _post(self, hook: Webhook, alert: Alert) -> None:
        req = urllib.request.Request(
            hook.url,
            data=webhook_body(alert, hook.format, self.tz),
            headers={"Content-Type": "application/json", "User-Agent": "klankkast-alerts"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=hook.timeout_s) as resp:
                resp.read()
            self.sent += 1
        except (urllib.error.URLError, OSError, ValueError) as err:
            self.failed += 1
            log.warning("webhook %s failed for %s %s: %s", hook.url, alert.site, alert.state, err)


class InfluxAlertWriter:
    """Writes ``alert`` points from a background thread.

    While InfluxDB is away the batch is retried with backoff (honouring
    ``Retry-After``) and new points queue up to ``max_queue`` (beyond: dropped and
    counted); a 4xx refusal drops the batch with a log line; at shutdown what cannot
    be written within a moment is given up (logged).
    """

    def __init__(self, client: InfluxHTTP, raw_days: int = 30, max_queue: int = 10_000) -> None:
        self.client = client
        self.raw_days = raw_days
        self._q: queue.Queue[str | None] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alerts-influx", daemon=True)
        self._thread.start()

    def write(self, alert: Alert) -> None:
        try:
            self._q.put_nowait(alert_line(alert))
        except queue.Full:
            self.dropped += 1

    def close(self, timeout_s: float = 10.0) -> None:
        if self._thread is None:
            return
        self._q.put(None)
        self._thread.join(min(timeout_s, 2.0))  # a last write while InfluxDB answers
        self._stop.set()  # stop backing off: what is still queued is given up (logged)
        self._thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        from klankkast.influx import RP_FOREVER

        layout_ok = False
        closing = False
        while not closing:
            item = self._q.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < 500:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    closing = True
                    break
                batch.append(nxt)
            backoff = 0.5
            while True:  # until written, refused, or shutting down
                try:
                    if not layout_ok:
                        self.client.ensure_layout(self.raw_days)
                        layout_ok = True
                    self.client.write(batch, rp=RP_FOREVER, precision="ms")
                    self.written += len(batch)
                    break
                except PermanentWriteError as err:
                    self.dropped += len(batch)
                    log.error("InfluxDB refused %d alert point(s): %s", len(batch), err)
                    break
                except (RetryableWriteError, Exception) as err:  # keep running; retry
                    log.warning("InfluxDB write of alerts failed (%s); retrying", err)
                    wait = getattr(err, "retry_after_s", None) or backoff
                    if self._stop.wait(min(wait, 30.0)):
                        self.dropped += len(batch)
                        log.error("shutting down: %d alert point(s) not written", len(batch))
                        return
                    backoff = min(backoff * 2, 30.0)


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


EXIT_STATUSES: Final = """exit status:
  0  run: stopped by SIGTERM/SIGINT; check: configuration valid and connections OK
  1  configuration error (one line naming key, value and what is allowed), or a failed check
  2  usage error (unknown option, missing argument)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "command",
        nargs="?",
        choices=("run", "check"),
        default="run",
        help="run (default): run until SIGTERM/SIGINT; check: validate what a start validates "
        "(config, rules, secret and TLS files), connect to the broker and InfluxDB, and exit",
    )
    parser.add_argument(
        "--config", required=True, type=Path, help="central configuration (TOML) with [alerts]"
    )
    parser.add_argument(
        "--check", action="store_true", help="deprecated spelling of the check command"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="check: seconds per connection"
    )
    parser.add_argument("--version", action="version", version=f"klankkast-alerts {_version()}")


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("klankkast")
    except importlib.metadata.PackageNotFoundError:  # running from a bare checkout
        return "unknown"


def load(path: Path) -> tuple[CentralConfig, AlertsConfig, Rules]:
    """Load and validate everything before any I/O (raises the packages' ConfigErrors)."""
    from klankkast.analysis.rules import load_rules
    from klankkast.ingest.config import load_central_config

    central = load_central_config(path)
    acfg = parse_alerts_config(central.raw.get("alerts"), path.resolve().parent)
    rules = load_rules(acfg.rules_path)
    # quiet hours on the wall clock of the rules' time zone, like the periods
    quiet = dataclasses.replace(acfg.settings.quiet, tz=rules.timezone)
    acfg = dataclasses.replace(acfg, settings=dataclasses.replace(acfg.settings, quiet=quiet))
    return central, acfg, rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="klankkast-alerts",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Live nuisance alerts: apply the analysis' episode rules to the MQTT stream per "
            "site, confirm, and publish start/update/end alerts on klankkast/v1/{site}/alerts "
            "(retained), to InfluxDB (measurement alert) and to webhooks. Settings: the "
            "[alerts] section of the central configuration."
        ),
    )
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from klankkast.analysis.errors import AnalysisError

    try:
        central, acfg, rules = load(args.config)
    except (ConfigError, AnalysisError) as err:
        print(f"klankkast-alerts: {err}", file=sys.stderr)
        return 1
    if args.check:
        print(
            "klankkast-alerts: --check is deprecated; use: klankkast-alerts check --config FILE",
            file=sys.stderr,
        )
    if args.check or args.command == "check":
        from klankkast.alerts.check import check

        return check(central, acfg, args.timeout)
    logging.basicConfig(
        level=acfg.log_level, format="%(asctime)s klankkast-alerts %(levelname)s %(message)s"
    )
    service = AlertsService(central, acfg, rules)
    stop = threading.Event()

    def _signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        service.start()
    except ConfigError as err:
        print(f"klankkast-alerts: {secret_error(err, acfg)}", file=sys.stderr)
        return 1
    while not stop.wait(1.0):
        pass
    log.info("klankkast-alerts: stopping")
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
