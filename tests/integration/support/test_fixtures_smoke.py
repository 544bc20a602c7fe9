"""Smoke tests of the service fixtures against the real programs (issue 2).

One QoS 1 message through each broker variant, one point through InfluxDB, and
one second of a 1 kHz sine through each test microphone.
"""

from __future__ import annotations

import math
import queue
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support.stack import MqttProbe


def _roundtrip(broker: Any, **kw: Any) -> None:
    sub = MqttProbe(broker, "smoke-sub", **kw)
    pub = MqttProbe(broker, "smoke-pub", **kw)
    try:
        assert sub.subscribe("klankkast/v1/smoke/#") == [1]
        assert pub.publish("klankkast/v1/smoke/n1/second", b"hello", qos=1) == 0
        msg = sub.messages.get(timeout=10)
        assert (msg.topic, msg.payload, msg.qos) == ("klankkast/v1/smoke/n1/second", b"hello", 1)
    finally:
        pub.close()
        sub.close()


def test_mosquitto_qos1_roundtrip(mosquitto: Any) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    assert mosquitto.conf_path.exists()
    _roundtrip(mosquitto)
    assert "mosquitto version" in mosquitto.log_text()


def test_mosquitto_persistent_session_survives_kill(mosquitto: Any) -> None:
    """A QoS 1 message queued for an offline persistent session is still delivered
    after the broker is SIGKILLed (autosave 1 s) and started on the same port."""
    port = mosquitto.port

    def session() -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="persist", protocol=mqtt.MQTTv5)
        got: queue.Queue[bytes] = queue.Queue()
        c.on_message = lambda _c, _u, m: got.put(m.payload)
        c.user_data_set(got)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect(mosquitto.host, mosquitto.port, clean_start=False, properties=props)
        return c

    c = session()
    c.subscribe("klankkast/v1/persist/#", qos=1)
    c.loop_start()
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()

    pub = MqttProbe(mosquitto, "persist-pub")
    assert pub.publish("klankkast/v1/persist/n1/second", b"kept", qos=1) == 0
    pub.close()
    time.sleep(2.5)  # > autosave_interval 1 s, with margin on a loaded machine
    mosquitto.stop(kill=True)
    mosquitto.start()
    assert mosquitto.port == port

    c = session()
    got: queue.Queue[bytes] = c.user_data_get()
    c.loop_start()
    try:
        assert got.get(timeout=10) == b"kept"
    finally:
        c.disconnect()
        c.loop_stop()


def test_mosquitto_factory_extra_conf(mosquitto_factory: Any) -> None:
    broker = mosquitto_factory(extra_conf="max_packet_size 2000")
    assert "max_packet_size 2000" in broker.conf_path.read_text()
    _roundtrip(broker)


def test_mosquitto_tls_qos1_roundtrip(mosquitto_tls: Any) -> None:
    assert mosquitto_tls.url.startswith("mqtts://127.0.0.1:")
    assert Path(mosquitto_tls.ca_file).exists()
    _roundtrip(mosquitto_tls, tls=True, client_cert=True)


def test_mosquitto_tls_rejects_plain_client(mosquitto_tls: Any) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain", protocol=mqtt.MQTTv5)
    with pytest.raises((OSError, ConnectionError, mqtt.WebsocketConnectionError)):
        c.connect(mosquitto_tls.host, mosquitto_tls.port, keepalive=5)
        for _ in range(50):
            rc = c.loop(timeout=0.1)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"loop rc {rc}")
        raise AssertionError("plain MQTT was accepted on the TLS listener")


def test_mosquitto_acl_qos1_roundtrip(mosquitto_acl: Any) -> None:
    """ingest subscribes to everything; node yard1-n1 publishes under its own topic."""
    user, pw, pw_file = mosquitto_acl.credentials("ingest")
    assert Path(pw_file).read_text() == pw
    node, node_pw, _ = mosquitto_acl.credentials("yard1-n1")
    sub = MqttProbe(mosquitto_acl, "acl-ingest", username=user, password=pw)
    pub = MqttProbe(mosquitto_acl, "acl-node", username=node, password=node_pw)
    try:
        assert sub.subscribe("klankkast/v1/#") == [1]
        assert pub.publish("klankkast/v1/yard1/n1/second", b"x", qos=1) == 0
        msg = sub.messages.get(timeout=10)
        assert (msg.topic, msg.payload) == ("klankkast/v1/yard1/n1/second", b"x")
    finally:
        pub.close()
        sub.close()


def test_influxdb_write_and_read_back(influxdb: Any) -> None:
    influxdb.create_database("smoke")
    t_ms = 1_700_000_000_123
    influxdb.write([f"levels,site=yard1,node=n1 LAeq=52.5,seq=7i {t_ms}"], db="smoke")
    rows = influxdb.rows("SELECT * FROM levels", db="smoke")
    assert rows == [{"time": t_ms, "LAeq": 52.5, "node": "n1", "seq": 7, "site": "yard1"}]
    grouped = influxdb.rows('SELECT last("LAeq") FROM "levels" GROUP BY "node"', db="smoke")
    assert grouped == [{"node": "n1", "time": t_ms, "last": 52.5}]
    raw = influxdb.query("SHOW DATABASES")
    assert ["smoke"] in raw["results"][0]["series"][0]["values"]


def test_influxdb_restart_keeps_data(influxdb: Any) -> None:
    influxdb.create_database("keep")
    influxdb.write("m v=1 1000\nm v=2 2000", db="keep")
    influxdb.stop()
    influxdb.start()
    assert [r["v"] for r in influxdb.rows("SELECT v FROM m", db="keep")] == [1, 2]


def test_influxdb_auth_requires_credentials(influxdb_auth: Any) -> None:
    import urllib.error
    import urllib.request

    influxdb_auth.create_database("secure")
    influxdb_auth.write("m v=3 5", db="secure", precision="s")
    assert influxdb_auth.rows("SELECT v FROM m", db="secure") == [{"time": 5000, "v": 3}]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{influxdb_auth.url}/query?q=SHOW+DATABASES", timeout=5)
    assert err.value.code == 401


# --------------------------------------------------------------------------- test microphones

FS_HZ = 48000


def _sine(amplitude: float, seconds: float, f_hz: float = 1000.0, fs_hz: int = FS_HZ) -> np.ndarray:
    t = np.arange(round(seconds * fs_hz)) / fs_hz
    return amplitude * np.sin(2 * np.pi * f_hz * t)


def _db(x: float) -> float:
    return 20 * math.log10(x)


def test_mic_unpaced_captures_sine_exactly(test_mic_unpaced: Any) -> None:
    """1 s of a 1 kHz sine of amplitude A has RMS A/√2 (an integer number of periods);
    through the ALSA file plugin the float32 capture is sample-exact."""
    amplitude = 0.5
    x = _sine(amplitude, 1.0).astype(np.float32)
    mic = test_mic_unpaced(x, FS_HZ)
    import sounddevice as sd

    with mic.activated():
        assert any(d["name"] == mic.device for d in sd.query_devices())
        y = sd.rec(
            FS_HZ, samplerate=FS_HZ, channels=1, dtype="float32", device=mic.device, blocking=True
        )[:, 0]
        # A new stream starts from the beginning again; block-wise reads concatenate.
        with sd.InputStream(samplerate=FS_HZ, channels=1, dtype="float32", device=mic.device) as s:
            blocks = [s.read(4800)[0][:, 0] for _ in range(10)]
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(np.concatenate(blocks), x)
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    assert abs(_db(rms) - _db(amplitude / math.sqrt(2))) < 0.01


def test_mic_unpaced_in_subprocess(test_mic_unpaced: Any, tmp_path: Path) -> None:
    """``.env`` lets a subprocess (here ``arecord``, real alsa-lib) capture the signal;
    it is unclocked, so 3 s of audio arrive in well under 3 s."""
    x = _sine(0.25, 3.0).astype(np.float32)
    mic = test_mic_unpaced(x, FS_HZ)
    out = tmp_path / "cap.raw"
    t0 = time.monotonic()
    subprocess.run(
        ["arecord", "-q", "-D", mic.device, "-f", "FLOAT_LE", "-r", str(FS_HZ), "-c", "1",
         "-s", str(len(x)), "-t", "raw", str(out)],
        env=mic.env, check=True, timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    np.testing.assert_array_equal(np.fromfile(out, dtype="<f4"), x)
    assert elapsed < 2.0


def test_mic_unpaced_stereo_and_tail(test_mic_unpaced: Any) -> None:
    """Two channels keep their own signals; after the signal the tail is silence."""
    left = _sine(0.5, 0.5)
    right = _sine(0.1, 0.5, f_hz=250.0)
    x = np.stack([left, right], axis=1).astype(np.float32)
    mic = test_mic_unpaced(x, FS_HZ, tail_s=1.0)
    import sounddevice as sd

    with mic.activated():
        y = sd.rec(
            FS_HZ, samplerate=FS_HZ, channels=2, dtype="float32", device=mic.device, blocking=True
        )
    np.testing.assert_array_equal(y[: len(x)], x)
    assert not np.any(y[len(x) :])


def _steady_rms(blocks: list[np.ndarray]) -> list[float]:
    return [float(np.sqrt(np.mean(b.astype(np.float64) ** 2))) for b in blocks]


def test_mic_paced_captures_sine_in_real_time(test_mic_paced: Any) -> None:
    """A 1 kHz sine of amplitude A played into the null sink is captured from its
    monitor with RMS A/√2 (±0.1 dB: 32-bit WAV, float32 sink, no resampling), and
    capture is paced: N seconds of audio take at least about N seconds."""
    import sounddevice as sd

    amplitude = 0.5
    expected_db = _db(amplitude / math.sqrt(2))
    block = FS_HZ // 10  # 100 ms: 100 periods of 1 kHz
    n_blocks = 25
    with test_mic_paced.activated():
        assert any(d["name"] == test_mic_paced.device for d in sd.query_devices())
        t0 = time.monotonic()
        with sd.InputStream(
            samplerate=FS_HZ, channels=1, dtype="float32", device=test_mic_paced.device
        ) as s:
            player = test_mic_paced.play(_sine(amplitude, 1.0), FS_HZ)
            blocks = [s.read(block)[0][:, 0] for _ in range(n_blocks)]
        elapsed = time.monotonic() - t0
    player.wait(timeout=10)
    assert player.returncode == 0
    captured_s = n_blocks * block / FS_HZ
    assert elapsed >= captured_s - 0.15, f"{captured_s} s captured in {elapsed:.2f} s: not paced"
    levels = _steady_rms(blocks)
    # The steady part: blocks entirely inside the played second (silence before/after,
    # two partial blocks at the edges).
    steady = [r for r in levels if r > 0 and abs(_db(r) - expected_db) < 0.1]
    assert len(steady) >= 7, f"block RMS: {levels}"
    assert sum(r > 0.01 for r in levels) <= 11  # nothing but the one second was played


def test_mic_paced_subprocess_env_and_silence(test_mic_paced: Any, tmp_path: Path) -> None:
    """With ``.env`` a subprocess (``arecord -D pulse``) captures the monitor; with
    nothing playing it is digital silence, delivered in real time (1 s ≥ ~1 s)."""
    out = tmp_path / "silence.raw"
    t0 = time.monotonic()
    subprocess.run(
        ["arecord", "-q", "-D", test_mic_paced.device, "-f", "FLOAT_LE", "-r", str(FS_HZ), "-c", "1",
         "-d", "1", "-t", "raw", str(out)],
        env=test_mic_paced.env, check=True, timeout=30,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    y = np.fromfile(out, dtype="<f4")
    assert len(y) == FS_HZ
    assert elapsed >= 0.9
    assert not np.any(y)


def test_servers_stop_and_remove_their_directories() -> None:
    """What the fixtures do at teardown: close() ends the process and removes the
    temporary directory; a server that cannot start raises with its log."""
    import os

    from support.stack import Broker, Influx, ServiceError

    for cls in (Broker, Influx):
        server = cls.launch()
        pid, base = server.pid, server.base_dir
        assert pid is not None and base.is_dir()
        server.close()
        assert not base.exists()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(ServiceError, match="no_such_option"):
        Broker.launch(extra_conf="no_such_option 1")


def test_mosquitto_tls_client_certificate_required(mosquitto_factory: Any, tmp_path: Path) -> None:
    """With require_certificate the throwaway client certificate is accepted and a
    client without one is refused in the TLS handshake."""
    from support.stack import make_tls_files

    broker = mosquitto_factory(tls=make_tls_files(tmp_path / "tls"), require_certificate=True)
    probe = MqttProbe(broker, "with-cert", client_cert=True)
    probe.close()
    with pytest.raises((OSError, TimeoutError, ConnectionRefusedError)):
        MqttProbe(broker, "without-cert", client_cert=False, timeout_s=2)
