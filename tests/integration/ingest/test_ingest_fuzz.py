"""Fuzz: 20,000 invalid payloads and topics around valid frames.

Every invalid message is built to break the contract in a known way (so the test
knows it must be rejected without asking the code under test): random bytes,
truncated JSON, non-UTF-8, a missing or unknown field, a wrong type, a level outside
-20..200 dB, a time before 2020 or far in the future, an unknown schema, a topic that
disagrees with the payload, a bad topic shape. The ingest process must survive, count
each one as rejected, and still write the valid frames in between exactly once.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from support.ingest_frames import (
    Publisher,
    count,
    node_name,
    running_ingest,
    second_payload,
    wait_for,
)

from klankkast.sensor import wire

N_INVALID = 20_000
N_VALID = 200


def invalid_message(rng: random.Random, i: int) -> tuple[str, bytes]:
    node = node_name(i % 7)
    topic = wire.topic("fuzz", node, "second")
    p = second_payload("fuzz", node, i % 7, i % 3600)  # t within the last 2 h
    p["schema"] = 1
    kind = i % 13
    if kind == 0:
        return topic, bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if kind == 1:
        data = json.dumps(p).encode()
        return topic, data[: rng.randint(0, len(data) - 1)]
    if kind == 2:
        data = bytearray(json.dumps(p).encode())
        data[rng.randrange(len(data))] = 0xFF  # never valid UTF-8
        return topic, bytes(data)
    if kind == 3:
        p.pop(rng.choice(list(wire.SECOND_REQUIRED)))
    elif kind == 4:
        p[rng.choice(["extra", "audio_samples", "LAeq2", "x"])] = rng.random()
    elif kind == 5:
        p[rng.choice(["LAeq", "LCeq", "seq", "overload", "bass"])] = rng.choice(
            ["60", None, [1], {"a": 1}, True]
        )
    elif kind == 6:
        p[rng.choice(["LAeq", "LAFmax", "LCpeak", "LZeq"])] = rng.choice(
            [rng.uniform(200.001, 1e9), rng.uniform(-1e9, -20.001)]
        )
    elif kind == 7:
        p["bands"] = {"1000": rng.uniform(200.5, 1e6)}
    elif kind == 8:
        p["t"] = rng.choice(
            [rng.randint(0, 1_577_836_799_999), 4_102_444_800_000 + rng.randint(0, 10**12)]
        )
    elif kind == 9:
        p["schema"] = rng.choice([0, 2, 99, "1"])
    elif kind == 10:
        return wire.topic("fuzz", "other" + node, "second"), json.dumps(p).encode()
    elif kind == 11:
        bad_topics = [
            f"klankkast/v1/fuzz/{node}/seconds",
            f"klankkast/v1/fuzz/{node}/second/extra",
            f"klankkast/v1/fu zz/{node}/second",
            f"klankkast/v1/fuzz/{node}/minute",  # a second frame is not a minute summary
        ]
        return rng.choice(bad_topics), json.dumps(p).encode()
    else:
        p["bands"] = {rng.choice(["999", "31,5", "1k", ""]): 50.0}
    return topic, json.dumps(p).encode()


def test_fuzz_never_kills_the_ingest(mosquitto: Any, influxdb: Any, tmp_path: Path) -> None:
    db = "fuzz"
    with running_ingest(mosquitto, influxdb, tmp_path, db, "ingest-fuzz") as ingest:
        pub = Publisher(mosquitto.host, mosquitto.port, "pub-fuzz")
        rng = random.Random(20261129)
        valid_every = N_INVALID // N_VALID
        for i in range(N_INVALID):
            pub.publish(*invalid_message(rng, i))
            if i % valid_every == 0:
                seq = i // valid_every
                pub.publish(
                    wire.topic("fuzz", "good", "second"),
                    wire.encode("second", second_payload("fuzz", "good", 3, seq)),
                )
        pub.wait_published(120)
        pub.close()

        def rejected() -> int:
            rows = influxdb.rows(
                'SELECT last("rejected") FROM ingest_stats WHERE "instance"=\'ingest-fuzz\'', db=db
            )
            return int(rows[0]["last"]) if rows else 0

        wait_for(lambda: rejected() >= N_INVALID, 120, f"{N_INVALID} rejections", poll_s=1.0)
        assert ingest.proc is not None and ingest.proc.poll() is None, ingest.log()[-3000:]
        wait_for(lambda: count(influxdb, db) >= N_VALID, 60, f"{N_VALID} valid points")
        assert count(influxdb, db) == N_VALID
        assert rejected() == N_INVALID
        (row,) = influxdb.rows(
            "SELECT last(*) FROM ingest_stats WHERE \"instance\"='ingest-fuzz'", db=db
        )
        reasons = {
            k[len("last_rejected_") :]: v
            for k, v in row.items()
            if k.startswith("last_rejected_") and v
        }
        assert sum(reasons.values()) == N_INVALID
        assert {"bad_json", "missing_field", "unknown_field", "bad_type", "level_range", "t_past", "t_future",
                "schema_version", "topic_mismatch", "bad_topic"} <= set(reasons), reasons  # fmt: skip
        assert "internal" not in reasons
