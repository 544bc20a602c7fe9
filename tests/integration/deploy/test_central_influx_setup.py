"""deploy/influxdb/setup.sh against a real InfluxDB 1.x with authentication on."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
SETUP = REPO / "deploy" / "influxdb" / "setup.sh"


def _run(influx: Any, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "INFLUX_URL": influx.url,
        "INFLUX_ADMIN_USER": influx.username,
        "INFLUX_ADMIN_PASSWORD": influx.password,
        **env,
    }
    return subprocess.run(
        ["bash", str(SETUP)], env=full, capture_output=True, text=True, timeout=60, check=False
    )


def _http(url: str, user: str, password: str, data: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_setup_creates_layout_and_least_privilege_users(influxdb_auth: Any, tmp_path: Path) -> None:
    pw_file = tmp_path / "grafana.pw"
    pw_file.write_text("gr4f'ana\n")  # a quote in a password must survive InfluxQL quoting
    env = {
        "INFLUX_INGEST_PASSWORD": "ingest-secret",
        "INFLUX_GRAFANA_PASSWORD_FILE": str(pw_file),
        "INFLUX_RAW_DURATION": "14d",
    }
    first = _run(influxdb_auth, **env)
    assert first.returncode == 0, first.stderr
    again = _run(influxdb_auth, **env)  # idempotent
    assert again.returncode == 0, again.stderr

    rps = {r["name"]: r for r in influxdb_auth.rows('SHOW RETENTION POLICIES ON "klankkast"')}
    assert rps["raw"]["duration"] == "336h0m0s"  # 14 days
    assert rps["raw"]["default"] is True
    assert rps["forever"]["duration"] == "0s"  # infinite

    write = f"{influxdb_auth.url}/write?db=klankkast&precision=ms"
    line = f"probe,site=s v=1 {int(time.time() * 1000)}".encode()  # inside the 14 days
    assert _http(write, "klankkast_ingest", "ingest-secret", line) == 204
    assert _http(write, "klankkast_grafana", "gr4f'ana", line) == 403
    query = f"{influxdb_auth.url}/query?" + urllib.parse.urlencode(
        {"db": "klankkast", "q": 'SELECT count("v") FROM "probe"'}
    )
    assert _http(query, "klankkast_grafana", "gr4f'ana") == 200
    assert _http(query, "klankkast_grafana", "wrong") == 401

    secret_leak = "ingest-secret" in first.stdout + first.stderr
    assert not secret_leak


def test_setup_creates_the_analysis_user_without_admin_rights(influxdb_auth: Any) -> None:
    """The scheduled analysis reads levels and writes its points; it cannot administer."""
    res = _run(influxdb_auth, INFLUX_ANALYSIS_PASSWORD="an4lysis")
    assert res.returncode == 0, res.stderr
    assert "user klankkast_analysis may read and write klankkast" in res.stdout
    write = f"{influxdb_auth.url}/write?db=klankkast&precision=ms"
    line = f"analysis,scope=site,site=s complaints_total=1 {int(time.time() * 1000)}".encode()
    assert _http(write, "klankkast_analysis", "an4lysis", line) == 204
    query = f"{influxdb_auth.url}/query?" + urllib.parse.urlencode(
        {"db": "klankkast", "q": 'SELECT count("complaints_total") FROM "analysis"'}
    )
    assert _http(query, "klankkast_analysis", "an4lysis") == 200
    admin = f"{influxdb_auth.url}/query?" + urllib.parse.urlencode({"q": 'CREATE DATABASE "other"'})
    assert _http(admin, "klankkast_analysis", "an4lysis", b"") == 403


def test_setup_rejects_a_bad_duration_before_any_io(influxdb_auth: Any) -> None:
    res = _run(influxdb_auth, INFLUX_RAW_DURATION="thirty days")
    assert res.returncode == 1
    assert "INFLUX_RAW_DURATION" in res.stderr and "thirty days" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_ingest_check_passes_with_the_write_user_setup_creates(
    influxdb_auth: Any, mosquitto: Any, tmp_path: Path
) -> None:
    """The least-privilege user of setup.sh is enough for the ingest (no admin rights)."""
    pw = tmp_path / "influx-ingest.password"
    pw.write_text("ingest-secret\n")
    res = _run(influxdb_auth, INFLUX_INGEST_PASSWORD_FILE=str(pw), INFLUX_INGEST_USER="ingest")
    assert res.returncode == 0, res.stderr
    central = tmp_path / "central.toml"
    central.write_text(
        f"""[mqtt]
url = "{mosquitto.url}"
client_id = "setup-check-{os.getpid()}"

[influxdb]
url = "{influxdb_auth.url}"
database = "klankkast"
username = "ingest"
password_file = "{pw}"
"""
    )
    exe = Path(sys.executable).parent / "klankkast-ingest"
    check = subprocess.run(
        [str(exe), "check", "--config", str(central)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
