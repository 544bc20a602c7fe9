"""Helpers for the node's integration tests: config files, the node as a subprocess,
and a durable MQTT collector (persistent session, QoS 1)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from klankkast.sensor import wire

SENSOR = str(Path(sys.executable).with_name("klankkast-sensor"))
if not Path(SENSOR).exists():
    SENSOR = shutil.which("klankkast-sensor") or SENSOR


def write_config(
    directory: Path,
    broker: Any,
    *,
    device: str,
    samplerate: int = 48000,
    site: str = "yard1",
    node: str = "n1",
    offset_db: float = 100.0,
    username: str | None = None,
    password: str | None = None,
    max_mb: float = 50.0,
    status_interval_s: float = 2.0,
    extra_mqtt: str = "",
    confirm: str = "broker",
    confirm_timeout_s: float = 120.0,
    summary_s: int = 60,
) -> Path:
    """A node config. ``confirm`` defaults to ``"broker"`` (delete on PUBACK) because most
    node tests run without an ingest; the end-to-end tests pass ``"ingest"``."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "[node]",
        f'id = "{node}"',
        f'site = "{site}"',
        f"status_interval_s = {status_interval_s}",
        "[audio]",
        f'device = "{device}"',
        f"samplerate = {samplerate}",
        "block_ms = 100",
        f"summary_s = {summary_s}",
        "[calibration]",
        f"offset_db = {offset_db}",
        "[mqtt]",
        f'url = "{broker.url}"',
        "keepalive_s = 5",
        "reconnect_max_s = 2",
    ]
    if username is not None:
        (directory / "mqtt.password").write_text((password or "") + "\n")
        lines += [f'username = "{username}"', 'password_file = "mqtt.password"']
    if extra_mqtt:
        lines.append(extra_mqtt)
    lines += [
        "[outbox]",
        'path = "outbox.sqlite"',
        f"max_mb = {max_mb}",
        f'confirm = "{confirm}"',
        f"confirm_timeout_s = {confirm_timeout_s}",
    ]
    path = directory / "node.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class NodeProcess:
    """``klankkast-sensor run --config F`` as a child process (stderr to a log file)."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config = config
        self.env = dict(env)
        self.log_path = config.with_name(f"node-{uuid.uuid4().hex[:6]}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeProcess:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [SENSOR, "run", "--config", str(self.config), "--log-level", "DEBUG"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=10)
            raise AssertionError(f"node did not stop within {timeout_s} s:\n{self.log()}") from None
        finally:
            self._log.close()
        return rc

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


class Collector:
    """Subscribes ``klankkast/v1/#`` at QoS 1 with a persistent session and keeps every
    decoded message. Reconnects quickly and resubscribes on every connect."""

    def __init__(
        self,
        broker: Any,
        *,
        username: str | None = None,
        password: str | None = None,
        topic: str = "klankkast/v1/#",
    ) -> None:
        self.topic = topic
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.raw: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"collector-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username:
            c.username_pw_set(username, password)
        c.reconnect_delay_set(1, 1)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *a: self._connected.clear()
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client = c
        c.connect(broker.host, broker.port, keepalive=5, clean_start=False, properties=props)
        c.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("collector did not connect")

    def _on_connect(self, client: Any, u: Any, flags: Any, rc: Any, p: Any) -> None:
        client.subscribe(self.topic, qos=1)
        self._connected.set()

    def _on_message(self, client: Any, u: Any, msg: Any) -> None:
        with self._lock:
            self.raw.append((msg.topic, bytes(msg.payload)))
            with contextlib.suppress(wire.SchemaError):
                self.messages.append((msg.topic, wire.decode(msg.topic, msg.payload).payload))

    def of(self, kind: str, node: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                p
                for t, p in self.messages
                if t.endswith("/" + kind) and (node is None or p["node"] == node)
            ]

    def wait_for(self, cond: Callable[[], bool], timeout_s: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        if not cond():
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return sorted({f["seq"] for f in frames})


def assert_contiguous(frames: list[dict[str, Any]]) -> None:
    s = seqs(frames)
    assert s, "no frames"
    missing = sorted(set(range(s[0], s[-1] + 1)) - set(s))
    assert s[0] == 0, f"first seq is {s[0]}"
    assert not missing, f"missing seq: {missing[:20]} (of {len(missing)})"
    # duplicates only as QoS 1 redeliveries: identical payloads for one seq
    by_seq: dict[int, dict[str, Any]] = {}
    for f in frames:
        if f["seq"] in by_seq:
            assert by_seq[f["seq"]] == f, f"two different frames with seq {f['seq']}"
        by_seq[f["seq"]] = f


def tones(fs_hz: int, seconds: float, parts: list[tuple[float, float]]) -> np.ndarray:
    """Sum of sines: (frequency Hz, rms) pairs."""
    t = np.arange(int(seconds * fs_hz)) / fs_hz
    return sum(np.sqrt(2) * rms * np.sin(2 * np.pi * f * t) for f, rms in parts)  # type: ignore[return-value]


def replay(wav: Path, offset_db: float) -> list[dict[str, Any]]:
    out = subprocess.run(
        [SENSOR, "replay", str(wav), "--offset-db", str(offset_db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def write_wav(path: Path, signal: np.ndarray, fs_hz: int) -> None:
    from scipy.io import wavfile

    wavfile.write(path, fs_hz, np.asarray(signal, dtype=np.float32))


def env_without_notify(env: dict[str, str]) -> dict[str, str]:
    e = dict(env)
    e.pop("NOTIFY_SOCKET", None)
    e["PYTHONUNBUFFERED"] = "1"
    return e


__all__ = [
    "SENSOR",
    "Collector",
    "NodeProcess",
    "assert_contiguous",
    "env_without_notify",
    "os",
    "replay",
    "seqs",
    "signal",
    "tones",
    "write_config",
    "write_wav",
]
