#!/usr/bin/env python3
"""The klankkast demo: the whole pipeline on one machine, without a sound card.

    ./run-demo.sh [--short] [--out DIR] [--weeks N]

1. Starts a private Mosquitto and InfluxDB 1.x as child processes on free loopback
   ports in temporary directories (``deploy/local/services.py``), so runs never
   collide with each other or with services already running.
2. Starts the real central programs against them: ``klankkast-ingest`` (and
   ``klankkast-alerts`` when installed).
3. Feeds several courtyard nodes over MQTT, in three ways, and says which is which:

   - **real audio through the node code**: a few hours of a Friday night in the
     ``jordaan`` courtyard -- traffic hum, voices, a neighbour's bass-heavy music,
     door slams and a party reverberating in the closed courtyard -- synthesised as
     audio (``deploy/local/soundscape.py``) and measured by the node's metrology core
     (``klankkast-sensor simulate --wav``: A/C weighting, Fast/Slow, one-third-octave
     bands, per-second frames and minute summaries);
   - **synthetic 1-s frames** from the node's simulator (``klankkast-sensor simulate``)
     for the last hour of every node, so the "now" dashboards have data;
   - **synthesised levels for most of the period**: per-minute summaries for N weeks
     (default 2), published by this script with the node's wire encoder, with the
     scenario's nuisance planted in them (Friday/Saturday parties, a neighbour's music
     on some evenings). Seconds for two weeks would take too long to push through one
     machine; minutes are what the analysis uses.

4. Generates complaints (some time after onset, not for every episode, plus a few
   unfounded ones) and enforcement visits (hours or days later, mostly finding
   nothing) as CSV in the output directory, the way they arrive from a municipality.
   Residents: invitation letters for four households per courtyard
   (``klankkast-courtyard invite``, in ``letters/``) and their "ik heb nu last" marks,
   most of them during planted nuisance, a few when nothing was going on, written by
   the residents' page's own InfluxDB adapter (``deploy/local/residents.py``).
5. Runs ``klankkast-analyze report`` and ``klankkast-analyze plan`` on the levels in
   InfluxDB and prints where the report, the plan and the dashboards are, and the
   three headline numbers: corroborated complaints, visit hit rate, plan hit rate.
6. Starts the residents' page (``klankkast-courtyard serve``, showing the plan's
   windows), opens one printed invitation link as a resident's browser would, and
   prints it (the page stays up with ``--keep``).

Everything goes into ``--out`` (default ``demo-out/<UTC timestamp>``); ``summary.json``
there holds the numbers. Child processes are stopped on exit and on Ctrl-C.
``--keep`` leaves Mosquitto and InfluxDB running until Ctrl-C so Grafana can be
pointed at them (the command is printed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from services import Broker, Influx, ServiceError, free_port  # noqa: E402

AMS = ZoneInfo("Europe/Amsterdam")
UTC = UTC
MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
DB = "klankkast"
DASHBOARD_UIDS = ("courtyard-now", "nuisance-vs-reports", "fleet-health")

#: The demo's courtyards: (site id, description, nodes). "jordaan" has the Friday/
#: Saturday parties and the real-audio node; "pijp" a neighbour who plays bass-heavy
#: music on some evenings; "oost" is mostly quiet.
SITES = (
    ("jordaan", "closed courtyard, parties on Friday and Saturday nights", 2),
    ("pijp", "neighbour's music with bass on some evenings", 2),
    ("oost", "quiet courtyard, the odd late evening", 2),
)
AUDIO_FS_HZ = 16000
AUDIO_OFFSET_DB = 110.0  # calibration of the demo node: mean square 1.0 reads 110 dB
NODE_ID = "n"  # virtual node i is "n-00i", as klankkast-sensor simulate names them


# --------------------------------------------------------------------------- progress
class Progress:
    """Progress lines with the elapsed time: ``[demo  12.3 s] ...``."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, text: str) -> None:
        print(f"[demo {self.elapsed():6.1f} s] {text}", flush=True)


say = Progress()


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and where its log is."""


# --------------------------------------------------------------------------- the scenario
@dataclass(frozen=True)
class TrueEpisode:
    """Nuisance planted in the data (the truth the analysis should find)."""

    site: str
    kind: str  # "party" | "music" | "voices"
    start_ms: int
    end_ms: int
    laeq_db: float
    #: "synthesised" (planted in the per-minute levels), or "audio" (the start is in
    #: the real-audio window and measured by the node's code; the rest is planted)
    source: str = "synthesised"


@dataclass(frozen=True)
class Timeline:
    start_ms: int  # local midnight, N weeks before today
    end_ms: int  # now, floored to the minute
    audio_start_ms: int  # the real-audio window (a Friday or Saturday evening)
    audio_end_ms: int
    seconds_start_ms: int  # synthetic 1-s frames from here to end_ms


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, AMS)


def _ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def _iso_local(ms: int) -> str:
    return _local(ms).isoformat(timespec="seconds")


def make_timeline(now_ms: int, weeks: int, audio_s: float, seconds_s: float) -> Timeline:
    """The demo's period: ``weeks`` whole weeks of local days up to now.

    The real-audio window starts at 21:30 local on the most recent Friday or
    Saturday evening that lies wholly inside the period.
    """
    end_ms = now_ms - now_ms % MIN_MS
    today = _local(end_ms).replace(hour=0, minute=0, second=0, microsecond=0)
    start = (today - timedelta(days=7 * weeks)).replace(tzinfo=None).replace(tzinfo=AMS)
    start_ms = _ms(start)
    day = today
    audio_start_ms = start_ms
    while day.replace(tzinfo=None) > start.replace(tzinfo=None):
        cand = datetime(day.year, day.month, day.day, 21, 30, tzinfo=AMS)
        latest_end = _ms(cand) + audio_s * 1000 + 3 * HOUR_MS + seconds_s * 1000
        if cand.weekday() in (4, 5) and latest_end < end_ms:
            audio_start_ms = _ms(cand)
            break
        day -= timedelta(days=1)
    return Timeline(
        start_ms=start_ms,
        end_ms=end_ms,
        audio_start_ms=audio_start_ms,
        audio_end_ms=audio_start_ms + round(audio_s * 1000),
        seconds_start_ms=end_ms - round(seconds_s * 1000),
    )


def plan_episodes(
    tl: Timeline,
    sites: Sequence[str],
    seed: int,
    audio_party: tuple[int, int],
    audio_party_db: float = 64.0,
    audio_measured: bool = True,
) -> list[TrueEpisode]:
    """The nuisance of the scenario, per site (seeded, deterministic).

    - ``jordaan``: a party on 90 % of Friday and Saturday nights, ~22:00 to ~01:30,
      62-68 dB(A);
      the one in the real-audio window is ``audio_party``: measured from the audio while
      the audio lasts, planted at ``audio_party_db`` after it.
    - ``pijp``: the neighbour's music on ~25 % of evenings, 50-120 min from 20:00-23:00,
      52-58 dB(A).
    - ``oost`` and any other site: a late evening now and then (~8 % of days), 45-55 dB(A).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[TrueEpisode] = []
    day = _local(tl.start_ms)
    while _ms(day) < tl.end_ms:
        for site in sites:
            wd = day.weekday()
            if site == sites[0]:
                if wd in (4, 5) and rng.random() < 0.9:
                    s = day.replace(hour=22) + timedelta(minutes=float(rng.normal(0, 15)))
                    e = day.replace(hour=23) + timedelta(hours=2.5 + float(rng.normal(0, 0.5)))
                    out.append(
                        TrueEpisode(site, "party", _ms(s), _ms(e), float(rng.uniform(62, 68)))
                    )
            elif site == sites[1 % len(sites)]:
                if rng.random() < 0.25:
                    s = day.replace(hour=20) + timedelta(minutes=float(rng.uniform(0, 180)))
                    e = s + timedelta(minutes=float(rng.uniform(50, 120)))
                    out.append(
                        TrueEpisode(site, "music", _ms(s), _ms(e), float(rng.uniform(52, 58)))
                    )
            elif rng.random() < 0.08:
                s = day.replace(hour=21) + timedelta(minutes=float(rng.uniform(0, 120)))
                e = s + timedelta(minutes=float(rng.uniform(30, 90)))
                out.append(TrueEpisode(site, "voices", _ms(s), _ms(e), float(rng.uniform(45, 55))))
        day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        day = datetime(day.year, day.month, day.day, tzinfo=AMS)
    # the real-audio party replaces whatever was planned for that night at site 0
    a0, a1 = audio_party
    out = [
        e
        for e in out
        if not (
            e.site == sites[0]
            and e.start_ms < tl.audio_end_ms + 6 * HOUR_MS
            and e.end_ms > tl.audio_start_ms
        )
    ]
    out.append(
        TrueEpisode(
            sites[0], "party", a0, a1, audio_party_db, "audio" if audio_measured else "synthesised"
        )
    )
    out = [e for e in out if e.start_ms < tl.end_ms]
    return sorted(out, key=lambda e: (e.start_ms, e.site))


# --------------------------------------------------------------------------- complaints/visits
COMPLAINT_COLUMNS = (
    "id",
    "received_at",
    "incident_start",
    "incident_end",
    "site",
    "category",
    "source",
)
VISIT_COLUMNS = ("id", "arrived_at", "left_at", "site", "outcome", "complaint_ids")


def make_reports(
    episodes: Sequence[TrueEpisode], tl: Timeline, sites: Sequence[str], seed: int
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Complaints and visits that behave like those in practice (seeded).

    Complaints: for about half the parties and a third of the music evenings one to
    three residents complain, 10-90 minutes after the onset (log-normal lag, median
    ~30 min), giving an incident start somewhat before they called; about one in six
    complaints is unfounded (no measured nuisance near it). Visits: an officer comes
    for ~60 % of complaints, hours to days later (log-normal, median ~5 h), and
    mostly finds nothing; a few routine daytime patrols find nothing either.
    """
    import numpy as np

    rng = np.random.default_rng(seed + 7)
    complaints: list[dict[str, Any]] = []
    categories = {"party": "feest", "music": "muziek", "voices": "stemmen"}
    sources = ("signalen", "telefoon", "app")
    for ep in episodes:
        p = {"party": 0.55, "music": 0.35, "voices": 0.15}[ep.kind]
        if rng.random() >= p:
            continue
        for _ in range(int(rng.integers(1, 4 if ep.kind == "party" else 2))):
            lag_min = float(np.clip(rng.lognormal(math.log(30), 0.6), 8, 150))
            received = ep.start_ms + round(lag_min * MIN_MS)
            if received >= tl.end_ms:
                continue
            start = received - round(float(rng.uniform(5, 45)) * MIN_MS)
            end = (
                received + round(float(rng.uniform(0, 60)) * MIN_MS) if rng.random() < 0.3 else None
            )
            complaints.append(
                {
                    "received": received,
                    "start": start,
                    "end": end,
                    "site": ep.site,
                    "category": categories[ep.kind],
                    "source": str(rng.choice(sources)),
                    "episode": ep,
                }
            )
    n_unfounded = max(1, len(complaints) // 6)
    busy = [(e.site, e.start_ms - 3 * HOUR_MS, e.end_ms + 3 * HOUR_MS) for e in episodes]
    tries = 0
    while n_unfounded > 0 and tries < 1000:
        tries += 1
        site = str(rng.choice(list(sites)))
        day = (
            tl.start_ms + int(rng.integers(0, max(1, (tl.end_ms - tl.start_ms) // DAY_MS))) * DAY_MS
        )
        received = day + round(float(rng.uniform(19, 26)) * HOUR_MS)
        if received >= tl.end_ms or any(s == site and a <= received <= b for s, a, b in busy):
            continue
        complaints.append(
            {
                "received": received,
                "start": received - 20 * MIN_MS,
                "end": None,
                "site": site,
                "category": "overig",
                "source": "telefoon",
                "episode": None,
            }
        )
        n_unfounded -= 1
    complaints.sort(key=lambda c: c["received"])
    rows_c = []
    for i, c in enumerate(complaints, 1):
        c["id"] = f"M-{2026_0000 + i}"
        rows_c.append(
            {
                "id": c["id"],
                "received_at": _iso_local(c["received"]),
                "incident_start": _iso_local(c["start"]),
                "incident_end": _iso_local(c["end"]) if c["end"] else "",
                "site": c["site"],
                "category": c["category"],
                "source": c["source"],
            }
        )
    visits: list[dict[str, Any]] = []
    for c in complaints:
        if rng.random() >= 0.6:
            continue
        lag_h = float(np.clip(rng.lognormal(math.log(5), 1.0), 0.75, 96))
        arrived = c["received"] + round(lag_h * HOUR_MS)
        if arrived >= tl.end_ms:
            continue
        visits.append({"arrived": arrived, "site": c["site"], "complaints": [c["id"]]})
    for _ in range(max(2, len(visits) // 4)):  # routine daytime patrols
        day = (
            tl.start_ms + int(rng.integers(0, max(1, (tl.end_ms - tl.start_ms) // DAY_MS))) * DAY_MS
        )
        arrived = day + round(float(rng.uniform(10, 17)) * HOUR_MS)
        if arrived < tl.end_ms:
            visits.append(
                {"arrived": arrived, "site": str(rng.choice(list(sites))), "complaints": []}
            )
    visits.sort(key=lambda v: v["arrived"])
    rows_v = []
    for i, v in enumerate(visits, 1):
        left = v["arrived"] + round(float(rng.uniform(10, 30)) * MIN_MS)
        during = any(
            e.site == v["site"] and e.start_ms <= v["arrived"] < e.end_ms for e in episodes
        )
        if during:
            outcome = str(rng.choice(["warning", "fine", "nothing_found"], p=[0.6, 0.2, 0.2]))
        else:
            outcome = "nothing_found" if rng.random() < 0.95 else "other"
        rows_v.append(
            {
                "id": f"H-{i:04d}",
                "arrived_at": _iso_local(v["arrived"]),
                "left_at": _iso_local(left),
                "site": v["site"],
                "outcome": outcome,
                "complaint_ids": ";".join(v["complaints"]),
            }
        )
    return rows_c, rows_v


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        w.writerows(rows)
    return path


# --------------------------------------------------------------------------- minute frames
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
    local = pd.to_datetime(t, unit="ms", utc=True).tz_convert(AMS)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
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
    calibrated = _local(start_ms - 20 * DAY_MS).replace(hour=10, minute=0, second=0, microsecond=0)
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
    """Publishes payloads with the wire encoder over MQTT (QoS 1), waiting for PUBACKs."""

    def __init__(self, url: str, client_id: str) -> None:
        import paho.mqtt.client as mqtt

        u = urllib.parse.urlparse(url)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.connect(u.hostname or "127.0.0.1", u.port or 1883)
        self.client.loop_start()
        self.pending: list[Any] = []
        self.count = 0

    def publish(self, kind: str, payload: dict[str, Any], retain: bool = False) -> None:
        from klankkast.sensor import wire

        topic = wire.topic(payload["site"], payload["node"], kind)
        info = self.client.publish(topic, wire.encode(kind, payload), qos=1, retain=retain)
        self.pending.append(info)
        self.count += 1
        if len(self.pending) >= 2000:
            self.flush()

    def flush(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        for info in self.pending:
            while not info.is_published():
                if time.monotonic() > deadline:
                    raise DemoError("MQTT broker did not acknowledge the published frames")
                time.sleep(0.002)
        self.pending.clear()

    def close(self) -> None:
        self.flush()
        self.client.loop_stop()
        self.client.disconnect()


# --------------------------------------------------------------------------- child processes
class Children:
    """Child processes of the demo, stopped in reverse order (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.services: list[Any] = []
        self.pools: list[concurrent.futures.ProcessPoolExecutor] = []

    def spawn(
        self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(log, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        out.close()
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for pool in self.pools:
            for worker in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    worker.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
        self.pools.clear()
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()
        for svc in reversed(self.services):
            with contextlib.suppress(Exception):
                svc.close()
        self.services.clear()


def tool(name: str) -> list[str]:
    """The command of a klankkast console script of this interpreter's environment."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    modules = {
        "klankkast-sensor": "klankkast.sensor.cli",
        "klankkast-ingest": "klankkast.ingest.cli",
        "klankkast-analyze": "klankkast.analysis.cli",
        "klankkast-courtyard": "klankkast.courtyard.cli",
    }
    return [sys.executable, "-m", modules[name]]


def has_alerts() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("klankkast.alerts.service") is not None
    except ModuleNotFoundError:
        return False


def has_courtyard() -> bool:
    """klankkast-courtyard and its web stack (the central extra) are installed."""
    import importlib.util

    try:
        return all(
            importlib.util.find_spec(m) is not None
            for m in ("klankkast.courtyard.cli", "starlette", "uvicorn")
        )
    except ModuleNotFoundError:
        return False


def run_step(name: str, cmd: list[str], log: Path, timeout_s: float = 600.0) -> None:
    """Run one CLI to completion, its output in ``log``; raise DemoError on failure."""
    with open(log, "ab") as out:
        try:
            proc = subprocess.run(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"{name} took longer than {timeout_s:.0f} s; see {log}") from None
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise DemoError(f"{name} failed with exit status {proc.returncode}; see {log}:\n{tail}")


def influx_count(influx: Influx, measurement: str, rp: str | None = None) -> int:
    target = f'"{rp}"."{measurement}"' if rp else f'"{measurement}"'
    rows = influx.rows(f'SELECT count("LAeq") FROM {target}', db=DB)
    return int(rows[0]["count"]) if rows else 0


def wait_counts(
    influx: Influx, expected: dict[tuple[str | None, str], int], timeout_s: float, what: str
) -> dict[str, int]:
    """Wait until InfluxDB holds at least the expected number of points per measurement."""
    deadline = time.monotonic() + timeout_s
    last_print = 0.0
    while True:
        got = {m: influx_count(influx, m, rp) for (rp, m) in expected}
        if all(got[m] >= n for (_rp, m), n in expected.items()):
            return got
        if time.monotonic() > deadline:
            raise DemoError(f"{what}: InfluxDB holds {got}, expected {dict(expected)}")
        if time.monotonic() - last_print > 5:
            last_print = time.monotonic()
            say(f"  ingest: {', '.join(f'{m} {got[m]}/{n}' for (_rp, m), n in expected.items())}")
        time.sleep(0.5)


# --------------------------------------------------------------------------- configs
def wait_stable(
    influx: Influx, expected: dict[tuple[str | None, str], int], quiet_s: float = 2.0
) -> dict[str, int]:
    """Counts once they have not changed for ``quiet_s`` (the ingest is done)."""
    last: dict[str, int] = {}
    since = time.monotonic()
    deadline = since + 60.0
    while time.monotonic() < deadline:
        got = {m: influx_count(influx, m, rp) for (rp, m) in expected}
        if got != last:
            last, since = got, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.25)
    return last


def node_config(
    path: Path, site: str, broker_url: str, outbox: Path, fs_hz: int, offset_db: float
) -> Path:
    path.write_text(
        f"""# demo node ({site}); generated by deploy/local/demo.py
[node]
id = "{NODE_ID}"
site = "{site}"
status_interval_s = 60

[audio]
device = "demo"
samplerate = {fs_hz}
block_ms = 100
channel = 0
summary_s = 60

[calibration]
offset_db = {offset_db}
calibrated_at = "2026-11-01T10:00:00+01:00"

[mqtt]
url = "{broker_url}"
client_id = "klankkast-demo-{site}-{os.getpid()}"
session_expiry_s = 3600

[outbox]
path = "{outbox}"
max_mb = 512
"""
    )
    return path


def central_config(path: Path, broker_url: str, influx_url: str) -> Path:
    path.write_text(
        f"""# demo central configuration; generated by deploy/local/demo.py
[mqtt]
url = "{broker_url}"
client_id = "klankkast-demo-ingest-{os.getpid()}"
share_group = "ingest"
session_expiry_s = 3600
receive_maximum = 65535

[influxdb]
url = "{influx_url}"
database = "{DB}"

[ingest]
batch_points = 5000
batch_ms = 500
stats_interval_s = 5.0
health_interval_s = 10.0
"""
    )
    return path


# --------------------------------------------------------------------------- the demo
@dataclass
class Options:
    out: Path
    weeks: int
    short: bool
    audio_s: float
    seconds_s: float
    sites: tuple[tuple[str, str, int], ...]
    seed: int
    keep: bool
    capacity: int
    plan_minutes: int
    #: the demo's "now" (UTC ms): the end of the simulated history
    now_ms: int
    #: where a Grafana on this data would answer (links are printed only when one does)
    grafana: str = "http://localhost:3000"


#: how far back ``--now`` may lie: InfluxDB drops 1-s frames older than the 30 days of
#: the ``raw`` retention policy, counted on the real clock
MAX_NOW_AGE_DAYS = 28


def parse_now(text: str | None, clock_ms: int) -> int:
    """``--now``: an ISO 8601 time (offset or Europe/Amsterdam) -> UTC ms; default the clock."""
    if text is None:
        return clock_ms
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--now must be an ISO 8601 time like 2026-12-03T22:37; got {text!r}"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=AMS)
    ms = _ms(t)
    if not clock_ms - MAX_NOW_AGE_DAYS * DAY_MS <= ms <= clock_ms + MIN_MS:
        raise ValueError(
            f"--now must lie within the last {MAX_NOW_AGE_DAYS} days (InfluxDB keeps 1-s "
            f"frames for 30 days, on the real clock) and not in the future; got {text!r}"
        )
    return ms


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="run-demo.sh",
        description="klankkast end to end on this machine: private Mosquitto and InfluxDB, "
        "simulated courtyard nodes (synthesised audio through the real node code, synthesised "
        "levels for the rest), ingest, complaints and visits, analysis report and patrol plan.",
        epilog="Output: report.html (Dutch), plan.json/plan.ics, complaints.csv, visits.csv, "
        "levels.csv (to re-run report and plan later) and summary.json in the output directory.",
    )
    p.add_argument(
        "--short",
        action="store_true",
        help="a quick run (two sites with one node, 5 minutes of audio); under 90 s",
    )
    p.add_argument("--out", type=Path, help="output directory (default demo-out/<UTC time>)")
    p.add_argument(
        "--weeks", type=int, default=2, help="weeks of history to simulate (default 2, 2-8)"
    )
    p.add_argument(
        "--audio-minutes",
        type=float,
        help="minutes of real audio through the node code (default 120, --short 5)",
    )
    p.add_argument(
        "--no-audio",
        action="store_true",
        help="skip the real-audio part (synthetic frames and levels only)",
    )
    p.add_argument("--seed", type=int, default=2026, help="random seed of the scenario")
    p.add_argument(
        "--now",
        metavar="ISO",
        help="the end of the simulated history, e.g. 2026-12-03T22:37 (Europe/Amsterdam unless "
        f"an offset is given; within the last {MAX_NOW_AGE_DAYS} days; default: the clock). "
        "The report and the plan are made as of this moment.",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep Mosquitto, InfluxDB and the residents' page running at the end until Ctrl-C",
    )
    p.add_argument(
        "--grafana",
        default="http://localhost:3000",
        metavar="URL",
        help="a Grafana with klankkast's dashboards on the demo's InfluxDB (see --keep); the "
        "dashboard links are printed only when it answers (default %(default)s)",
    )
    a = p.parse_args(argv)
    if not 2 <= a.weeks <= 8:
        p.error(
            f"--weeks must be from 2 to 8 (the plan is back-tested on the last week); got {a.weeks}"
        )
    audio_min = a.audio_minutes if a.audio_minutes is not None else (5.0 if a.short else 120.0)
    if a.no_audio:
        audio_min = 0.0
    elif not 1 <= audio_min <= 240:
        p.error(f"--audio-minutes must be from 1 to 240; got {audio_min:g}")
    try:
        now_ms = parse_now(a.now, int(time.time() * 1000))
    except ValueError as err:
        p.error(str(err))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = a.out if a.out is not None else REPO / "demo-out" / stamp
    sites = tuple((s, d, 1) for s, d, _n in SITES[:2]) if a.short else SITES
    return Options(
        out=out,
        weeks=a.weeks,
        short=a.short,
        audio_s=audio_min * 60.0,
        seconds_s=600.0 if a.short else 3600.0,
        sites=sites,
        seed=a.seed,
        keep=a.keep,
        capacity=4,
        plan_minutes=120,
        now_ms=now_ms,
        grafana=a.grafana.rstrip("/"),
    )


def audio_party(opts: Options, tl: Timeline) -> tuple[int, int]:
    """The party of the real-audio window, (start, end) in UTC ms: it starts 40 % into
    the window and lasts two hours past its end."""
    p0 = round(opts.audio_s * 0.4)
    return tl.audio_start_ms + p0 * 1000, tl.audio_end_ms + 2 * HOUR_MS


def render_audio(opts: Options, tl: Timeline, audio_dir: Path) -> Iterator[Path]:
    """Synthesise the real-audio window as WAV files of at most 30 minutes, one at a
    time (the caller measures and deletes each before the next is written)."""
    import soundscape

    fs_hz, offset_db = AUDIO_FS_HZ, AUDIO_OFFSET_DB
    dur = opts.audio_s
    p0 = round(dur * 0.4)
    start_hour = _local(tl.audio_start_ms).hour + _local(tl.audio_start_ms).minute / 60
    scene = soundscape.courtyard_scene(
        start_hour, dur, (p0, dur + 1), fs_hz=fs_hz, offset_db=offset_db, seed=opts.seed
    )
    piece_s = 1800.0  # a multiple of the 60-s render chunk
    blocks = soundscape.render_chunks(scene, dur, chunk_s=60.0)
    for k in range(math.ceil(dur / piece_s)):
        length = min(piece_s, dur - k * piece_s)
        path = audio_dir / f"{opts.sites[0][0]}-evening-{k + 1:02d}.wav"
        _write_piece(path, blocks, fs_hz, length)
        say(f"  audio: {path.name} ({length / 60:.0f} min, {fs_hz} Hz float) synthesised")
        yield path


def _write_piece(path: Path, blocks: Iterator[Any], fs_hz: int, length_s: float) -> Path:
    import numpy as np
    from scipy.io import wavfile

    need = round(length_s * fs_hz)
    parts = []
    have = 0
    while have < need:
        b = next(blocks)
        parts.append(b)
        have += b.size
    data = np.concatenate(parts)
    wavfile.write(path, fs_hz, np.clip(data[:need], -1, 1).astype(np.float32))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    children = Children()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C must work even when started from a shell that ignores SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(opts, children)
    except KeyboardInterrupt:
        say("interrupted; stopping child processes")
        return 130
    except (DemoError, ServiceError) as err:
        print(f"run-demo: {err}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()


def run(opts: Options, children: Children) -> int:
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="klankkast-demo-"))
    say(f"output in {out}")

    # 1. services --------------------------------------------------------------
    broker = Broker.launch(work / "mosquitto")
    children.services.append(broker)
    influx = Influx.launch(work / "influxdb")
    children.services.append(influx)
    say(f"Mosquitto on {broker.url}, InfluxDB on {influx.url} (child processes, temp dir {work})")

    # 2. central programs ------------------------------------------------------
    central = central_config(out / "central.toml", broker.url, influx.url)
    children.spawn(
        "ingest", [*tool("klankkast-ingest"), "--config", str(central)], logs / "ingest.log"
    )
    alerts_running = False
    if has_alerts():
        children.spawn(
            "alerts", [*tool("klankkast-alerts"), "--config", str(central)], logs / "alerts.log"
        )
        alerts_running = True
    sites = [s for s, _d, _n in opts.sites]
    wait_ingest_ready(broker, influx, children, logs)
    say(
        "klankkast-ingest is subscribed and writing"
        + (", klankkast-alerts running" if alerts_running else "")
    )

    # 3. the scenario --------------------------------------------------------------
    tl = make_timeline(opts.now_ms, opts.weeks, opts.audio_s, opts.seconds_s)
    say(
        f"period {_iso_local(tl.start_ms)} .. {_iso_local(tl.end_ms)} ({opts.weeks} weeks), "
        f"sites {', '.join(sites)}"
    )
    audio_dir = Path(tempfile.mkdtemp(prefix="audio-", dir=work))
    if opts.audio_s > 0:
        episodes = plan_episodes(tl, sites, opts.seed, audio_party(opts, tl))
    else:
        party = (tl.audio_start_ms + HOUR_MS // 2, tl.audio_start_ms + 4 * HOUR_MS)
        episodes = plan_episodes(tl, sites, opts.seed, party, 64.0, audio_measured=False)

    # 3a. real audio through the node's metrology core, in a worker process --------
    # (CPU-bound like the synthesis below: on two cores the two run side by side)
    site0 = sites[0]
    audio_job = None
    if opts.audio_s > 0:
        say(
            f"synthesising {opts.audio_s / 60:.0f} min of courtyard audio for "
            f"{site0}/{NODE_ID}-001 from {_iso_local(tl.audio_start_ms)} "
            "(traffic, voices, music, door slams, party) and measuring it with the node's code"
        )
        ncfg0 = node_config(
            out / f"node-{site0}-audio.toml",
            site0,
            broker.url,
            work / f"outbox-{site0}-audio.sqlite",
            AUDIO_FS_HZ,
            AUDIO_OFFSET_DB,
        )
        ctx = multiprocessing.get_context("fork")
        audio_pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
        children.pools.append(audio_pool)
        audio_job = audio_pool.submit(
            audio_worker, opts, tl, audio_dir, ncfg0, logs / "simulate-audio.log", say.t0
        )

    # 3b. synthetic 1-s frames for the last stretch of every node ------------------
    for site, _d, n_nodes in opts.sites:
        cfg = node_config(
            out / f"node-{site}.toml",
            site,
            broker.url,
            work / f"outbox-{site}.sqlite",
            16000,
            110.0,
        )
        eps = [
            f"{(e.start_ms - tl.seconds_start_ms) / 1000:.0f}:{(e.end_ms - max(e.start_ms, tl.seconds_start_ms)) / 1000:.0f}:{e.laeq_db:.1f}"
            for e in episodes
            if e.site == site
            and math.isfinite(e.laeq_db)
            and e.end_ms > tl.seconds_start_ms
            and e.start_ms >= tl.seconds_start_ms
        ]
        say(
            f"  klankkast-sensor simulate: {site}, {n_nodes} node(s), last {opts.seconds_s / 60:.0f} min of 1-s frames"
        )
        run_step(
            "klankkast-sensor simulate",
            [
                *tool("klankkast-sensor"),
                "simulate",
                "--config",
                str(cfg),
                "--nodes",
                str(n_nodes),
                "--rate",
                "max",
                "--duration",
                f"{opts.seconds_s:.0f}",
                "--start",
                _iso_local(tl.seconds_start_ms),
                "--seed",
                str(opts.seed),
                "--quiet",
                *[f"--episode={e}" for e in eps],
            ],
            logs / "simulate.log",
        )

    # 3c. synthesised per-minute levels for the whole period -----------------------
    say(
        f"publishing synthesised per-minute levels for {opts.weeks} weeks "
        f"({sum(n for *_x, n in opts.sites)} nodes) with the wire encoder"
    )
    pub = WirePublisher(broker.url, f"klankkast-demo-levels-{os.getpid()}")
    minutes = 0
    for site, _d, n_nodes in opts.sites:
        for i in range(n_nodes):
            node = f"{NODE_ID}-{i + 1:03d}"
            skip = [(tl.seconds_start_ms, tl.end_ms)]
            if site == site0 and i == 0:
                skip.append((tl.audio_start_ms, tl.audio_end_ms))
            for payload in minute_payloads(
                site, node, i, tl.start_ms, tl.seconds_start_ms, episodes, skip, opts.seed * 31 + i
            ):
                pub.publish("minute", payload)
                minutes += 1
            for payload in status_payloads(site, node, tl.start_ms, tl.end_ms, opts.seed + i):
                pub.publish("status", payload)
        say(f"  {site}: published")
    pub.close()
    audio_seconds, n_wavs = 0, 0
    if audio_job is not None:
        audio_seconds, n_wavs = audio_job.result()
        audio_pool.shutdown()
        children.pools.remove(audio_pool)
    audio_minutes = math.ceil(audio_seconds / 60)
    sim_minutes = sum(n for *_x, n in opts.sites) * math.ceil(opts.seconds_s / 60)
    sim_seconds = sum(n for *_x, n in opts.sites) * round(opts.seconds_s)
    # the meter may hold back a partial block at the end of each file: a little slack,
    # then wait until the counts stop changing
    expected = {
        ("forever", "minute"): minutes + sim_minutes + audio_minutes - n_wavs,
        ("raw", "second"): sim_seconds + audio_seconds - 2 * n_wavs,
    }
    got = wait_counts(influx, expected, 240.0, "waiting for the ingest")
    got = wait_stable(influx, expected)
    say(f"ingested: {got['minute']} minute summaries, {got['second']} 1-s frames")

    # 4. complaints and visits -----------------------------------------------------
    rows_c, rows_v = make_reports(episodes, tl, sites, opts.seed)
    complaints_csv = write_csv(out / "complaints.csv", COMPLAINT_COLUMNS, rows_c)
    visits_csv = write_csv(out / "visits.csv", VISIT_COLUMNS, rows_v)
    (out / "truth.json").write_text(
        json.dumps(
            [
                asdict(e)
                | {
                    "laeq_db": e.laeq_db if math.isfinite(e.laeq_db) else None,
                    "start": _iso_local(e.start_ms),
                    "end": _iso_local(e.end_ms),
                }
                for e in episodes
            ],
            indent=1,
        )
    )
    say(
        f"{len(rows_c)} complaints and {len(rows_v)} visits generated ({complaints_csv.name}, "
        f"{visits_csv.name}); {len(episodes)} planted episodes in truth.json"
    )

    # 4b. residents: the courtyard page, invitations and their marks ---------------
    residents = residents_step(opts, tl, out, work, influx, children, central, episodes)

    # 5. analysis and plan ---------------------------------------------------------
    levels_url = f"influxdb+{influx.url}/{DB}"
    analyze = tool("klankkast-analyze")
    report_dir = out / "report"
    plan_dir = out / "plan"
    # the period of the simulated history, so that neither depends on the clock
    period = ["--from", _iso_local(tl.start_ms), "--to", _iso_local(tl.end_ms)]
    say(f"klankkast-analyze report --levels {levels_url} ...")
    report_cmd = [
        *analyze,
        "report",
        "--complaints",
        str(complaints_csv),
        "--visits",
        str(visits_csv),
        "--out",
        str(report_dir),
        "--lang",
        "nl",
        "--influx",
        levels_url,
        *period,
        "--quiet",
    ]
    try:
        run_step(
            "klankkast-analyze report", [*report_cmd, "--levels", levels_url], logs / "report.log"
        )
    except DemoError as err:
        # fall back to a CSV export of the same levels (the analysis' other input)
        levels_csv = export_levels_csv(influx, out / "levels.csv", tl.start_ms, tl.end_ms)
        say(
            f"  reading levels from InfluxDB failed ({str(err).splitlines()[-1][:160]}); "
            f"using an export of the same levels: {levels_csv.name}"
        )
        levels_url = str(levels_csv)
        run_step(
            "klankkast-analyze report", [*report_cmd, "--levels", levels_url], logs / "report.log"
        )
    if not (out / "levels.csv").exists():
        # the levels next to the outputs: report and plan can be re-run after the demo
        export_levels_csv(influx, out / "levels.csv", tl.start_ms, tl.end_ms)
    say("klankkast-analyze plan ...")
    plan_error = ""
    plan_cmd = [
        *analyze,
        "plan",
        "--levels",
        levels_url,
        "--visits",
        str(visits_csv),
        "--capacity",
        str(opts.capacity),
        "--duration",
        str(opts.plan_minutes),
        "--weeks",
        str(max(1, opts.weeks - 1)),
        *period,
        "--now",
        _iso_local(tl.end_ms),
        "--out",
        str(plan_dir),
    ]
    try:
        run_step("klankkast-analyze plan", plan_cmd, logs / "plan.log")
    except DemoError as err:
        # the report and the numbers still stand; say plainly what is missing
        plan_error = str(err).splitlines()[0]
        say(f"  the patrol plan failed: {plan_error}")
    if not plan_error:
        # the report again, now with the plan's section
        run_step(
            "klankkast-analyze report",
            [*report_cmd, "--levels", levels_url, "--plan", str(plan_dir / "plan.json")],
            logs / "report.log",
        )

    summary = build_summary(
        opts,
        tl,
        out,
        report_dir,
        plan_dir,
        got,
        rows_c,
        rows_v,
        episodes,
        audio_seconds,
        minutes,
        influx,
    )
    serve_residents(residents, central, plan_dir / "plan.json", children, logs)
    summary["residents"] = residents
    if plan_error:
        summary["partial"] = {"plan": plan_error}
    # report --influx wrote the headline numbers per site; the plan's back-test here
    from klankkast.analysis.headline import plan_lines

    plan_doc = _read_json(plan_dir / "plan.json")
    if plan_doc:
        influx.write(plan_lines(plan_doc, tl.end_ms), DB, rp="forever", precision="ms")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print_summary(summary)
    if opts.keep:
        page = (summary.get("residents") or {}).get("page")
        say(
            f"--keep: Mosquitto {broker.url}, InfluxDB {influx.url}"
            + (f" and the residents' page {page}" if page else "")
            + " stay up until Ctrl-C"
        )
        print(grafana_hint(influx.url), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


def residents_step(
    opts: Options,
    tl: Timeline,
    out: Path,
    work: Path,
    influx: Influx,
    children: Children,
    central: Path,
    episodes: list[TrueEpisode],
) -> dict[str, Any]:
    """The residents' part of the demo: the ``[courtyard]`` section of central.toml,
    invitation letters per courtyard, and residents' marks planted through the page's
    own InfluxDB adapter (before the report, which reads them). The page itself starts
    after the plan (:func:`serve_residents`). Returns the ``residents`` part of the
    summary."""
    if not has_courtyard():
        say("klankkast-courtyard is not installed (the central extra); no residents' page")
        return {"page": None, "why": "klankkast-courtyard is not installed"}

    from residents import courtyard_section, invitation_ids, invitation_link, plant_marks

    from klankkast.courtyard.config import InfluxConfig
    from klankkast.courtyard.influxstore import InfluxCourtyard, MarkPoint
    from klankkast.courtyard.tokens import household_hash

    logs = out / "logs"
    port = free_port()
    names = {s: f"{s} ({d})"[:100] for s, d, _n in opts.sites}
    with central.open("a") as f:
        f.write(courtyard_section(names, work, influx.url, DB, port))
    influx.query(f'CREATE RETENTION POLICY "experience" ON "{DB}" DURATION 365d REPLICATION 1')
    cy = [*tool("klankkast-courtyard"), "--config", str(central)]
    letters = out / "letters"
    per_site = 4
    for site in names:
        run_step(
            "klankkast-courtyard invite",
            [*cy, "invite", "--site", site, "--count", str(per_site), "--out", str(letters)],
            logs / "courtyard.log",
        )
    ids = {site: invitation_ids(letters, site) for site in names}
    key = (work / "courtyard.key").read_bytes().strip()
    marks = plant_marks(
        [(e.site, e.kind, e.start_ms, e.end_ms) for e in episodes],
        {site: len(v) for site, v in ids.items()},
        tl.start_ms,
        tl.end_ms,
        opts.seed,
    )
    store = InfluxCourtyard(InfluxConfig(url=influx.url, database=DB))
    store.start()
    try:
        points = [
            MarkPoint(m.site, household_hash(key, ids[m.site][m.household_index]), m.t_ms,
                      m.kind, m.severity)
            for m in marks
        ]  # fmt: skip
        for i in range(0, len(points), 1000):
            store.write_marks(points[i : i + 1000])
    finally:
        store.close()
    n_follow = sum(1 for m in marks if m.follows_episode)
    say(
        f"{per_site} residents' invitation letters per courtyard in {letters.name}/, "
        f"{len(marks)} marks planted ({n_follow} during planted nuisance)"
    )
    site0 = opts.sites[0][0]
    return {
        "page": f"http://127.0.0.1:{port}",
        "invitation": invitation_link(letters, ids[site0][1], f"http://127.0.0.1:{port}"),
        "invitation_status": None,
        "letters": str(letters),
        "marks": len(marks),
        "marks_during_planted_nuisance": n_follow,
        "households": sum(len(v) for v in ids.values()),
    }


def serve_residents(
    residents: dict[str, Any], central: Path, plan_json: Path, children: Children, logs: Path
) -> None:
    """Start the residents' page (with the plan's windows when there is a plan) and open
    an invitation link as a resident's browser would: ``invitation_status`` is the
    answer."""
    if not residents.get("page"):
        return
    import http.cookiejar

    from residents import with_plan

    if plan_json.is_file():
        central.write_text(with_plan(central.read_text(), plan_json))
    cmd = [*tool("klankkast-courtyard"), "--config", str(central), "serve"]
    children.spawn("courtyard", cmd, logs / "courtyard.log")
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    status: int | None = None
    deadline = time.monotonic() + 30.0
    while status is None and time.monotonic() < deadline:
        try:
            with opener.open(residents["invitation"], timeout=5) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (OSError, urllib.error.URLError):
            time.sleep(0.3)
    residents["invitation_status"] = status
    say(f"residents' page on {residents['page']}: {residents['invitation']} (answered {status})")


def export_levels_csv(influx: Influx, path: Path, start_ms: int, end_ms: int) -> Path:
    """Per-minute levels from InfluxDB as the analysis' CSV (time, site, node, LAeq, ...)."""
    cols = ("LAeq", "LCeq", "LAFmax", "LA90")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("time", "site", "node", *cols))
        t = start_ms
        while t < end_ms:
            t1 = min(end_ms, t + 7 * DAY_MS)
            rows = influx.rows(
                f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)} FROM "forever"."minute" '
                f'WHERE time >= {t}ms AND time < {t1}ms GROUP BY "site", "node"',
                db=DB,
            )
            for r in rows:
                w.writerow((r["time"], r["site"], r["node"], *(r.get(c, "") for c in cols)))
            t = t1
    return path


def audio_worker(
    opts: Options, tl: Timeline, audio_dir: Path, node_cfg: Path, log: Path, t0: float
) -> tuple[int, int]:
    """Synthesise the audio piece by piece and stream each through the node's code
    (``klankkast-sensor simulate --wav``); returns (seconds measured, pieces).

    Runs in a worker process: SIGTERM (the parent stopping) ends the running
    ``simulate`` too; Ctrl-C is left to the parent.
    """
    current: list[subprocess.Popen[bytes]] = []

    def on_term(_signum: int, _frame: Any) -> None:
        for proc in current:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    say.t0 = t0  # same clock as the parent (CLOCK_MONOTONIC is system-wide)
    t = tl.audio_start_ms
    n = 0
    for wav in render_audio(opts, tl, audio_dir):
        say(f"  klankkast-sensor simulate --wav {wav.name} --start {_iso_local(t)}")
        cmd = [
            *tool("klankkast-sensor"),
            "simulate",
            "--config",
            str(node_cfg),
            "--nodes",
            "1",
            "--rate",
            "max",
            "--wav",
            str(wav),
            "--start",
            _iso_local(t),
            "--quiet",
        ]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            current[:] = [proc]
            rc = proc.wait()
            current.clear()
        if rc != 0:
            tail = log.read_text(errors="replace")[-1500:]
            raise DemoError(
                f"klankkast-sensor simulate --wav failed with exit status {rc}:\n{tail}"
            )
        t += round(_wav_seconds(wav) * 1000)
        wav.unlink()
        n += 1
    return round((t - tl.audio_start_ms) / 1000), n


def _wav_seconds(path: Path) -> float:
    from scipy.io import wavfile

    fs, data = wavfile.read(path, mmap=True)
    return float(len(data) / fs)


def wait_ingest_ready(broker: Broker, influx: Influx, children: Children, logs: Path) -> None:
    """Publish a probe status until it shows up in InfluxDB: the ingest is subscribed."""
    pub = WirePublisher(broker.url, f"klankkast-demo-probe-{os.getpid()}")
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            for name, proc in children.procs:
                if proc.poll() is not None:
                    tail = (logs / f"{name}.log").read_text(errors="replace")[-1500:]
                    raise DemoError(
                        f"klankkast-{name} exited with status {proc.returncode}:\n{tail}"
                    )
            pub.publish(
                "status",
                {
                    "site": "demo",
                    "node": "probe",
                    "t": int(time.time() * 1000),
                    "state": "online",
                    "version": "demo",
                    "uptime_s": 0.0,
                },
            )
            pub.flush()
            time.sleep(0.5)
            with contextlib.suppress(Exception):
                rows = influx.rows('SELECT count("uptime_s") FROM "status"', db=DB)
                if rows and int(rows[0]["count"]) > 0:
                    influx.query('DROP SERIES FROM "status" WHERE "site" = \'demo\'', db=DB)
                    return
        raise DemoError(
            f"klankkast-ingest did not write to InfluxDB within 60 s; see {logs / 'ingest.log'}"
        )
    finally:
        pub.close()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _get(d: dict[str, Any], key: str) -> Any:
    from klankkast.analysis.headline import dotted

    return dotted(d, key)


def build_summary(
    opts: Options,
    tl: Timeline,
    out: Path,
    report_dir: Path,
    plan_dir: Path,
    got: dict[str, int],
    rows_c: list[dict[str, str]],
    rows_v: list[dict[str, str]],
    episodes: list[TrueEpisode],
    audio_seconds: int,
    minutes: int,
    influx: Influx,
) -> dict[str, Any]:
    rep = _read_json(report_dir / "summary.json")
    plan = _read_json(plan_dir / "plan.json")
    return {
        "out_dir": str(out),
        "elapsed_s": round(say.elapsed(), 1),
        "period": {
            "start": _iso_local(tl.start_ms),
            "end": _iso_local(tl.end_ms),
            "weeks": opts.weeks,
        },
        "sites": [s for s, _d, _n in opts.sites],
        "headline": {
            "complaints_total": _get(rep, "complaints.total"),
            "corroborated_complaints": _get(rep, "complaints.corroborated"),
            "corroboration_rate": _get(rep, "complaints.corroboration_rate"),
            "visits_total": _get(rep, "visits.total"),
            "visit_hit_rate": _get(rep, "visits.hit_rate"),
            "plan_hit_rate": _get(plan, "backtest.hit_rate_plan"),
            "random_plan_hit_rate": _get(plan, "backtest.hit_rate_random"),
            "historical_hit_rate": _get(plan, "backtest.hit_rate_historical"),
            "episodes_detected": _get(rep, "episodes.count"),
            "episodes_without_complaint_rate": _get(rep, "episodes.without_complaint_rate"),
            "association_p_value": _get(rep, "association.p_value"),
            "residents_marks": _get(rep, "marks.total"),
            "residents_marks_during_nuisance": _get(rep, "marks.matched"),
        },
        "files": {
            "report": str(report_dir / "report.html"),
            "report_summary": str(report_dir / "summary.json"),
            "plan": str(plan_dir / "plan.json"),
            "plan_ics": str(plan_dir / "plan.ics"),
            "complaints": str(out / "complaints.csv"),
            "visits": str(out / "visits.csv"),
            "truth": str(out / "truth.json"),
            "logs": str(out / "logs"),
        },
        "dashboards": {
            "dir": str(REPO / "deploy" / "grafana" / "dashboards"),
            "uids": list(DASHBOARD_UIDS),
            "grafana": {"url": opts.grafana, "answers": grafana_answers(opts.grafana)},
            "audio_window": {
                "from": tl.audio_start_ms,
                "to": tl.audio_start_ms + audio_seconds * 1000,
            },
            # where to look once Grafana runs on this data (see --keep)
            "links": {
                "courtyard-now": f"{opts.grafana}/d/courtyard-now?from="
                f"{tl.audio_start_ms}&to={tl.audio_end_ms + 2 * HOUR_MS}&var-site={opts.sites[0][0]}",
                "nuisance-vs-reports": f"{opts.grafana}/d/nuisance-vs-reports?from="
                f"{tl.start_ms}&to={tl.end_ms}",
                "fleet-health": f"{opts.grafana}/d/fleet-health?from=now-24h&to=now",
            },
        },
        "data": {
            "real_audio": {
                "what": "synthesised courtyard audio measured by the node's metrology core "
                "(klankkast-sensor simulate --wav)",
                "site": opts.sites[0][0],
                "node": f"{NODE_ID}-001",
                "start": _iso_local(tl.audio_start_ms),
                "seconds": audio_seconds,
            },
            "synthetic_seconds": {
                "what": "1-s frames from the node simulator (klankkast-sensor simulate)",
                "start": _iso_local(tl.seconds_start_ms),
                "seconds_per_node": round(opts.seconds_s),
            },
            "synthesised_minutes": {
                "what": "per-minute summaries synthesised by the demo, published with the wire "
                "encoder",
                "count": minutes,
            },
            "influxdb_points": got,
        },
        "truth": {
            "episodes": len(episodes),
            "complaints": len(rows_c),
            "complaints_unfounded": sum(1 for r in rows_c if r["category"] == "overig"),
            "visits": len(rows_v),
        },
    }


def _fmt_rate(x: Any) -> str:
    return "n/a" if not isinstance(x, int | float) or not math.isfinite(x) else f"{100 * x:.0f} %"


def print_summary(s: dict[str, Any]) -> None:
    h = s["headline"]
    f = s["files"]
    print()
    print("klankkast demo: done in {:.0f} s".format(s["elapsed_s"]))
    print(f"  report     {f['report']}")
    print(f"  plan       {f['plan']}  (calendar: {f['plan_ics']})")
    print(
        f"  dashboards {s['dashboards']['dir']}  (Grafana uids: {', '.join(s['dashboards']['uids'])})"
    )
    print(f"  data       {f['complaints']}, {f['visits']}, summary {s['out_dir']}/summary.json")
    for line in grafana_lines(s):
        print(line)
    print()
    print(
        f"  corroborated complaints: {h['corroborated_complaints']} of {h['complaints_total']}"
        f" ({_fmt_rate(h['corroboration_rate'])})"
    )
    print(
        f"  visit hit rate:          {_fmt_rate(h['visit_hit_rate'])} of {h['visits_total']} visits "
        "came while nuisance was going on"
    )
    print(
        f"  plan hit rate:           {_fmt_rate(h['plan_hit_rate'])} (random plan "
        f"{_fmt_rate(h['random_plan_hit_rate'])}, historical visits {_fmt_rate(h['historical_hit_rate'])})"
    )
    r = s.get("residents") or {}
    if r.get("page"):
        print()
        print(
            f"  residents' page: {r['invitation']}  ({r['marks']} marks of {r['households']} "
            f"households; letters in {r['letters']}; up while the demo runs, --keep keeps it)"
        )
    d = s["data"]
    print()
    print(
        f"  real audio:   {d['real_audio']['seconds'] / 60:.0f} min of synthesised courtyard audio "
        f"through the node's metrology core ({d['real_audio']['site']}/{d['real_audio']['node']}, "
        f"from {d['real_audio']['start']})"
    )
    print(
        f"  synthetic:    1-s frames from the node simulator for the last "
        f"{d['synthetic_seconds']['seconds_per_node'] / 60:.0f} min of every node; "
        f"{d['synthesised_minutes']['count']} synthesised minute summaries for the rest"
    )


def grafana_answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a Grafana answers ``GET /api/health`` at ``url`` with 200."""
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=timeout_s) as resp:
            return bool(resp.status == 200 and b"database" in resp.read(4096))
    except (OSError, ValueError):
        return False


def grafana_lines(s: dict[str, Any]) -> list[str]:
    """The dashboard links when a Grafana answers; otherwise how to start one."""
    g = s["dashboards"].get("grafana") or {}
    if g.get("answers"):
        return [f"  Grafana {g['url']}:"] + [
            f"    {uid:20} {link}" for uid, link in s["dashboards"]["links"].items()
        ]
    return [
        f"  Grafana: nothing answers at {g.get('url')}; to see the dashboards on this data, "
        "run the demo with --keep and start one:",
        *("  " + line for line in grafana_hint("<the demo's InfluxDB URL>").splitlines()),
    ]


def grafana_hint(influx_url: str) -> str:
    return (
        "Grafana on this data (needs docker):\n"
        "  docker run --rm --network host "
        f"-e KLANKKAST_INFLUX_URL={influx_url} -e KLANKKAST_INFLUX_DB={DB} "
        "-e KLANKKAST_INFLUX_USER= -e KLANKKAST_GRAFANA_WEBHOOK_URL=http://127.0.0.1:9/unset "
        "-v /dev/null:/run/secrets/influx-grafana.password:ro "
        f"-v {REPO}/deploy/grafana/provisioning:/etc/grafana/provisioning:ro "
        f"-v {REPO}/deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro "
        "grafana/grafana-oss:11.3.0\n"
        "  then open the links under dashboards.links in summary.json (login admin/admin; "
        "--grafana URL if it is not on localhost:3000)"
    )


if __name__ == "__main__":
    sys.exit(main())
