"""Webhooks of the live alerts: the POST body (JSON, or ``{"text": ...}`` for Slack and
Teams, times on the rules' wall clock) and :class:`HttpWebhooks`, which posts from one
background thread so a slow or dead receiver never blocks the MQTT side."""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from klankkast.alerts.engine import (
    Alert,
)

if TYPE_CHECKING:
    pass
from klankkast.alerts.config import Webhook

log = logging.getLogger("klankkast.alerts")


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
