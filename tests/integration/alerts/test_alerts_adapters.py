"""The alert adapters on loopback: webhooks never block the caller, failures are
counted; the InfluxDB writer shuts down promptly while InfluxDB is away."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from support.alert_sample import sample_alert
from support.stack import free_port

from klankkast.alerts.service import HttpWebhooks, InfluxAlertWriter, Webhook
from klankkast.influx import InfluxHTTP


class _Slow(BaseHTTPRequestHandler):
    got: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/slow":
            time.sleep(1.5)
        _Slow.got.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhooks_do_not_block_and_count_failures() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    hooks = HttpWebhooks(
        (
            Webhook(base + "/slow", "json", timeout_s=0.3),  # times out
            Webhook(f"http://127.0.0.1:{free_port()}/x", "json", timeout_s=0.5),  # refused
            Webhook(base + "/ok", "slack", timeout_s=2.0),
        )
    )
    hooks.start()
    try:
        t = time.monotonic()
        for _ in range(3):
            hooks.send(sample_alert())
        assert time.monotonic() - t < 0.1  # the caller (the MQTT side) never waits
        deadline = time.monotonic() + 10
        while hooks.sent + hooks.failed < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hooks.sent == 3 and hooks.failed == 6
        ok = [b for p, b in _Slow.got if p == "/ok"]
        assert len(ok) == 3 and all("yard1" in b["text"] for b in ok)
    finally:
        hooks.close(5)
        server.shutdown()
        server.server_close()


def test_influx_writer_shuts_down_promptly_while_influx_is_away() -> None:
    writer = InfluxAlertWriter(
        InfluxHTTP(f"http://127.0.0.1:{free_port()}", "klankkast", timeout_s=0.5)
    )
    writer.start()
    for _ in range(5):
        writer.write(sample_alert())
    time.sleep(0.3)
    t = time.monotonic()
    writer.close(10)
    assert time.monotonic() - t < 5
    assert writer.written == 0 and writer.dropped == 5
