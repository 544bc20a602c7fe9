"""100 nodes x 10 minutes of 1-s frames through real Mosquitto into real InfluxDB: every
frame exactly once, values as sent, levels as floats, energy companions 10^(L/10)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from ingest_frames import (
    T0_MS,
    IngestProcess,
    Publisher,
    count,
    frames,
    laeq_of,
    node_name,
    wait_for,
    write_config,
)
from paho.mqtt.enums import CallbackAPIVersion

from klankkast.sensor import wire

N_NODES = 100
N_SECONDS = 600


def test_hundred_nodes_ten_minutes_exactly_once(
    mosquitto: Any, influxdb: Any, tmp_path: Path
) -> None:
    db = "e2e"
    cfg = write_config(tmp_path / "central.toml", mosquitto.url, influxdb.url, db)
    ingest = IngestProcess(cfg, "ingest-e2e", tmp_path / "ingest.log")
    ingest.start()
    try:
        # the layout exists once the ingest is up
        wait_for(
            lambda: "forever" in str(influxdb.query(f'SHOW RETENTION POLICIES ON "{db}"')),
            30,
            "the ingest to create the layout",
        )
        wait_for(lambda: "subscribed" in ingest.log(), 30, "the ingest to subscribe")
        pub = Publisher(mosquitto.host, mosquitto.port, "pub-e2e")
        # also a retained status and one minute summary
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
        for topic, data in frames(N_NODES, N_SECONDS):
            pub.publish(topic, data)
            n += 1
        pub.wait_published(120)
        pub.close()
        assert n == N_NODES * N_SECONDS
        wait_for(lambda: count(influxdb, db) >= n, 120, f"{n} points")
        assert count(influxdb, db) == n
        per_node = influxdb.rows(
            'SELECT count("LAeq"), sum("seq") FROM "raw"."second" GROUP BY "node"', db=db
        )
        assert len(per_node) == N_NODES
        expected_seq_sum = N_SECONDS * (N_SECONDS - 1) // 2
        for row in per_node:
            assert row["count"] == N_SECONDS, row
            assert row["sum"] == expected_seq_sum, row
        # spot values: recomputed from the generator's formula, not read from the ingest
        for i, seq in [(0, 0), (17, 123), (99, 599), (42, 300)]:
            t_ms = T0_MS + seq * 1000
            (row,) = influxdb.rows(
                f'SELECT "LAeq","LAeq_e","LZeq_31p5","seq" FROM "raw"."second" '
                f"WHERE \"node\"='{node_name(i)}' AND time = {t_ms}ms",
                db=db,
            )
            laeq = laeq_of(i, seq)
            assert row["LAeq"] == laeq and row["seq"] == seq
            assert math.isclose(row["LAeq_e"], 10 ** (laeq / 10), rel_tol=1e-12)
            assert row["LZeq_31p5"] == round(laeq - 10.0 + 2 * 0.5, 1)
        types = {
            r["fieldKey"]: r["fieldType"]
            for r in influxdb.rows('SHOW FIELD KEYS FROM "raw"."second"', db=db)
        }
        assert types["LAeq"] == types["LZeq_1000"] == types["LAeq_e"] == "float"
        assert types["seq"] == types["overload"] == "integer"
        (st,) = influxdb.rows('SELECT * FROM "status" WHERE "node"=\'n000\'', db=db)
        assert st["state"] == "online" and st["time"] == T0_MS
        # own metrics and node health reach InfluxDB
        wait_for(
            lambda: bool(influxdb.rows('SELECT last("points_written") FROM ingest_stats', db=db)),
            20,
            "ingest_stats",
        )
        wait_for(
            lambda: bool(
                influxdb.rows(
                    'SELECT last("frames") FROM node_health WHERE "period"=\'hour\' AND "node"=\'n005\'',
                    db=db,
                )
            ),
            20,
            "node_health",
        )
    finally:
        assert ingest.stop() == 0, ingest.log()[-3000:]


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
