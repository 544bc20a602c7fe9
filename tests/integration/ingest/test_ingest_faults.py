"""Crash and outage recovery: nothing lost, nothing duplicated.

While frames stream in, the ingest is killed with SIGKILL and restarted, InfluxDB is
stopped for 2 minutes and restarted, and the broker is restarted. Afterwards InfluxDB
holds exactly the published frames: per node the count and the sum of ``seq`` match
what was sent (a missing frame lowers both, a misplaced or extra one changes them).

Mosquitto 2.0 does not restore *shared* subscriptions from its persistence file, so a
frame published after a broker restart but before the ingest has subscribed again
reaches no one (see ingest/README.md). The stream therefore pauses across the broker
restart until the ingest is back; everything queued or in flight for the ingest's
session at the restart (thousands of messages here) must still arrive.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.ingest_frames import (
    IngestProcess,
    Publisher,
    count,
    node_name,
    second_payload,
    wait_for,
    write_config,
)

from klankkast.sensor import wire

N_NODES = 20
N_SECONDS = 1400  # frames per node
RATE_SECONDS_PER_S = 10  # 10 frame-seconds per real second: 200 frames/s, 140 s stream


def per_node(influxdb: Any, db: str) -> list[tuple[str, int, int]]:
    """(node, count, sum of seq) in InfluxDB, to tell which frames are missing."""
    rows = influxdb.rows(
        'SELECT count("seq"), sum("seq") FROM "raw"."second" GROUP BY "node"', db=db
    )
    return [(r.get("node", "?"), r["count"], r["sum"]) for r in rows]


@pytest.mark.slow
def test_sigkill_influx_outage_and_broker_restart_lose_nothing(
    mosquitto: Any, influxdb: Any, tmp_path: Path
) -> None:
    db = "faults"
    cfg = write_config(tmp_path / "central.toml", mosquitto.url, influxdb.url, db)
    ingest = IngestProcess(cfg, "ingest-faults", tmp_path / "ingest.log")
    ingest.start()
    wait_for(lambda: "subscribed" in ingest.log(), 30, "the ingest to subscribe")
    pub = Publisher(mosquitto.host, mosquitto.port, "pub-faults")
    progress = {"seq": 0}
    stop = threading.Event()
    running = threading.Event()
    running.set()

    def stream() -> None:
        start = time.monotonic()
        for seq in range(N_SECONDS):
            if stop.is_set():
                return
            running.wait()
            for i in range(N_NODES):
                node = node_name(i)
                pub.publish(
                    wire.topic("yard9", node, "second"),
                    wire.encode("second", second_payload("yard9", node, i, seq)),
                )
            progress["seq"] = seq + 1
            delay = start + (seq + 1) / RATE_SECONDS_PER_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        # 1. SIGKILL mid-stream, once some frames are in InfluxDB
        wait_for(lambda: count(influxdb, db) > 200, 30, "first points")
        ingest.kill()
        time.sleep(1.0)
        ingest.start()
        # 2. InfluxDB down for 2 minutes
        wait_for(lambda: progress["seq"] > 80, 30, "stream progress")
        influxdb.stop()
        time.sleep(120)
        influxdb.start()
        # 3. broker restart (persistence on: sessions and queued messages survive)
        running.clear()
        time.sleep(0.2)
        pub.wait_published(60)
        backlog_before = count(influxdb, db)
        mosquitto.stop()
        time.sleep(1.0)
        mosquitto.start()
        wait_for(lambda: ingest.log().count("subscribed") >= 3, 30, "the ingest to subscribe again")
        running.set()
        streamer.join(120)
        assert not streamer.is_alive()
        pub.wait_published(120)
        n = N_NODES * N_SECONDS
        try:
            wait_for(lambda: count(influxdb, db) >= n, 120, f"{n} points", poll_s=1.0)
        except AssertionError:
            raise AssertionError(
                f"{count(influxdb, db)} of {n} points ({backlog_before} before the broker "
                f"restart); per node: {per_node(influxdb, db)}\n{ingest.log()[-6000:]}"
            ) from None
        time.sleep(2.0)  # anything extra would show up now
        assert count(influxdb, db) == n, f"{backlog_before} points before the broker restart"
        rows = influxdb.rows(
            'SELECT count("seq"), sum("seq") FROM "raw"."second" GROUP BY "node"', db=db
        )
        assert len(rows) == N_NODES
        for row in rows:
            assert (row["count"], row["sum"]) == (N_SECONDS, N_SECONDS * (N_SECONDS - 1) // 2), row
        log = ingest.log()
        assert "retrying" in log  # the outage was seen and ridden out
    finally:
        stop.set()
        pub.close()
        ingest.stop()
