"""The demo's synthesised node messages, and how it sends them: per-minute summaries and
hourly statuses encoded with the node's wire contract (:mod:`klankkast.sensor.wire`) and
published through the node's MQTT adapter (:class:`klankkast.sensor.publisher.PahoPublisher`).

Seconds for two weeks would take too long to push through one machine; minutes are
what the analysis uses. The 1-s frames of the last stretch come from the node's own
simulator (``klankkast-sensor simulate``), not from here.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._common import DemoError
from .scenario import AMS, DAY_MS, HOUR_MS, MIN_MS, TrueEpisode, local

if TYPE_CHECKING:
    from klankkast.sensor.publisher import Publisher

__all__ = ["WirePublisher", "minute_payloads", "status_payloads"]


def minute_payloads(
    site: str,
    node: str,
    node_index: int,
    start_ms: int,
    end_ms: int,
    episodes: Sequence[TrueEpisode],
    skip: Sequence[tuple[int, int]],
    seed: int,
) -> Iterator[dict[str, Any]]:
    """Per-minute summaries of one node from ``start_ms`` to ``end_ms`` (vectorised).

    The spectral model is the node simulator's (``SyntheticNode``): a traffic-like
    background spectrum, or a bass-heavy music spectrum during a planted episode; band
    levels are drawn first and LAeq, LCeq, LZeq follow from them through the IEC 61672-1
    A and C weightings, so bands, levels and ``bass`` agree. The background follows the
    time of day (33 dB(A) at night to 39 dB(A) in the afternoon) with a slow drift; LA10
    ... LA95 lie close below LAeq as for a steady sound (LAeq - LA90 about 1 dB for the
    background hum, 1-3 dB for music) -- a model, not a measurement.
    The second node of a site is 1.5 dB further from the source. Minutes inside
    ``skip`` (covered by the real-audio or 1-s streams) are left out.
    """
    import numpy as np
    import pandas as pd

    from klankkast.decibel import energy_sum_level
    from klankkast.sensor.simulate import SyntheticNode

    model = SyntheticNode(site, node, fs_hz=16000, seed=seed)
    rng = np.random.default_rng(seed)
    t = np.arange(start_ms - start_ms % MIN_MS, end_ms, MIN_MS, dtype=np.int64)
    keep = np.ones(t.size, dtype=bool)
    for a, b in skip:
        keep &= ~((t >= a) & (t < b))
    n = t.size
    hours = pd.to_datetime(t, unit="ms", utc=True).tz_convert(AMS)
    hour = hours.hour.to_numpy() + hours.minute.to_numpy() / 60.0
    # a quiet courtyard: a smooth daily profile from 33 dB(A) around 02:00 to 39 dB(A)
    # around 14:00 (no steps, so neither the night limit nor the emergence rules fire on
    # the background itself)
    base = 36.0 + 3.0 * np.cos(2 * np.pi * (hour - 14.0) / 24.0)
    drift = np.cumsum(rng.normal(0, 0.05, n))
    win = min(240, n)
    drift -= np.convolve(drift, np.ones(win) / win, mode="same")[:n]  # slow wander, no trend
    # where the node simulator's frames take over (``skip``), its background is a
    # different model (36.5 dB(A) at night): ramp to it over the hour before, so the
    # stitch is not an unplanted +3.5 dB source that the emergence rule rightly reports
    for a, _b in skip:
        w = np.clip(1.0 - (a - t) / (60 * MIN_MS), 0.0, 1.0) * (t < a)
        base = base + w * (SyntheticNode.background_db(a) - base)
    target = base + np.clip(drift, -2, 2) + rng.uniform(-0.3, 0.3, n)
    music = np.zeros(n, dtype=bool)
    for e in episodes:
        if e.site != site or not math.isfinite(e.laeq_db):
            continue
        m = (t >= e.start_ms) & (t < e.end_ms)
        music |= m
        target[m] = e.laeq_db - 1.5 * node_index + rng.uniform(-1.0, 1.0, int(m.sum()))
    nb = len(model.nominals)
    shape = np.where(music[:, None], model.shape_music, model.shape_quiet) + rng.normal(
        0, 1.0, (n, nb)
    )

    def dbsum(x: Any) -> Any:
        return energy_sum_level(x, axis=1)

    bands = shape + (target - dbsum(shape + model.a_db))[:, None]
    laeq, lceq, lzeq = dbsum(bands + model.a_db), dbsum(bands + model.c_db), dbsum(bands)
    # LAeq - LA90: about 1 dB for the steady background hum, 1-3 dB for music
    spread = np.where(music, rng.uniform(1.0, 3.0, n), rng.uniform(0.3, 0.8, n))
    lafmax = laeq + rng.uniform(6.0, 14.0, n)
    lafmin = laeq - spread - rng.uniform(1.0, 3.0, n)
    impulsive = np.where(music, rng.uniform(0.0, 2.0, n), rng.uniform(0.0, 0.5, n))
    tonality = rng.uniform(-6.0, -1.0, n)
    for seq, i in enumerate(np.flatnonzero(keep), 1):
        la = float(laeq[i])
        yield {
            "site": site,
            "node": node,
            "t": int(t[i]),
            "seq": seq,
            "dur_ms": MIN_MS,
            "LAeq": round(la, 2),
            "LCeq": round(float(lceq[i]), 2),
            "LZeq": round(float(lzeq[i]), 2),
            "LAFmax": round(float(lafmax[i]), 2),
            "LAFmin": round(float(lafmin[i]), 2),
            "LA10": round(la + 0.6 * float(spread[i]), 2),
            "LA50": round(la - 0.4 * float(spread[i]), 2),
            "LA90": round(la - float(spread[i]), 2),
            "LA95": round(la - float(spread[i]) - 0.4, 2),
            "bands": dict(zip(model.nominals, np.round(bands[i], 2).tolist(), strict=True)),
            "overload": 0,
            "nonfinite": 0,
            "bass": round(float(lceq[i]) - la, 2),
            "impulsive": round(float(impulsive[i]), 2),
            "tonality": round(float(tonality[i]), 2),
            "tonal_band": None,
        }


def status_payloads(
    site: str, node: str, start_ms: int, end_ms: int, seed: int
) -> Iterator[dict[str, Any]]:
    """An hourly ``status`` per node (what a node sends every status interval)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    calibrated = local(start_ms - 20 * DAY_MS).replace(hour=10, minute=0, second=0, microsecond=0)
    xruns = 0
    t = start_ms
    while t < end_ms:
        xruns += int(rng.poisson(0.05))
        yield {
            "site": site,
            "node": node,
            "t": t,
            "state": "online",
            "version": "demo",
            "uptime_s": float((t - start_ms) / 1000),
            "xruns": xruns,
            "outbox_depth": int(rng.poisson(0.3)),
            "outbox_evictions": 0,
            "clock_synced": True,
            "calibrated": True,
            "calibrated_at": calibrated.isoformat(timespec="seconds"),
            "drift_ms": round(float(rng.normal(0, 3)), 1),
            # confirm = "ingest" (the default): the last second or two await the
            # ingest's ack, which comes at most a second after InfluxDB stored them
            "unconfirmed": int(rng.integers(0, 3)),
            "unconfirmed_age_s": round(float(rng.uniform(0.0, 1.5)), 1),
        }
        t += HOUR_MS


class WirePublisher:
    """Publishes payloads encoded with the wire contract through the node's MQTT adapter
    (:class:`~klankkast.sensor.publisher.PahoPublisher`: MQTT v5, QoS 1).

    The node's flow control, without its outbox: at most the adapter's ``window``
    messages are unacknowledged (the broker's Receive Maximum), so paho never has to
    refuse one. The demo keeps no outbox because it can make every message again; a
    broker that refuses a message (reason code >= 0x80) or does not acknowledge within
    ``timeout_s`` is a :class:`DemoError`. Connects on the first publish; :meth:`close`
    waits for the last acknowledgements and disconnects. ``adapter`` replaces the
    paho adapter (a test's :class:`~klankkast.sensor.publisher.FakePublisher`).
    """

    def __init__(
        self, url: str, client_id: str, timeout_s: float = 120.0, adapter: Publisher | None = None
    ) -> None:
        from klankkast.sensor.publisher import PahoPublisher

        u = urllib.parse.urlparse(url)
        self.url = url
        self._adapter: Publisher = adapter or PahoPublisher(
            u.hostname or "127.0.0.1",
            u.port or 1883,
            client_id=client_id,
            session_expiry_s=0,
            max_inflight=500,
        )
        self._adapter.set_handlers(self._on_ack, lambda: None, lambda: None)
        self.timeout_s = timeout_s
        self._started = False
        self._cv = threading.Condition()
        self._unacked: set[int] = set()
        self._early: set[int] = set()  # acknowledged before publish() returned the id
        self._refused: list[str] = []
        self.count = 0

    def _on_ack(self, mid: int, reason: int) -> None:
        with self._cv:
            if reason >= 0x80:
                self._refused.append(f"message {mid}: reason code 0x{reason:02x}")
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:
                self._early.add(mid)
            self._cv.notify_all()

    def _wait(self, most_unacked: int, what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        with self._cv:
            while len(self._unacked) > most_unacked and not self._refused:
                if not self._cv.wait(max(0.0, deadline - time.monotonic())):
                    raise DemoError(f"MQTT broker did not acknowledge the {what}")
            if self._refused:
                raise DemoError(f"MQTT broker refused the {what}: {self._refused[0]}")

    def _connect(self, timeout_s: float = 30.0) -> None:
        self._started = True
        self._adapter.start()
        deadline = time.monotonic() + timeout_s
        while not self._adapter.connected:
            if time.monotonic() > deadline:
                why = getattr(self._adapter, "last_error", None) or "no answer"
                raise DemoError(
                    f"MQTT broker {self.url} did not accept a connection within "
                    f"{timeout_s:.0f} s ({why})"
                )
            time.sleep(0.01)

    def publish(self, kind: str, payload: dict[str, Any], retain: bool = False) -> None:
        from klankkast.sensor import wire

        if not self._started:
            self._connect()
        self._wait(self._adapter.window - 1, "published frames")
        topic = wire.topic(payload["site"], payload["node"], kind)
        mid = self._adapter.publish(topic, wire.encode(kind, payload), retain=retain)
        if mid is None:
            raise DemoError(f"paho refused to queue a message on {topic}")
        with self._cv:
            if mid in self._early:
                self._early.discard(mid)
            else:
                self._unacked.add(mid)
        self.count += 1

    def flush(self) -> None:
        """Wait until the broker has acknowledged everything published so far."""
        self._wait(0, "published frames")

    def close(self, wait: bool = True) -> None:
        """Disconnect, after the last acknowledgements unless ``wait`` is false (the demo
        is stopping: nothing more to wait for)."""
        try:
            if self._started and wait:
                self.flush()
        finally:
            self._adapter.close()
