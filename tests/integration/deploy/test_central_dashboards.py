"""Every panel and annotation query of the Grafana dashboards, with Grafana's macros
expanded, returns data from a real InfluxDB filled by the real programs:

- ``klankkast-sensor simulate`` (two nodes, 1-s frames and minute summaries, a planted
  72 dB(A) episode) publishes to a real Mosquitto, with node status messages;
- ``klankkast-ingest`` writes them to InfluxDB (frames, status, node_health,
  ingest_stats);
- ``klankkast-alerts`` detects the episode and writes ``alert`` points;
- before that stream, two weeks of minute summaries of both nodes (music every evening,
  the demo's level model) go through the node's wire encoder, Mosquitto and the ingest;
- the scheduled analysis, ``klankkast-analyze run --once`` with the ``[analysis]`` table
  of the same ``central.toml``, makes the patrol plan (back-tested on the last complete
  week, fitted on the one before) and the report, and writes ``complaint``, ``visit``,
  ``episode``, the headline numbers per site and the plan's back-test (``analysis``) and
  the period limits (``limit``); its ``latest`` and ``current-plan`` folders hold what
  the dashboards' report links point at.

The alert-rule queries must run without error (whether they return series depends on
the time: a replayed stream is "late" for the episode rule).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import demo
import pytest
import yaml

from klankkast.courtyard.config import InfluxConfig
from klankkast.courtyard.influxstore import InfluxCourtyard, MarkPoint

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
DB = "klankkast"
SITE = "yard1"
NODES = ("n-001", "n-002")
STREAM_S = 1200
# offset s, duration s, LAeq dB(A): longer than confirm_s = 300, and after the first
# ~8 min of the stream, which the rules need to measure the residual the episode is
# judged against (a source already on when the stream starts has no residual)
EPISODE = (600, 420, 72.0)
# [analysis] history_days (its minimum is 7): two weeks hold one complete local week for
# the plan's back-test and the part-week before it to fit on, whatever the weekday
HISTORY_DAYS = 14
# music every evening of the history, 21:00-23:00 local, at this LAeq dB(A): well over
# the default evening and night limits (45 and 40 dB(A)), so every night has an episode
EVENING = (21, 2, 66.0)


def _queries() -> Iterator[tuple[str, str, str]]:
    for path in sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        for panel in dash["panels"]:
            for t in panel["targets"]:
                yield "panel", f"{dash['uid']}: {panel['title']} [{t['refId']}]", t["query"]
        for ann in dash["annotations"]["list"]:
            if "query" in ann:
                yield "annotation", f"{dash['uid']}: annotation {ann['name']}", ann["query"]
        for var in dash["templating"]["list"]:
            if var["type"] == "query":  # not the text box $reports (an address)
                yield "variable", f"{dash['uid']}: variable {var['name']}", var["query"]
    for path in sorted((REPO / "deploy" / "grafana" / "provisioning" / "alerting").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                for d in rule["data"]:
                    if d["datasourceUid"] != "__expr__":
                        yield "rule", f"alert rule {rule['title']}", d["model"]["query"]


def expand(query: str, t0_ms: int, t1_ms: int) -> str:
    """Grafana's InfluxQL macros and template variables, as Grafana substitutes them."""
    q = query.replace("$timeFilter", f"time >= {t0_ms}ms AND time <= {t1_ms}ms")
    q = q.replace("$__interval_ms", "1000").replace("$__interval", "1s")
    q = q.replace("$site", SITE).replace("$node", NODES[0])
    leftover = re.findall(r"\$[A-Za-z_]\w*", q.replace("$tag_", ""))
    assert not leftover, f"unexpanded macro {leftover} in {q}"
    return q


def _has_value(result: dict[str, Any]) -> bool:
    for series in result.get("series", []):
        for row in series.get("values", []):
            if any(v is not None for v in row[1:]):
                return True
    return False


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _count(influx: Any, what: str, field: str = "LAeq") -> int:
    try:
        rows = influx.rows(f'SELECT count("{field}") FROM {what}', db=DB)
    except Exception:
        return 0
    return int(rows[0]["count"]) if rows else 0


def _central_toml(path: Path, broker: Any, influx: Any) -> Path:
    """The central configuration of ingest, alerts and the scheduled analysis, as in
    production one file (deploy/central/central.compose.toml); the analysis' exports and
    reports in the file's folder."""
    path.write_text(
        f"""[mqtt]
url = "{broker.url}"
client_id = "test-ingest-{os.getpid()}"
share_group = "ingest"
session_expiry_s = 600

[influxdb]
url = "{influx.url}"
database = "{DB}"

[ingest]
batch_points = 2000
batch_ms = 200
stats_interval_s = 1.0
health_interval_s = 1.0

[alerts]
client_id = "test-alerts-{os.getpid()}"

[analysis]
levels = "influxdb+{influx.url}/{DB}"
out_dir = "reports"
complaints = "complaints.csv"
visits = "visits.csv"
lang = "en"
history_days = {HISTORY_DAYS}
"""
    )
    return path


@pytest.mark.timeout(300)
def test_every_dashboard_query_returns_data(mosquitto: Any, influxdb: Any, tmp_path: Path) -> None:
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("ingest", "alerts")}  # noqa: SIM115
    central = _central_toml(tmp_path / "central.toml", mosquitto, influxdb)
    procs = [
        subprocess.Popen(
            [str(BIN / f"klankkast-{name}"), "--config", str(central)],
            stdout=logs[name],
            stderr=subprocess.STDOUT,
        )
        for name in ("ingest", "alerts")
    ]
    try:
        _fill(mosquitto, influxdb, tmp_path, procs)
        now_ms = int(time.time() * 1000)
        t0, t1 = now_ms - 3 * 3_600_000, now_ms + 300_000
        failures = []
        ran = 0
        for kind, name, query in _queries():
            q = expand(query, t0, t1)
            doc = influxdb.query(q, db=DB)
            ran += 1
            if "error" in doc:
                failures.append(f"{name}: {doc['error']}\n    {q}")
                continue
            res = doc["results"][0]
            if "error" in res:
                failures.append(f"{name}: {res['error']}\n    {q}")
            elif kind != "rule" and not _has_value(res):
                failures.append(f"{name}: no data\n    {q}")
        assert ran >= 30
        assert not failures, "\n".join(failures)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs.values():
            f.close()
        if sys.exc_info()[0] is not None:
            for name in logs:
                sys.stderr.write(
                    f"--- {name} log ---\n{(tmp_path / f'{name}.log').read_text()[-3000:]}\n"
                )


def _evenings(start_ms: int, end_ms: int) -> list[Any]:
    """The planted music of the history: every local evening (``EVENING``) that lies
    wholly inside ``[start_ms, end_ms - 1 h)``, so the stream after it starts quiet."""
    hour, hours, level = EVENING
    zone = ZoneInfo("Europe/Amsterdam")
    day = dt.datetime.fromtimestamp(start_ms / 1000, zone).date()
    out = []
    while True:
        s = int(dt.datetime.combine(day, dt.time(hour), tzinfo=zone).timestamp() * 1000)
        e = s + hours * 3_600_000
        if e > end_ms - 3_600_000:
            return out
        if s >= start_ms:
            out.append(demo.TrueEpisode(SITE, "music", s, e, level))
        day += dt.timedelta(days=1)


def _fill(broker: Any, influx: Any, tmp_path: Path, procs: list[Any]) -> None:
    # the ingest is subscribed once a probe status lands in InfluxDB
    pub = demo.WirePublisher(broker.url, f"test-probe-{os.getpid()}")

    def probe() -> bool:
        for p in procs:
            assert p.poll() is None, f"a central process exited with {p.returncode}"
        pub.publish(
            "status",
            {"site": "probe", "node": "p", "t": int(time.time() * 1000), "state": "online",
             "version": "t", "uptime_s": 0.0},
        )  # fmt: skip
        pub.flush()
        return _count(influx, '"status"', "uptime_s") > 0

    _wait(probe, 60, "the ingest to write a probe status")
    # the stream starts on a whole minute, after the history's last minute summary: the
    # analysis takes the grid step from the smallest interval within a node, so a stream
    # starting 5 s after that summary would put two weeks on a 5-s grid
    now_ms = int(time.time()) // 60 * 60_000
    start_ms = now_ms - STREAM_S * 1000
    history_ms = now_ms - HISTORY_DAYS * 86_400_000
    # node status as a node sends it (calibration date, clock, xruns, drift), and the
    # minute summaries of the weeks before the stream, through the node's wire encoder
    # (what a node's outbox sends after an outage), for the plan's back-test
    evenings = _evenings(history_ms, start_ms)
    n_history = 0
    for i, node in enumerate(NODES):
        for payload in demo.status_payloads(SITE, node, start_ms - 2 * 3_600_000, start_ms, i):
            pub.publish("status", payload)
        for payload in demo.minute_payloads(
            SITE, node, i, history_ms, start_ms, evenings, [(start_ms, now_ms)], seed=7 + i
        ):
            pub.publish("minute", payload)
            n_history += 1
    pub.close()

    node_toml = tmp_path / "node.toml"
    node_toml.write_text(
        f"""[node]
id = "n"
site = "{SITE}"
[audio]
device = "test"
samplerate = 16000
summary_s = 60
[calibration]
offset_db = 110.0
[mqtt]
url = "{broker.url}"
client_id = "test-sim-{os.getpid()}"
[outbox]
path = "{tmp_path / "outbox.sqlite"}"
max_mb = 64
"""
    )
    off, dur, level = EPISODE
    start_iso = demo.iso_local(start_ms)
    sim = subprocess.run(
        [str(BIN / "klankkast-sensor"), "simulate", "--config", str(node_toml),
         "--nodes", str(len(NODES)), "--rate", "max", "--duration", str(STREAM_S),
         "--start", start_iso, f"--episode={off}:{dur}:{level}", "--quiet"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    n_seconds = STREAM_S * len(NODES)
    n_minutes = STREAM_S // 60 * len(NODES) + n_history
    _wait(
        lambda: (
            _count(influx, '"raw"."second"') >= n_seconds
            and _count(influx, '"forever"."minute"') >= n_minutes
        ),
        120,
        "the frames in InfluxDB",
    )
    # health hours and ingest statistics are written every second by this config
    _wait(lambda: _count(influx, '"node_health"', "seq_gaps") > 0, 30, "node_health")
    _wait(lambda: _count(influx, '"ingest_stats"', "messages_in") >= 3, 30, "ingest_stats")
    _wait(lambda: _count(influx, '"forever"."alert"', "started") > 0, 60, "an alert")

    # complaints and visits around the planted episode, as a municipality exports them
    ep0 = start_ms + off * 1000
    complaints = tmp_path / "complaints.csv"
    with open(complaints, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(demo.COMPLAINT_COLUMNS)
        w.writerow(["C-1", demo.iso_local(ep0 + 240_000), demo.iso_local(ep0 + 60_000), "",
                    SITE, "muziek", "signalen"])  # fmt: skip
    visits = tmp_path / "visits.csv"
    with open(visits, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(demo.VISIT_COLUMNS)
        w.writerow(["V-1", demo.iso_local(ep0 + 300_000), demo.iso_local(ep0 + 360_000),
                    SITE, "warning", "C-1"])  # fmt: skip
    # the scheduled analysis as the compose service and the systemd timer run it
    run = subprocess.run(
        [str(BIN / "klankkast-analyze"), "run", "--config", str(tmp_path / "central.toml"),
         "--once"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "(with a new plan)" in run.stdout, run.stdout
    reports = tmp_path / "reports"
    plan = json.loads((reports / "current-plan" / "plan.json").read_text())
    # the back-test scored the last complete week, and the plan found the evening music
    assert plan["backtest"]["weeks"] >= 1 and plan["backtest"]["plan_hits"] > 0, plan["backtest"]
    # every report link of the dashboards reaches what the run made (the web server
    # serves this folder as $reports)
    for path in sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json")):
        for link in json.loads(path.read_text())["links"]:
            if link["type"] == "link":
                served = reports / link["url"].removeprefix("${reports}/")
                assert served.exists(), f"{path.name}: {link['title']}: no {served}"
    _wait(lambda: _count(influx, '"forever"."episode"', "duration_s") > 0, 10, "episodes")

    # residents' marks as the courtyard page writes them (its own InfluxDB adapter), into
    # the retention policy deploy/influxdb/setup.sh makes for them
    q = f'CREATE RETENTION POLICY "experience" ON "{DB}" DURATION 365d REPLICATION 1'
    assert "error" not in influx.query(q, db=DB)["results"][0]
    store = InfluxCourtyard(InfluxConfig(url=influx.url, database=DB))
    store.start()
    try:
        store.write_marks(
            [
                MarkPoint(SITE, ep0 + (2 + i) * 60_000, f"household-{i}", "music", 4)
                for i in range(3)
            ]
        )
    finally:
        store.close()
    _wait(lambda: _count(influx, '"experience"."experience"', "mark") == 3, 10, "marks")
