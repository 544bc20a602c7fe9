"""``klankkast-sensor check`` names why the broker cannot be used (issue 17: it said
"no connection ... within 3 s" alike for DNS, a refused connection, TLS and a wrong
password). Against real Mosquitto brokers: plain, TLS, and production ACL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.stack import free_port, make_tls_files

from klankkast.sensor.brokerprobe import BrokerProbe, probe_broker
from klankkast.sensor.check import check_broker
from klankkast.sensor.config import parse_config


def _probe(host: str, port: int, **kw: Any) -> BrokerProbe:
    kw.setdefault("tls", False)
    kw.setdefault("topic_prefix", "klankkast/v1/yard1/n1")
    return probe_broker(host, port, client_id="probe-test", timeout_s=5.0, **kw)


def test_name_resolution() -> None:
    r = _probe("no-such-broker.invalid", 8883)  # .invalid never resolves (RFC 6761)
    assert r.cause == "name_resolution" and "no-such-broker.invalid" in r.detail


def test_refused() -> None:
    r = _probe("127.0.0.1", free_port())
    assert r.cause == "refused" and "refused the connection" in r.detail


def test_ok_on_a_plain_broker(mosquitto: Any) -> None:
    r = _probe("127.0.0.1", mosquitto.port)
    assert r.ok, r


def test_tls_verification_names_the_ca_and_the_broker_certificate(
    mosquitto_tls: Any, tmp_path: Path
) -> None:
    """A CA file from another installation does not sign this broker's certificate."""
    other = make_tls_files(tmp_path / "other")
    r = _probe("127.0.0.1", mosquitto_tls.port, tls=True, ca_file=str(other.ca_file))
    assert r.cause == "tls_verify", r
    assert str(other.ca_file) in r.detail
    assert "subject CN=127.0.0.1" in r.detail and "issuer CN=klankkast test CA" in r.detail


def test_tls_ok_with_the_right_ca(mosquitto_tls: Any) -> None:
    r = _probe("127.0.0.1", mosquitto_tls.port, tls=True, ca_file=str(mosquitto_tls.tls.ca_file))
    assert r.ok, r


def test_authentication(mosquitto_acl: Any) -> None:
    user, _pw, _file = mosquitto_acl.credentials("yard1-n1")
    r = _probe("127.0.0.1", mosquitto_acl.port, username=user, password="wrong")
    assert r.cause == "authentication" and "yard1-n1" in r.detail, r


def test_not_authorised_for_its_topics(mosquitto_acl: Any) -> None:
    """The node's config names n2 while its MQTT user is yard1-n1's."""
    user, pw, _file = mosquitto_acl.credentials("yard1-n1")
    r = _probe("127.0.0.1", mosquitto_acl.port, username=user, password=pw,
               topic_prefix="klankkast/v1/yard1/n2")  # fmt: skip
    assert r.cause == "not_authorised" and "klankkast/v1/yard1/n2" in r.detail, r


def test_ok_with_the_production_acl(mosquitto_acl: Any) -> None:
    user, pw, _file = mosquitto_acl.credentials("yard1-n1")
    r = _probe("127.0.0.1", mosquitto_acl.port, username=user, password=pw)
    assert r.ok, r


def test_check_prints_the_cause(
    mosquitto_acl: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "mqtt.password"
    wrong.write_text("wrong\n")
    cfg = parse_config(
        {
            "node": {"id": "n1", "site": "yard1"},
            "mqtt": {"url": f"mqtt://127.0.0.1:{mosquitto_acl.port}", "username": "yard1-n1",
                     "password_file": str(wrong)},
        },
        tmp_path,
    )  # fmt: skip
    assert check_broker(cfg, 5.0) is False
    out = capsys.readouterr().out
    assert out.startswith("FAIL broker: authentication: ")
