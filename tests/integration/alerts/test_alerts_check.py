"""``klankkast-alerts check`` against a real broker with the production ACL and a real
InfluxDB (issue 17: check said OK where a start failed, and did not connect)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from klankkast.alerts import service as alerts


def _config(tmp_path: Path, broker: Any, influx: Any, user: str, password_file: Path) -> Path:
    cfg = tmp_path / "central.toml"
    address = influx.url.replace("http://", "influxdb+http://") + "/alerts_chk"
    cfg.write_text(
        f'[mqtt]\nurl = "{broker.url}"\n'
        f'[influxdb]\nurl = "{address}"\n'
        f'[alerts]\nusername = "{user}"\npassword_file = "{password_file}"\n'
    )
    return cfg


def test_check_ok_with_the_alerts_user(
    mosquitto_acl: Any, influxdb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user, _pw, pw_file = mosquitto_acl.credentials("alerts")
    cfg = _config(tmp_path, mosquitto_acl, influxdb, user, pw_file)
    assert alerts.main(["check", "--config", str(cfg), "--timeout", "5"]) == 0, capsys.readouterr()
    assert "check OK" in capsys.readouterr().out


def test_check_names_a_refused_login(
    mosquitto_acl: Any, influxdb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password")
    cfg = _config(tmp_path, mosquitto_acl, influxdb, "alerts", wrong)
    assert alerts.main(["check", "--config", str(cfg), "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert "refused the login of user 'alerts'" in err


def test_check_names_a_refused_connection(
    influxdb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "central.toml"
    address = influxdb.url.replace("http://", "influxdb+http://") + "/alerts_chk"
    cfg.write_text(f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\n[influxdb]\nurl = "{address}"\n')
    assert alerts.main(["check", "--config", str(cfg), "--timeout", "5"]) == 1
    assert "connection refused" in capsys.readouterr().err
