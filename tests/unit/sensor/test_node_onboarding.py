"""Node onboarding (issue 17): the example config copied as-is by install.sh points at
no files that do not exist and carries no calibration, and an uncalibrated node says
so in its status."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from klankkast.sensor import wire
from klankkast.sensor.capture import FakeSource
from klankkast.sensor.config import load_config, parse_config
from klankkast.sensor.outbox import MemoryOutbox
from klankkast.sensor.publisher import FakePublisher
from klankkast.sensor.service import Node, make_meter

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "deploy" / "pi" / "node.example.toml"
FS = 16000


def test_example_sets_no_optional_path_and_no_calibration(tmp_path: Path) -> None:
    cfg = parse_config(tomllib.loads(EXAMPLE.read_text()), tmp_path)
    assert (cfg.mqtt.ca_file, cfg.mqtt.cert_file, cfg.mqtt.key_file) == (None, None, None)
    assert cfg.calibration.mic_response is None
    assert cfg.calibration.calibrated_at is None
    assert cfg.calibration.offset_db == 0.0


def test_example_loads_with_only_the_password_file_in_place(tmp_path: Path) -> None:
    """As install.sh leaves a node: node.toml = the example, plus mqtt.password. Before,
    check stopped at ca_file, then (one rerun per key) cert_file, key_file, mic_response."""
    pw = tmp_path / "mqtt.password"
    pw.write_text("secret\n")
    text = EXAMPLE.read_text().replace("/etc/klankkast/mqtt.password", str(pw))
    text = text.replace("/var/lib/klankkast/", f"{tmp_path}/")
    node_toml = tmp_path / "node.toml"
    node_toml.write_text(text)
    cfg = load_config(node_toml)
    assert cfg.mqtt.password_file == pw


def _status(calibration: dict[str, object]) -> dict[str, object]:
    cfg = parse_config(
        {
            "node": {"id": "n1", "site": "yard1"},
            "audio": {"samplerate": FS},
            "calibration": calibration,
            "mqtt": {"url": "mqtt://127.0.0.1:1883"},
            "outbox": {"confirm": "broker"},
        }
    )
    node = Node(cfg, source=FakeSource(np.zeros(FS), FS), outbox=MemoryOutbox(),
                publisher=FakePublisher(), meter_factory=lambda: make_meter(cfg),
                clock_synced=lambda: True)  # fmt: skip
    p = node._status_payload()
    wire.encode("status", p)  # the contract accepts the field
    return p


def test_uncalibrated_node_reports_calibrated_false() -> None:
    p = _status({})
    assert p["calibrated"] is False and p["calibrated_at"] is None


def test_calibrated_node_reports_calibrated_true() -> None:
    p = _status({"offset_db": 118.2, "calibrated_at": "2026-11-29"})
    assert p["calibrated"] is True and p["calibrated_at"] == "2026-11-29"


def test_an_offset_without_a_calibration_date_is_not_calibrated() -> None:
    """An offset typed in (or copied from another node) is no calibration."""
    assert _status({"offset_db": 121.0})["calibrated"] is False


def test_wire_refuses_a_non_boolean_calibrated() -> None:
    p = _status({})
    p["calibrated"] = "no"
    with pytest.raises(wire.SchemaError, match="calibrated must be true or false"):
        wire.encode("status", p)


def test_one_mode_and_owner_for_the_node_password() -> None:
    """add-node.sh (and its README) told the operator 0600 owner klankkast; install.sh
    creates 0640 root:klankkast. One mode now, stated alike everywhere."""
    import re

    install = (REPO / "deploy/pi/install.sh").read_text()
    add_node = (REPO / "deploy/mosquitto/add-node.sh").read_text()
    readme = " ".join((REPO / "deploy/mosquitto/README.md").read_text().split())
    m = re.search(r'install -m (\d{4}) \$\(own (\w+)\) /dev/null "\$ETC/mqtt.password"', install)
    assert m, "install.sh no longer creates mqtt.password"
    mode, owner = m.groups()
    assert 'echo "-o $1 -g klankkast"' in install  # own(): group klankkast
    stated = f"mode {mode}, owner {owner}, group klankkast"
    assert f"/etc/klankkast/mqtt.password ({stated}" in add_node
    assert (
        f"`/etc/klankkast/mqtt.password` (mode {mode}, owner `{owner}`, group `klankkast`" in readme
    )
