"""``klankkast-analyze check`` connects as report/plan/import would (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from klankkast.analysis.cli import main
from klankkast.influx import InfluxHTTP


def _address(url: str, db: str, user: str | None = None) -> str:
    host = url.removeprefix("http://")
    return f"influxdb+http://{user + '@' if user else ''}{host}/{db}"


def test_check_ok_after_the_layout(influxdb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    InfluxHTTP(influxdb.url, "an").ensure_layout()
    addr = _address(influxdb.url, "an")
    assert main(["check", "--levels", addr, "--influx", addr]) == 0
    out = capsys.readouterr().out
    assert "OK   levels:" in out and "OK   influx:" in out


def test_check_fails_without_the_database(
    influxdb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--influx", _address(influxdb.url, "missing")]) == 1
    assert "FAIL influx:" in capsys.readouterr().out


def test_check_fails_with_a_missing_policy(
    influxdb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    influxdb.create_database("half")
    assert main(["check", "--influx", _address(influxdb.url, "half")]) == 1
    out = capsys.readouterr().out
    assert "FAIL influx:" in out and "experience" in out and "setup.sh" in out


def test_check_fails_with_a_wrong_password(
    influxdb_auth: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    InfluxHTTP(
        influxdb_auth.url, "an", username=influxdb_auth.username, password=influxdb_auth.password
    ).ensure_layout()
    pw = tmp_path / "pw"
    pw.write_text("wrong\n")
    addr = _address(influxdb_auth.url, "an", influxdb_auth.username)
    assert main(["check", "--levels", addr, "--influx-password-file", str(pw)]) == 1
    assert "FAIL levels:" in capsys.readouterr().out
    pw.write_text(influxdb_auth.password + "\n")
    assert main(["check", "--levels", addr, "--influx-password-file", str(pw)]) == 0
