"""``klankkast-alerts check`` against a real broker with the production ACL and a real
InfluxDB (issue 17: check said OK where a start failed, and did not connect)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.stack import free_port

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
    port = free_port()  # a port nobody listens on
    cfg = tmp_path / "central.toml"
    address = influxdb.url.replace("http://", "influxdb+http://") + "/alerts_chk"
    cfg.write_text(f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\n[influxdb]\nurl = "{address}"\n')
    assert alerts.main(["check", "--config", str(cfg), "--timeout", "5"]) == 1
    assert "connection refused" in capsys.readouterr().err


def _retain_status(broker: Any, site: str, node: str) -> None:
    """The node ``site``-``node`` publishes its retained status, as a running node does."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    user, pw, _ = broker.credentials(f"{site}-{node}")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, pw)
    acked = threading.Event()
    client.on_publish = lambda *a: acked.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        topic = f"klankkast/v1/{site}/{node}/status"
        client.publish(topic, b'{"schema":1,"online":true}', qos=1, retain=True)
        assert acked.wait(10), "the broker did not acknowledge the node's status"
    finally:
        client.disconnect()
        client.loop_stop()


def test_check_counts_the_nodes_the_alerts_user_can_read(
    mosquitto_acl: Any, influxdb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mosquitto 2.0 grants every subscription, so a missing read right is silence: the
    check reads the nodes' retained status and says how many it got."""
    _retain_status(mosquitto_acl, "yard1", "n1")
    user, _pw, pw_file = mosquitto_acl.credentials("alerts")
    cfg = _config(tmp_path, mosquitto_acl, influxdb, user, pw_file)
    assert alerts.main(["check", "--config", str(cfg), "--timeout", "5"]) == 0
    out, err = capsys.readouterr()
    assert "read the retained status of 1 node(s)" in out
    assert "note:" not in err


def test_check_notes_silence_for_a_user_without_the_read_right(
    mosquitto_acl: Any, influxdb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dispatch`` may read only the alerts topics: the node's status never reaches it."""
    _retain_status(mosquitto_acl, "yard1", "n1")
    user, _pw, pw_file = mosquitto_acl.credentials("dispatch")
    cfg = _config(tmp_path, mosquitto_acl, influxdb, user, pw_file)
    assert alerts.main(["check", "--config", str(cfg), "--timeout", "5"]) == 0
    out, err = capsys.readouterr()
    assert "read the retained status of 0 node(s)" in out
    assert "no retained node status arrived" in err and "'dispatch' may not" in err
