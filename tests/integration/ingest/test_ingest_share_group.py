"""Two ingest processes in one share group split the load; one killed, the other carries on.

Mosquitto keeps routing a share of the messages to a group member whose session is
offline but not expired (they queue for it). So after the kill the survivor writes its
own share, and when the killed process comes back with the same client id its queued
share arrives: in the end every frame is in InfluxDB exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.ingest_frames import IngestProcess, Publisher, count, frames, wait_for, write_config

N_NODES = 20


def messages_in(influxdb: Any, db: str, instance: str) -> int:
    rows = influxdb.rows(
        f'SELECT last("messages_in") FROM ingest_stats WHERE "instance"=\'{instance}\'', db=db
    )
    return int(rows[0]["last"]) if rows else 0


def test_share_group_splits_and_survives_a_kill(
    mosquitto: Any, influxdb: Any, tmp_path: Path
) -> None:
    db = "share"
    cfg = write_config(
        tmp_path / "central.toml", mosquitto.url, influxdb.url, db, stats_interval_s=0.5
    )
    a = IngestProcess(cfg, "ingest-a", tmp_path / "a.log")
    b = IngestProcess(cfg, "ingest-b", tmp_path / "b.log")
    a.start()
    b.start()
    try:
        wait_for(
            lambda: "subscribed" in a.log() and "subscribed" in b.log(), 30, "both to subscribe"
        )
        pub = Publisher(mosquitto.host, mosquitto.port, "pub-share")
        all_frames = list(frames(N_NODES, 400, site="shared"))
        first, second = all_frames[: N_NODES * 200], all_frames[N_NODES * 200 :]
        for f in first:
            pub.publish(*f)
        pub.wait_published()
        wait_for(lambda: count(influxdb, db) >= len(first), 60, "the first half")
        # stats are written every 0.5 s: wait until they cover the first half
        wait_for(
            lambda: (
                messages_in(influxdb, db, "ingest-a") + messages_in(influxdb, db, "ingest-b")
                >= len(first)
            ),
            20,
            "the stats of both",
        )
        in_a, in_b = messages_in(influxdb, db, "ingest-a"), messages_in(influxdb, db, "ingest-b")
        assert in_a > 0 and in_b > 0, (in_a, in_b)  # both got a share

        b.kill()
        for f in second:
            pub.publish(*f)
        pub.wait_published()
        # a carries on with its share while b is gone
        wait_for(
            lambda: count(influxdb, db) >= len(first) + len(second) // 4,
            60,
            "a's share of the second half",
        )
        wait_for(lambda: messages_in(influxdb, db, "ingest-a") > in_a, 20, "a's stats to grow")
        # b comes back with the same client id: its queued share arrives
        b.start()
        n = len(all_frames)
        wait_for(lambda: count(influxdb, db) >= n, 60, f"all {n} frames")
        assert count(influxdb, db) == n
        rows = influxdb.rows(
            'SELECT count("seq"), sum("seq") FROM "raw"."second" GROUP BY "node"', db=db
        )
        assert [(r["count"], r["sum"]) for r in rows] == [(400, 400 * 399 // 2)] * N_NODES
        pub.close()
    finally:
        assert a.stop() == 0, a.log()[-2000:]
        b.stop()
