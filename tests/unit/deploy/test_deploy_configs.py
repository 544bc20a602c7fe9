"""Unit tests of the service launcher's config rendering, the deploy/mosquitto files and
the missing-program handling. No process is started, no network, no sleeps."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from support import stack as _services
from support.stack import (
    Broker,
    Influx,
    MissingBinaryError,
    TlsFiles,
    find_binary,
    free_port,
    render_production_conf,
)

REPO = Path(__file__).resolve().parents[3]

DEPLOY = REPO / "deploy" / "mosquitto"


def _conf_lines(text: str) -> list[list[str]]:
    return [
        ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def _parse_acl(text: str) -> dict[str | None, set[tuple[str, str]]]:
    """mosquitto acl_file grammar: ``user NAME`` starts a block; ``topic [read|write|readwrite] T``."""
    blocks: dict[str | None, set[tuple[str, str]]] = {None: set()}
    user: str | None = None
    for words in _conf_lines(text):
        if words[0] == "user":
            user = words[1]
            blocks.setdefault(user, set())
        elif words[0] == "topic":
            access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
            blocks[user].add((access, topic))
        else:
            raise AssertionError(f"unexpected ACL line {words}")
    return blocks


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_missing_binary_names_the_debian_package() -> None:
    with pytest.raises(MissingBinaryError) as err:
        find_binary("klankkast-no-such-program")
    assert err.value.install_hint == "sudo apt-get install -y klankkast-no-such-program"
    assert MissingBinaryError("influxd").install_hint == "sudo apt-get install -y influxdb"
    assert MissingBinaryError("pactl").install_hint == "sudo apt-get install -y pulseaudio-utils"
    assert (
        MissingBinaryError("mosquitto_pub").install_hint
        == "sudo apt-get install -y mosquitto-clients"
    )


def _pretend_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise MissingBinaryError(name)

    monkeypatch.setattr(_services, "find_binary", missing)


def test_require_fails_in_ci_with_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_missing(monkeypatch)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as err:
        _services.require("influxd", "mosquitto")
    assert "sudo apt-get install -y influxdb mosquitto" in str(err.value)


def test_require_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_missing(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as err:
        _services.require("pulseaudio")
    assert "sudo apt-get install -y pulseaudio" in str(err.value)


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), ("", False), ("0", False)]
)
def test_in_ci(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert _services.in_ci() is expected


def test_broker_conf_plain(tmp_path: Path) -> None:
    broker = Broker(tmp_path, port=18830)
    conf = broker.conf_path.read_text()
    words = _conf_lines(conf)
    assert ["listener", "18830", "127.0.0.1"] in words
    assert ["allow_anonymous", "true"] in words
    assert ["persistence", "true"] in words
    assert ["persistence_location", f"{tmp_path / 'data'}/"] in words
    assert ["autosave_interval", "1"] in words
    queued = [w for w in words if w[0] == "max_queued_messages"]
    assert queued and int(queued[0][1]) >= 60_000
    assert ["log_dest", "file", str(broker.log_path)] in words
    assert broker.url == "mqtt://127.0.0.1:18830"
    assert not broker.running()


def test_broker_conf_tls_and_extra(tmp_path: Path) -> None:
    tls = TlsFiles(tmp_path / "tls")
    broker = Broker(
        tmp_path, port=18831, tls=tls, require_certificate=True, extra_conf="max_packet_size 999"
    )
    words = _conf_lines(broker.conf_path.read_text())
    assert ["cafile", str(tls.ca_file)] in words
    assert ["certfile", str(tls.server_cert)] in words
    assert ["keyfile", str(tls.server_key)] in words
    assert ["require_certificate", "true"] in words
    assert words[-1] == ["max_packet_size", "999"]
    assert broker.url == "mqtts://127.0.0.1:18831"
    assert broker.ca_file == tls.ca_file


def test_influx_conf(tmp_path: Path) -> None:
    influx = Influx(tmp_path, port=18086, rpc_port=18088, auth=True)
    conf = influx.conf_path.read_text()
    assert 'bind-address = "127.0.0.1:18088"' in conf.split("[meta]")[0]
    http = conf.split("[http]")[1].split("[logging]")[0]
    assert 'bind-address = "127.0.0.1:18086"' in http
    assert "auth-enabled = true" in http
    assert "reporting-disabled = true" in conf
    assert "store-enabled = false" in conf.split("[monitor]")[1]
    for key in ("meta", "data", "wal"):
        assert f'"{influx.data_dir / key}"' in conf
    assert influx.url == "http://127.0.0.1:18086"
    assert influx.username == "admin" and influx.password
    assert Influx(tmp_path / "b", port=18087, rpc_port=18089).username is None


def test_influx_rows_flatten_series() -> None:
    """``rows`` flattens /query JSON: series tags become keys next to the columns."""
    doc = {
        "results": [
            {
                "statement_id": 0,
                "series": [
                    {
                        "name": "m",
                        "tags": {"node": "n1"},
                        "columns": ["time", "v"],
                        "values": [[1, 2.0], [2, 3.0]],
                    },
                    {
                        "name": "m",
                        "tags": {"node": "n2"},
                        "columns": ["time", "v"],
                        "values": [[1, 4.0]],
                    },
                ],
            }
        ]
    }

    class Canned(Influx):  # type: ignore[misc]
        def query(self, q: str, db: str | None = None) -> dict:  # type: ignore[type-arg]
            return doc

    rows = Canned.rows(Canned.__new__(Canned), "q")
    assert rows == [
        {"node": "n1", "time": 1, "v": 2.0},
        {"node": "n1", "time": 2, "v": 3.0},
        {"node": "n2", "time": 1, "v": 4.0},
    ]
    assert Influx.errors({"results": [{"statement_id": 0, "error": "database not found: x"}]}) == [
        "database not found: x"
    ]


# --------------------------------------------------------------------------- deploy/mosquitto


def test_production_conf_settings() -> None:
    words = _conf_lines((DEPLOY / "mosquitto.conf").read_text())
    settings = {w[0]: w[1:] for w in words if w[0] != "listener" and w[0] != "log_type"}
    assert ["listener", "8883"] in words
    assert settings["allow_anonymous"] == ["false"]
    assert settings["password_file"] == ["/etc/mosquitto/passwd"]
    assert settings["acl_file"] == ["/etc/mosquitto/acl"]
    for key in ("cafile", "certfile", "keyfile"):
        assert settings[key][0].startswith("/etc/mosquitto/certs/")
    assert settings["persistence"] == ["true"]
    assert int(settings["autosave_interval"][0]) <= 60
    # A day of ingest outage with 100 nodes: 100 × (86,400 + 1,440) messages queued.
    assert int(settings["max_queued_messages"][0]) >= 100 * (86_400 + 1_440)
    assert "persistent_client_expiration" in settings


def test_production_conf_rendered_for_tests(tmp_path: Path) -> None:
    prod = (DEPLOY / "mosquitto.conf").read_text()
    out = render_production_conf(
        prod,
        port=12345,
        directory=tmp_path,
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        log_file=tmp_path / "log",
    )
    words = _conf_lines(out)
    assert [w for w in words if w[0] == "listener"] == [["listener", "12345", "127.0.0.1"]]
    assert not any("/etc/" in " ".join(w) or "/var/lib/" in " ".join(w) for w in words)
    kept = {w[0] for w in words}
    for w in _conf_lines(prod):
        if w[0] not in ("listener", "protocol", "cafile", "certfile", "keyfile", "tls_version",
                        "require_certificate", "log_dest"):  # fmt: skip
            assert w[0] in kept, f"{w[0]} dropped"
    assert ["allow_anonymous", "false"] in words


def test_acl_blocks() -> None:
    """Explicit per-user blocks as the issue specifies; nothing for anonymous; no
    ``pattern`` lines (their %u substitution would apply to every user)."""
    acl = _parse_acl((DEPLOY / "acl").read_text())
    assert acl[None] == set()
    assert acl["ingest"] == {
        ("read", "klankkast/v1/#"),
        ("write", "klankkast/v1/_rejected"),
        ("write", "klankkast/v1/+/+/ack"),  # end-to-end acks to every node (issue 18)
    }
    assert acl["alerts"] == {("read", "klankkast/v1/#"), ("write", "klankkast/v1/+/alerts")}
    assert acl["dispatch"] == {("read", "klankkast/v1/+/alerts")}
    assert set(acl) == {None, "ingest", "alerts", "dispatch"}


def test_add_node_script_is_executable_bash() -> None:
    script = DEPLOY / "add-node.sh"
    assert script.stat().st_mode & 0o111
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    # The identifier rule is the wire contract's.
    from klankkast.sensor import wire

    assert wire._ID_RE.pattern.strip("^$") in text
    assert re.search(r"topic write klankkast/v1/\$site/\$node/#", text)


def test_require_library_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception) as err:
        _services.require_library("klankkast-no-such-lib", "libklankkast-nothing0")
    assert "sudo apt-get install -y libklankkast-nothing0" in str(err.value)
