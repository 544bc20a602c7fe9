"""deploy/influxdb/setup.sh makes what the courtyard page needs, with least privilege:
the retention policy ``experience`` (365 days), a READ-only user and a WRITE-only user;
``klankkast-courtyard check`` accepts the result."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.courtyard_world import DB, start_server

from klankkast.influx import InfluxHTTP, PermanentWriteError, QueryError, line

REPO = Path(__file__).resolve().parents[3]
SETUP = REPO / "deploy" / "influxdb" / "setup.sh"


def _setup(influx: Any, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "INFLUX_URL": influx.url, "INFLUX_ADMIN_USER": influx.username,
            "INFLUX_ADMIN_PASSWORD": influx.password, **env}  # fmt: skip
    return subprocess.run(
        ["bash", str(SETUP)], env=full, capture_output=True, text=True, timeout=60
    )


def test_setup_makes_the_marks_policy_and_two_least_privilege_users(
    influxdb_auth: Any, tmp_path: Path
) -> None:
    env = {
        "INFLUX_COURTYARD_READ_PASSWORD": "r3ad'pw",
        "INFLUX_COURTYARD_WRITE_PASSWORD": "wr1te-pw",
    }
    for _ in range(2):  # idempotent
        res = _setup(influxdb_auth, **env)
        assert res.returncode == 0, res.stderr
    assert "experience (365d)" in res.stdout
    assert "r3ad'pw" not in res.stdout + res.stderr and "wr1te-pw" not in res.stdout + res.stderr
    rps = {r["name"]: r for r in influxdb_auth.rows(f'SHOW RETENTION POLICIES ON "{DB}"')}
    assert rps["experience"]["duration"] == "8760h0m0s"  # 365 days
    assert rps["raw"]["default"] is True  # the marks' policy is not the default

    point = [line("experience", {"site": "yard1"}, {"household": "0" * 32}, 1_781_000_000_000)]
    reader = InfluxHTTP(influxdb_auth.url, DB, username="courtyard_read", password="r3ad'pw")
    writer = InfluxHTTP(influxdb_auth.url, DB, username="courtyard_write", password="wr1te-pw")
    try:
        with pytest.raises(PermanentWriteError) as info:
            reader.write(point, rp="experience")
        assert info.value.status == 403
        writer.write(point, rp="experience")
        with pytest.raises(QueryError):
            writer.query('SELECT * FROM "experience"."experience"')
        rows = reader.query('SELECT * FROM "experience"."experience"')
        assert [r["household"] for r in rows] == ["0" * 32]
    finally:
        reader.close()
        writer.close()

    server = start_server(
        tmp_path, influxdb_auth, {"courtyard_read": "r3ad'pw", "courtyard_write": "wr1te-pw"},
        invitations=1,
    )  # fmt: skip
    server.stop()
    res = server.cli("check")
    assert res.returncode == 0, res.stderr
