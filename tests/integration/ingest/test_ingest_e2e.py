"""100 simulated nodes x 10 minutes of 1-s frames through real Mosquitto into real
InfluxDB: every frame exactly once, values as sent, levels as floats, energy
companions 10^(L/10); rejected messages republished with their reason."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from support.ingest_frames import (
    T0_MS,
    IngestProcess,
    Publisher,
    count,
    frames,
    laeq_of,
    node_name,
    running_ingest,
    wait_for,
    write_config,
)

from klankkast.sensor import wire

N_NODES = 100
N_SECONDS = 600


class Recorder:
    """A plain (non-shared) subscriber that keeps a sample of the frames as sent."""

    def __init__(
        self, host: str, port: int, topic_filter: str, keep: Callable[[dict[str, Any]], bool]
    ) -> None:
        self.count = 0
        self.kept: list[dict[str, Any]] = []
        self._keep = keep
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._ready.wait(10)

    def _on_message(self, c: Any, u: Any, m: Any) -> None:
        self.count += 1
        payload = json.loads(m.payload)
        if self._keep(payload):
            self.kept.append(payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_hundred_nodes_ten_minutes_exactly_once(
    mosquitto: Any, influxdb: Any, tmp_path: Path
) -> None:
    """``klankkast-sensor simulate --nodes 100 --duration 600 --rate max`` -> ingest -> InfluxDB.

    Counts: 600 ``second`` points per node with 600 distinct consecutive ``seq``
    values, 10 ``minute`` points per node. Values: a sample of the frames as they were
    on the wire (recorded by a separate subscriber) equals the stored points field by
    field, and ``LAeq_e`` = 10^(LAeq/10).
    """
    db = "e2e"
    cfg = write_config(tmp_path / "central.toml", mosquitto.url, influxdb.url, db)
    ingest = IngestProcess(cfg, "ingest-e2e", tmp_path / "ingest.log")
    ingest.start()
    recorder = Recorder(
        mosquitto.host, mosquitto.port, "klankkast/v1/yard1/+/second", lambda p: p["seq"] % 101 == 7
    )
    try:
        wait_for(lambda: "subscribed" in ingest.log(), 30, "the ingest to subscribe")
        (tmp_path / "node.toml").write_text(
            '[node]\nid = "n"\nsite = "yard1"\n[audio]\ndevice = "none"\n'
            "[calibration]\noffset_db = 100.0\n"
            f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "sim-e2e"\n'
            f'[outbox]\npath = "{tmp_path / "outbox.sqlite"}"\n'
        )
        sim = subprocess.run(
            [sys.executable, "-m", "klankkast.sensor.cli", "simulate", "--config", str(tmp_path / "node.toml"),
             "--nodes", str(N_NODES), "--duration", str(N_SECONDS), "--rate", "max", "--quiet"],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert sim.returncode == 0, sim.stderr[-3000:]
        n = N_NODES * N_SECONDS
        wait_for(lambda: count(influxdb, db) >= n, 120, f"{n} points")
        assert count(influxdb, db) == n
        assert recorder.count == n  # what the broker carried
        per_node = influxdb.rows(
            'SELECT count("LAeq"), min("seq"), max("seq") FROM "raw"."second" GROUP BY "node"',
            db=db,
        )
        assert len(per_node) == N_NODES
        for row in per_node:
            assert row["count"] == N_SECONDS, row
            assert row["max"] - row["min"] + 1 == N_SECONDS, row  # 600 distinct consecutive seq
        minutes = influxdb.rows(
            'SELECT count("LAeq") FROM "forever"."minute" GROUP BY "node"', db=db
        )
        assert len(minutes) == N_NODES and all(r["count"] == N_SECONDS // 60 for r in minutes)
        # spot values: the frames as they were on the wire, field by field
        assert len(recorder.kept) >= 100
        for sent in recorder.kept[:: max(1, len(recorder.kept) // 40)]:
            (row,) = influxdb.rows(
                f'SELECT * FROM "raw"."second" WHERE "node"=\'{sent["node"]}\' AND time = {sent["t"]}ms',
                db=db,
            )
            for key in (
                "LAeq",
                "LCeq",
                "LZeq",
                "LAFmax",
                "LAFmin",
                "LASmax",
                "LCpeak",
                "bass",
                "seq",
                "dur_ms",
            ):
                assert row[key] == sent[key], key
            for nominal, level in sent["bands"].items():
                assert row[wire.band_field(nominal)] == level
            assert math.isclose(row["LAeq_e"], 10 ** (sent["LAeq"] / 10), rel_tol=1e-12)
            assert row.get("tonal_band") == sent.get("tonal_band")
        types = {
            r["fieldKey"]: r["fieldType"]
            for r in influxdb.rows('SHOW FIELD KEYS FROM "raw"."second"', db=db)
        }
        assert types["LAeq"] == types["LZeq_1000"] == types["LAeq_e"] == "float"
        assert types["seq"] == types["overload"] == "integer"
        # own metrics and node health reach InfluxDB
        wait_for(
            lambda: bool(influxdb.rows('SELECT last("points_written") FROM ingest_stats', db=db)),
            20,
            "ingest_stats",
        )
        wait_for(
            lambda: bool(
                influxdb.rows(
                    'SELECT last("frames") FROM node_health WHERE "period"=\'hour\'', db=db
                )
            ),
            20,
            "node_health",
        )
    finally:
        recorder.close()
        assert ingest.stop() == 0, ingest.log()[-3000:]


def test_own_frames_exactly_once_with_status(mosquitto: Any, influxdb: Any, tmp_path: Path) -> None:
    """Frames whose values follow a formula (recomputed here), plus a retained status."""
    db = "own"
    with running_ingest(mosquitto, influxdb, tmp_path, db, "ingest-own"):
        pub = Publisher(mosquitto.host, mosquitto.port, "pub-own")
        status = {
            "site": "yard1",
            "node": "n000",
            "t": T0_MS,
            "state": "online",
            "version": "t",
            "uptime_s": 1,
        }
        pub.publish(
            wire.topic("yard1", "n000", "status"), wire.encode("status", status), retain=True
        )
        n = 0
        for topic, data in frames(20, 60):
            pub.publish(topic, data)
            n += 1
        pub.wait_published(60)
        pub.close()
        wait_for(lambda: count(influxdb, db) >= n, 60, f"{n} points")
        assert count(influxdb, db) == n
        for i, seq in [(0, 0), (17, 12), (19, 59)]:
            (row,) = influxdb.rows(
                f'SELECT "LAeq","LAeq_e","LZeq_31p5","seq" FROM "raw"."second" '
                f"WHERE \"node\"='{node_name(i)}' AND time = {T0_MS + seq * 1000}ms",
                db=db,
            )
            laeq = laeq_of(i, seq)
            assert row["LAeq"] == laeq and row["seq"] == seq
            assert math.isclose(row["LAeq_e"], 10 ** (laeq / 10), rel_tol=1e-12)
            assert row["LZeq_31p5"] == round(laeq - 10.0 + 2 * 0.5, 1)
        (st,) = influxdb.rows('SELECT * FROM "status" WHERE "node"=\'n000\'', db=db)
        assert st["state"] == "online" and st["time"] == T0_MS


def test_invalid_messages_are_republished_with_reason(
    mosquitto: Any, influxdb: Any, tmp_path: Path
) -> None:
    db = "rej"
    cfg = write_config(tmp_path / "central.toml", mosquitto.url, influxdb.url, db)
    ingest = IngestProcess(cfg, "ingest-rej", tmp_path / "ingest.log")
    got: list[dict[str, Any]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, *a: c.subscribe(wire.REJECTED_TOPIC, qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    ingest.start()
    try:
        assert subscribed.wait(10)
        wait_for(lambda: "subscribed" in ingest.log(), 30, "the ingest to subscribe")
        pub = Publisher(mosquitto.host, mosquitto.port, "pub-rej")
        good = list(frames(1, 3, site="yard2"))
        pub.publish(*good[0])
        pub.publish("klankkast/v1/yard2/n000/second", b'{"schema": 1, "LAeq": 300}')
        pub.publish(
            "klankkast/v1/yard2/n000/second", good[1][1].replace(b'"LAeq":', b'"LAeq":9', 1)
        )
        pub.publish("klankkast/v1/yard2/n001/second", good[2][1])  # topic says n001, payload n000
        pub.publish(*good[2])
        pub.wait_published()
        wait_for(lambda: len(got) >= 3, 30, "3 rejections")
        wait_for(lambda: count(influxdb, db) >= 2, 30, "2 points")
        reasons = sorted(r["reason"] for r in got)
        assert reasons == ["level_range", "missing_field", "topic_mismatch"], got
        assert all(r["topic"].startswith("klankkast/v1/yard2/") and r["payload"] for r in got)
        assert count(influxdb, db) == 2
    finally:
        sub.disconnect()
        sub.loop_stop()
        assert ingest.stop() == 0


def test_frames_with_mqtt5_properties_and_every_qos_land_once(
    mosquitto: Any, influxdb: Any, tmp_path: Path
) -> None:
    """Publishers other than our nodes may add MQTT 5 properties or use QoS 0.

    Mosquitto forwards user properties, content type, payload format, correlation data
    and the remaining message expiry (MQTT 5 §3.3.2.3) with each PUBLISH; the ingest
    parses such packets itself (``klankkast.ingest._pahofast``). Every frame must land
    once, with its values. (QoS 2, which the ingest leaves to paho, is covered by
    ``tests/unit/ingest/test_ingest_read_buffer.py``: with QoS 2 publishes carrying
    properties in the mix, Mosquitto 2.0.11 itself did not forward some QoS 1 messages
    to any subscriber, ``mosquitto_sub`` included.)
    """
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    db = "props"
    with running_ingest(mosquitto, influxdb, tmp_path, db, "ingest-props") as ingest:
        pub = Publisher(mosquitto.host, mosquitto.port, "pub-props")
        n = 0
        for k, (topic, data) in enumerate(frames(6, 50)):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if k % 2:
                props.UserProperty = [("source", "test"), ("k", str(k) * (k % 50))]
            if k % 3:
                props.ContentType = "application/json"
                props.PayloadFormatIndicator = 1
            if k % 5 == 0:
                props.MessageExpiryInterval = 3600
                props.CorrelationData = bytes(k % 256 for _ in range(k % 40))
            pub.infos.append(pub.client.publish(topic, data, qos=k % 2, properties=props))
            n += 1
        pub.wait_published(60)
        pub.close()
        try:
            wait_for(lambda: count(influxdb, db) >= n, 60, f"{n} points")
        except AssertionError:
            raise AssertionError(f"{count(influxdb, db)} of {n}: {ingest.log()[-3000:]}") from None
        assert count(influxdb, db) == n
        for i, seq in [(0, 0), (1, 1), (2, 2), (5, 49)]:  # k = 6 seq + i: QoS 0, 1, 0, 1
            (row,) = influxdb.rows(
                f'SELECT "LAeq","seq" FROM "raw"."second" '
                f"WHERE \"node\"='{node_name(i)}' AND time = {T0_MS + seq * 1000}ms",
                db=db,
            )
            assert row["LAeq"] == laeq_of(i, seq) and row["seq"] == seq
