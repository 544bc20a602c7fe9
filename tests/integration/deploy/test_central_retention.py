"""Done-criterion of issue 17: the privacy page's retention table equals what InfluxDB
reports (``SHOW RETENTION POLICIES``) after ``deploy/influxdb/setup.sh``."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from klankkast.influx import RETENTION_POLICIES, InfluxHTTP, parse_duration_ms

REPO = Path(__file__).resolve().parents[3]
SETUP = REPO / "deploy" / "influxdb" / "setup.sh"
PRIVACY = REPO / "docs" / "privacy.md"
DAY_MS = 86_400_000


def _page_policies() -> dict[str, tuple[int | None, bool]]:
    """``{policy: (days or None, default)}`` from the policy table of the privacy page."""
    text = PRIVACY.read_text(encoding="utf-8")
    out: dict[str, tuple[int | None, bool]] = {}
    for name, kept, default in re.findall(
        r"^\| `(\w+)` \| \*\*([^*]+)\*\* \| (yes|no) \|", text, re.M
    ):
        days = None if kept == "no expiry" else int(kept.removesuffix(" days"))
        out[name] = (days, default == "yes")
    return out


def _server_policies(influx: Any, db: str) -> dict[str, tuple[int | None, bool]]:
    rows = influx.rows(f'SHOW RETENTION POLICIES ON "{db}"')
    out: dict[str, tuple[int | None, bool]] = {}
    for r in rows:
        ms = parse_duration_ms(str(r["duration"]))
        out[r["name"]] = (None if ms is None else ms // DAY_MS, bool(r["default"]))
    return out


def test_privacy_table_equals_show_retention_policies_after_setup(influxdb_auth: Any) -> None:
    env = {
        **os.environ,
        "INFLUX_URL": influxdb_auth.url,
        "INFLUX_ADMIN_USER": influxdb_auth.username,
        "INFLUX_ADMIN_PASSWORD": influxdb_auth.password,
    }
    for var in ("INFLUX_RAW_DURATION", "INFLUX_FOREVER_DURATION", "INFLUX_EXPERIENCE_DURATION"):
        env.pop(var, None)  # as shipped
    res = subprocess.run(
        ["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 0, res.stderr
    page = _page_policies()
    assert set(page) == set(RETENTION_POLICIES)
    assert _server_policies(influxdb_auth, "klankkast") == page


def test_ensure_layout_creates_the_same_policies_as_setup(influxdb: Any) -> None:
    """A program that creates the layout itself (no setup.sh) gets the same policies."""
    client = InfluxHTTP(influxdb.url, "fresh")
    client.ensure_layout()
    client.close()
    assert _server_policies(influxdb, "fresh") == _page_policies()


def test_forever_gets_the_municipality_term(influxdb_auth: Any) -> None:
    env = {
        **os.environ,
        "INFLUX_URL": influxdb_auth.url,
        "INFLUX_ADMIN_USER": influxdb_auth.username,
        "INFLUX_ADMIN_PASSWORD": influxdb_auth.password,
        "INFLUX_FOREVER_DURATION": "104w",
    }
    res = subprocess.run(
        ["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 0, res.stderr
    assert _server_policies(influxdb_auth, "klankkast")["forever"] == (728, False)
