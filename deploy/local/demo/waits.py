"""Waiting for the ingest: subscribed and writing, then done with what the demo sent.

Counted in InfluxDB, the only place where "ingested" can be seen from outside.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from services import Broker, Influx

from ._common import DB, DemoError, say
from .children import Children
from .frames import WirePublisher

__all__ = ["influx_count", "wait_counts", "wait_ingest_ready", "wait_stable"]

#: (retention policy or None, measurement) -> the points expected there
Expected = dict[tuple[str | None, str], int]


def influx_count(influx: Influx, measurement: str, rp: str | None = None) -> int:
    target = f'"{rp}"."{measurement}"' if rp else f'"{measurement}"'
    rows = influx.rows(f'SELECT count("LAeq") FROM {target}', db=DB)
    return int(rows[0]["count"]) if rows else 0


def _counts(influx: Influx, expected: Expected) -> dict[str, int]:
    return {m: influx_count(influx, m, rp) for (rp, m) in expected}


def wait_counts(influx: Influx, expected: Expected, timeout_s: float, what: str) -> dict[str, int]:
    """Wait until InfluxDB holds at least the expected number of points per measurement."""
    deadline = time.monotonic() + timeout_s
    last_print = 0.0
    while True:
        got = _counts(influx, expected)
        if all(got[m] >= n for (_rp, m), n in expected.items()):
            return got
        if time.monotonic() > deadline:
            raise DemoError(f"{what}: InfluxDB holds {got}, expected {dict(expected)}")
        if time.monotonic() - last_print > 5:
            last_print = time.monotonic()
            say(f"  ingest: {', '.join(f'{m} {got[m]}/{n}' for (_rp, m), n in expected.items())}")
        time.sleep(0.5)


def wait_stable(influx: Influx, expected: Expected, quiet_s: float = 2.0) -> dict[str, int]:
    """Counts once they have not changed for ``quiet_s`` (the ingest is done)."""
    last: dict[str, int] = {}
    since = time.monotonic()
    deadline = since + 60.0
    while time.monotonic() < deadline:
        got = _counts(influx, expected)
        if got != last:
            last, since = got, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.25)
    return last


def _check_alive(children: Children, logs: Path) -> None:
    for name, proc in children.procs:
        if proc.poll() is not None:
            tail = (logs / f"{name}.log").read_text(errors="replace")[-1500:]
            raise DemoError(f"klankkast-{name} exited with status {proc.returncode}:\n{tail}")


def wait_ingest_ready(broker: Broker, influx: Influx, children: Children, logs: Path) -> None:
    """Publish a probe status until it shows up in InfluxDB: the ingest is subscribed."""
    pub = WirePublisher(broker.url, f"klankkast-demo-probe-{os.getpid()}")
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            _check_alive(children, logs)
            pub.publish(
                "status",
                {"site": "demo", "node": "probe", "t": int(time.time() * 1000),
                 "state": "online", "version": "demo", "uptime_s": 0.0},
            )  # fmt: skip
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
        pub.close(wait=False)  # each probe was flushed already
