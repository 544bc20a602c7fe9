"""The live alerts in InfluxDB: :func:`alert_line` (measurement ``alert``, tags site and
state) and :class:`InfluxAlertWriter`, which writes from its own thread and retries."""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING

from klankkast.alerts.engine import (
    Alert,
)
from klankkast.influx import PermanentWriteError, RetryableWriteError

if TYPE_CHECKING:
    from klankkast.influx import InfluxHTTP

log = logging.getLogger("klankkast.alerts")


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
