"""``klankkast-ingest check``: verifies both connections and says what is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from support.stack import free_port


def run_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "klankkast.ingest.cli",
            "check",
            "--config",
            str(config),
            "--timeout",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_ok(mosquitto: Any, influxdb: Any, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\n[influxdb]\nurl = "{influxdb.url}"\ndatabase = "chk"\n'
    )
    res = run_check(cfg)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok:")
    # check created the layout
    names = {r["name"] for r in influxdb.rows('SHOW RETENTION POLICIES ON "chk"')}
    assert {"raw", "forever"} <= names


def test_check_names_wrong_credentials(
    mosquitto_acl: Any, influxdb_auth: Any, tmp_path: Path
) -> None:
    user, _password, _pw_file = mosquitto_acl.credentials("ingest")
    (tmp_path / "mqtt.pw").write_text("wrong-password\n")
    (tmp_path / "influx.pw").write_text("wrong-password\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[mqtt]\nurl = "{mosquitto_acl.url}"\nusername = "{user}"\npassword_file = "mqtt.pw"\n'
        f'[influxdb]\nurl = "{influxdb_auth.url}"\ndatabase = "chk"\nusername = "{influxdb_auth.username}"\n'
        'password_file = "influx.pw"\n'
    )
    res = run_check(cfg)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert any(ln.startswith("mqtt:") and "refused" in ln for ln in lines), res.stderr
    assert any(ln.startswith("influxdb:") for ln in lines), res.stderr


def test_check_with_the_right_credentials(
    mosquitto_acl: Any, influxdb_auth: Any, tmp_path: Path
) -> None:
    user, _password, pw_file = mosquitto_acl.credentials("ingest")
    (tmp_path / "influx.pw").write_text(influxdb_auth.password + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[mqtt]\nurl = "{mosquitto_acl.url}"\nusername = "{user}"\npassword_file = "{pw_file}"\n'
        f'[influxdb]\nurl = "{influxdb_auth.url}"\ndatabase = "chk"\nusername = "{influxdb_auth.username}"\n'
        'password_file = "influx.pw"\n'
    )
    res = run_check(cfg)
    assert res.returncode == 0, res.stderr + res.stdout


def test_check_names_a_missing_publish_permission(
    mosquitto_acl: Any, influxdb: Any, tmp_path: Path
) -> None:
    """The ``alerts`` user may read the node topics but not write ``klankkast/v1/_rejected``."""
    user, _password, pw_file = mosquitto_acl.credentials("alerts")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[mqtt]\nurl = "{mosquitto_acl.url}"\nusername = "{user}"\npassword_file = "{pw_file}"\n'
        f'[influxdb]\nurl = "{influxdb.url}"\ndatabase = "chk"\n'
    )
    res = run_check(cfg)
    assert res.returncode == 1
    (problem,) = res.stderr.strip().splitlines()
    assert problem.startswith("mqtt: publishing to klankkast/v1/_rejected refused"), problem


def test_check_over_tls(mosquitto_tls: Any, influxdb: Any, tmp_path: Path) -> None:
    """``mqtts://`` with the broker's CA (and a client certificate) connects; without the CA it does not."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[mqtt]\nurl = "{mosquitto_tls.url}"\nca_file = "{mosquitto_tls.ca_file}"\n'
        f'cert_file = "{mosquitto_tls.client_cert}"\nkey_file = "{mosquitto_tls.client_key}"\n'
        f'[influxdb]\nurl = "{influxdb.url}"\ndatabase = "chk"\n'
    )
    res = run_check(cfg)
    assert res.returncode == 0, res.stderr
    untrusted = tmp_path / "u.toml"
    untrusted.write_text(
        f'[mqtt]\nurl = "{mosquitto_tls.url}"\n[influxdb]\nurl = "{influxdb.url}"\ndatabase = "chk"\n'
    )
    res = run_check(untrusted)
    assert res.returncode == 1 and "mqtt:" in res.stderr


def test_check_names_the_broker_failure(influxdb: Any, mosquitto_tls: Any, tmp_path: Path) -> None:
    """Issue 17: name resolution, refused and TLS verification each say so."""
    influx = f'[influxdb]\nurl = "{influxdb.url}"\ndatabase = "chk"\n'
    cases = {
        "mqtt://no-such-broker.invalid:1883": "name resolution failed",
        f"mqtt://127.0.0.1:{free_port()}": "connection refused",
        mosquitto_tls.url: "TLS verification of",  # no ca_file: the system CAs do not sign it
    }
    for url, words in cases.items():
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[mqtt]\nurl = "{url}"\n{influx}')
        res = run_check(cfg)
        assert res.returncode == 1 and words in res.stderr, (url, res.stderr)
