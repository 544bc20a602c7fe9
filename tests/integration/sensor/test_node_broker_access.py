"""The node's MQTT adapter against the production ACL and a TLS listener, and
``simulate`` end to end (real Mosquitto; no audio needed)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.node_harness import SENSOR, Collector, assert_contiguous, write_config

from klankkast.sensor import wire
from klankkast.sensor.config import load_config
from klankkast.sensor.delivery import Dispatcher
from klankkast.sensor.outbox import MemoryOutbox, NewFrame
from klankkast.sensor.service import frame_builder, make_publisher
from klankkast.sensor.simulate import SyntheticNode


def _frame(site: str, node: str) -> NewFrame:
    payload = SyntheticNode(site, node).frame(int(time.time() * 1000), 0.0)
    return NewFrame(
        f"{site}/{node}/second",
        "second",
        wire.topic(site, node, "second"),
        frame_builder("second", payload),
    )


def _deliver(cfg_path: Path, frames: list[NewFrame]) -> Dispatcher:
    cfg = load_config(cfg_path)
    box = MemoryOutbox()
    box.append_many(frames)
    pub = make_publisher(cfg)
    d = Dispatcher(box, pub)
    d.start()
    pub.start()
    assert pub.wait_connected(10), pub.last_error
    assert d.wait_drained(10)
    d.stop()
    pub.close()
    return d


def test_node_credentials_cannot_publish_under_another_nodes_topic(
    tmp_path: Path, mosquitto_acl: Any
) -> None:
    """yard1-n1 may publish under klankkast/v1/yard1/n1/# only. Its frame for n2 is
    refused by the broker (PUBACK 0x87 not authorized), dropped and counted, and never
    reaches a subscriber; its own frame arrives."""
    user, password, _ = mosquitto_acl.credentials("yard1-n1")
    _, ingest_pw, _ = mosquitto_acl.credentials("ingest")
    col = Collector(mosquitto_acl, username="ingest", password=ingest_pw)
    cfg = write_config(tmp_path, mosquitto_acl, device="none", username=user, password=password)
    d = _deliver(cfg, [_frame("yard1", "n2"), _frame("yard1", "n1")])
    assert d.stats.rejected == 1
    assert d.stats.acked == 1
    col.wait_for(lambda: len(col.of("second")) >= 1, 10, "n1's own frame")
    time.sleep(0.5)
    assert [p["node"] for p in col.of("second")] == ["n1"]
    col.close()


def test_wrong_password_never_connects(tmp_path: Path, mosquitto_acl: Any) -> None:
    cfg = load_config(
        write_config(tmp_path, mosquitto_acl, device="none", username="yard1-n1", password="nope")
    )
    pub = make_publisher(cfg)
    pub.start()
    try:
        assert not pub.wait_connected(3)
        assert pub.last_error and "refused" in pub.last_error
    finally:
        pub.close()


@pytest.mark.parametrize("client_cert", [False, True], ids=["ca-only", "client-cert"])
def test_tls_with_ca_file_and_optional_client_certificate(
    client_cert: bool, tmp_path: Path, mosquitto_tls: Any
) -> None:
    extra = f'ca_file = "{mosquitto_tls.ca_file}"'
    if client_cert:
        extra += (
            f'\ncert_file = "{mosquitto_tls.client_cert}"\nkey_file = "{mosquitto_tls.client_key}"'
        )
    cfg = write_config(tmp_path, mosquitto_tls, device="none", extra_mqtt=extra)
    loaded = load_config(cfg)
    assert loaded.mqtt.tls and (loaded.mqtt.cert_file is not None) == client_cert
    d = _deliver(cfg, [_frame("yard1", "n1")])
    assert d.stats.acked == 1


def test_simulate_delivers_every_frame_with_planted_episode(tmp_path: Path, mosquitto: Any) -> None:
    """3 nodes × 150 s at max rate with an episode at 60-90 s of 75 dB: every node's
    seconds arrive with contiguous seq, the episode's LAeq is 75 ± 0.5 dB, minutes are
    energy means; exit status 0 once the outbox drained."""
    col = Collector(mosquitto)
    cfg = write_config(tmp_path, mosquitto, device="none")
    res = subprocess.run(
        [SENSOR, "simulate", "--config", str(cfg), "--nodes", "3", "--duration", "150",
         "--rate", "max", "--episode", "60:30:75", "--start", "2026-11-27T23:00:00",
         "--drain-timeout", "60"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    col.wait_for(lambda: len(col.of("second")) >= 450, 20, "450 seconds")
    t0 = wire_ms("2026-11-27T22:00:00Z")
    for i in (1, 2, 3):
        node = f"n1-{i:03d}"
        seconds = col.of("second", node)
        assert_contiguous(seconds)
        assert len({s["seq"] for s in seconds}) == 150
        for s in seconds:
            offset = (s["t"] - t0) / 1000
            if 60 <= offset < 90:
                assert abs(s["LAeq"] - 75) <= 0.5
            else:
                assert s["LAeq"] < 45
        minutes = col.of("minute", node)
        assert sorted(m["dur_ms"] for m in minutes) == [30_000, 60_000, 60_000]
    col.close()


def test_simulate_exits_nonzero_when_frames_stay_undelivered(tmp_path: Path) -> None:
    class Nowhere:
        url = "mqtt://127.0.0.1:9"  # discard port: nothing listens

    cfg = write_config(tmp_path, Nowhere(), device="none")
    res = subprocess.run(
        [SENSOR, "simulate", "--config", str(cfg), "--nodes", "1", "--duration", "5",
         "--rate", "max", "--drain-timeout", "2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "undelivered" in res.stderr


def wire_ms(iso: str) -> int:
    from klankkast.sensor.simulate import parse_start

    return parse_start(iso)
