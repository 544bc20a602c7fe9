"""Synthetic node frames and a QoS 1 publisher for the ingest tests (built on ``wire.encode``).

Every frame's levels are a deterministic function of (node index, seq), so a test can
recompute the value it expects in InfluxDB without reading the ingest's code.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from klankkast.sensor import wire

HOUR_MS = 3_600_000


def default_t0_ms() -> int:
    """Start of the UTC hour two hours ago: recent enough for the 30-day ``raw`` policy."""
    now_ms = time.time_ns() // 1_000_000
    return (now_ms // HOUR_MS - 2) * HOUR_MS


T0_MS = default_t0_ms()


def laeq_of(node_index: int, seq: int) -> float:
    """The LAeq carried by frame ``seq`` of node ``node_index``: 30.0-79.9 dB in 0.1 dB steps."""
    return 30.0 + ((node_index * 37 + seq * 11) % 500) / 10.0


def second_payload(
    site: str, node: str, node_index: int, seq: int, t0_ms: int = T0_MS
) -> dict[str, Any]:
    laeq = laeq_of(node_index, seq)
    return {
        "site": site,
        "node": node,
        "t": t0_ms + seq * 1000,
        "seq": seq,
        "dur_ms": 1000,
        "LAeq": laeq,
        "LCeq": laeq + 3.0,
        "LZeq": laeq + 5.0,
        "LAFmax": laeq + 6.0,
        "LAFmin": laeq - 4.0,
        "LASmax": laeq + 2.0,
        "LCpeak": laeq + 20.0,
        "bands": {
            n: round(laeq - 10.0 + i * 0.5, 1) for i, n in enumerate(wire.BAND_NOMINALS[:28])
        },
        "overload": 0,
        "nonfinite": 0,
        "bass": 3.0,
        "impulsive": 0.0,
        "tonality": -2.5,
    }


def node_name(i: int) -> str:
    return f"n{i:03d}"


def frames(
    n_nodes: int, n_seconds: int, site: str = "yard1", t0_ms: int = T0_MS
) -> Iterator[tuple[str, bytes]]:
    """(topic, payload) of ``n_seconds`` second frames of ``n_nodes`` nodes, time-major."""
    for seq in range(n_seconds):
        for i in range(n_nodes):
            node = node_name(i)
            payload = second_payload(site, node, i, seq, t0_ms)
            yield wire.topic(site, node, "second"), wire.encode("second", payload)


class Publisher:
    """A QoS 1 paho publisher with a persistent session that survives broker restarts."""

    def __init__(self, host: str, port: int, client_id: str = "test-pub") -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.on_disconnect = lambda *a: self._connected.clear()
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async(host, port, clean_start=False, properties=props)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError("test publisher could not connect")
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.infos.append(self.client.publish(topic, payload, qos=qos, retain=retain))

    def wait_published(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        for info in self.infos:
            # not is_published(): it raises for messages queued while disconnected,
            # which paho sends after reconnecting
            while not info._published:
                if time.monotonic() > deadline:
                    raise TimeoutError("messages not acknowledged by the broker in time")
                time.sleep(0.01)
        self.infos.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_config(path: Path, mqtt_url: str, influx_url: str, database: str, **ingest: Any) -> Path:
    """A central config for tests: small backoff so recovery is quick."""
    opts = {"batch_points": 5000, "batch_ms": 200, "stats_interval_s": 1.0, "health_interval_s": 2.0,
            "max_backoff_s": 1.0, **ingest}  # fmt: skip
    body = [
        "[mqtt]",
        f'url = "{mqtt_url}"',
        "session_expiry_s = 600",
        "[influxdb]",
        f'url = "{influx_url}"',
        f'database = "{database}"',
        "[ingest]",
    ]
    for k, v in opts.items():
        body.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(body) + "\n")
    return path


class IngestProcess:
    """``python -m klankkast.ingest.cli --config F --client-id ID`` as a child process."""

    def __init__(self, config: Path, client_id: str, log_path: Path) -> None:
        self.config = config
        self.client_id = client_id
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "klankkast.ingest.cli", "--config", str(self.config),
             "--client-id", self.client_id],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_ingest(
    mosquitto: Any, influxdb: Any, tmp_path: Path, db: str, client_id: str
) -> Iterator[IngestProcess]:
    """An ingest writing to ``db`` that has subscribed; when left, it must stop cleanly (exit 0)."""
    cfg = write_config(tmp_path / "central.toml", mosquitto.url, influxdb.url, db)
    ingest = IngestProcess(cfg, client_id, tmp_path / "ingest.log")
    ingest.start()
    try:
        wait_for(lambda: "subscribed" in ingest.log(), 30, "the ingest to subscribe")
        yield ingest
    finally:
        code = ingest.stop()
    assert code == 0, ingest.log()[-3000:]


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


def count(influx: Any, db: str, query: str = 'SELECT count("LAeq") FROM "raw"."second"') -> int:
    rows = influx.rows(query, db=db)
    return int(rows[0]["count"]) if rows else 0
