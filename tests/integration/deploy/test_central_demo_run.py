"""The shortened demo runs end to end (real Mosquitto, InfluxDB, ingest, alerts, node
code, analysis) in under 90 s and its summary holds plausible numbers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parents[3]
AMS = ZoneInfo("Europe/Amsterdam")


def last_thursday_2237(clock: datetime) -> datetime:
    """The latest Thursday 22:37 Europe/Amsterdam at or before ``clock``.

    The demo's "now" is injected. It lies near the real clock only because the demo's
    InfluxDB drops 1-s frames older than its 30-day retention on the real clock; the
    weekday and hour are fixed (the ones where the demo used to fail), so the outcome
    does not depend on the day the suite runs.
    """
    local = clock.astimezone(AMS)
    day = local.date() - timedelta(days=(local.weekday() - 3) % 7)
    cand = datetime.combine(day, dt_time(22, 37), tzinfo=AMS)
    return cand if cand <= local else cand - timedelta(days=7)


def test_last_thursday_2237() -> None:
    fri = datetime(2026, 12, 4, 1, 0, tzinfo=AMS)
    assert last_thursday_2237(fri) == datetime(2026, 12, 3, 22, 37, tzinfo=AMS)
    thu = datetime(2026, 12, 3, 22, 0, tzinfo=AMS)
    assert last_thursday_2237(thu) == datetime(2026, 11, 26, 22, 37, tzinfo=AMS)


def _rate(x: object) -> bool:
    return isinstance(x, int | float) and 0.0 <= float(x) <= 1.0 and math.isfinite(float(x))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_short_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    now = last_thursday_2237(datetime.now(UTC))
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo",
            "--short",
            "--out",
            str(out),
            "--now",
            now.isoformat(),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "deploy" / "local")},
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # progress lines as it goes, and the headline numbers at the end
    assert proc.stdout.count("[demo") >= 8
    for text in (
        "corroborated complaints:",
        "visit hit rate:",
        "plan hit rate:",
        "report",
        "dashboards",
    ):
        assert text in proc.stdout
    # budget: < 90 s on an idle 2-core machine; allow for a loaded CI box
    assert elapsed < 180, f"short demo took {elapsed:.0f} s"

    s = json.loads((out / "summary.json").read_text())
    h = s["headline"]
    for key in ("complaints_total", "corroborated_complaints", "visit_hit_rate", "plan_hit_rate"):
        assert key in h
    assert isinstance(h["complaints_total"], int) and h["complaints_total"] >= 1
    assert 0 <= h["corroborated_complaints"] <= h["complaints_total"]
    truth = s["truth"]
    # every founded complaint is at a planted episode, so most are corroborated; the
    # unfounded ones cannot be
    founded = truth["complaints"] - truth["complaints_unfounded"]
    assert h["complaints_total"] == truth["complaints"]
    assert h["corroborated_complaints"] <= h["complaints_total"] - truth["complaints_unfounded"] + 1
    assert h["corroborated_complaints"] >= 0.5 * founded
    assert _rate(h["visit_hit_rate"])
    assert h["visits_total"] == truth["visits"]
    assert "partial" not in s, s.get("partial")
    assert _rate(h["plan_hit_rate"])
    assert _rate(h["random_plan_hit_rate"])

    # which data was which: real audio through the node, simulator seconds, minutes
    d = s["data"]
    assert d["real_audio"]["seconds"] == 300
    assert (
        d["influxdb_points"]["second"] >= 300 + d["synthetic_seconds"]["seconds_per_node"] * 2 - 5
    )
    assert d["influxdb_points"]["minute"] >= d["synthesised_minutes"]["count"]

    files = s["files"]
    for key in ("report", "plan", "plan_ics", "complaints", "visits"):
        assert Path(files[key]).is_file(), key
    assert set(s["dashboards"]["uids"]) == {"courtyard-now", "nuisance-vs-reports", "fleet-health"}

    # the residents' page ran on the demo's data: an invitation link from a printed
    # letter opened its courtyard's page, and residents' marks were planted, most of
    # them while planted nuisance was on
    r = s["residents"]
    assert r["invitation_status"] == 200, r
    assert r["invitation"].startswith(r["page"] + "/i/")
    assert r["households"] == 4 * len(s["sites"])
    assert len(list(Path(r["letters"]).glob("letter-*.html"))) == r["households"]
    assert r["marks"] > r["marks_during_planted_nuisance"] > 0
    # the report read them from InfluxDB (the page's layout) and found most of those
    # planted during nuisance within a measured episode
    assert h["residents_marks"] == r["marks"]
    assert h["residents_marks_during_nuisance"] >= 0.8 * r["marks_during_planted_nuisance"]
    assert h["residents_marks_during_nuisance"] <= r["marks"]
    assert "residents' page:" in proc.stdout
