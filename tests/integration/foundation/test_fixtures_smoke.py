"""Smoke tests of the service fixtures against the real programs (issue 2).

One QoS 1 message through each broker variant, one point through InfluxDB, and
one second of a 1 kHz sine through each test microphone.
"""

from __future__ import annotations

import queue
import ssl
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Client:
    """A small synchronous wrapper over paho for the smoke tests (MQTT v5)."""

    def __init__(
        self,
        broker: Any,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        client_cert: bool = False,
    ) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.acks: queue.Queue[tuple[int, int]] = queue.Queue()
        self.connected: queue.Queue[int] = queue.Queue()
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            c.username_pw_set(username, password)
        if tls:
            c.tls_set(
                ca_certs=str(broker.ca_file),
                certfile=str(broker.client_cert) if client_cert else None,
                keyfile=str(broker.client_key) if client_cert else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        c.on_connect = lambda _c, _u, _f, rc, _p: self.connected.put(rc.value)
        c.on_message = lambda _c, _u, msg: self.messages.put(msg)
        c.on_publish = lambda _c, _u, mid, rc, _p: self.acks.put((mid, rc.value))
        c.on_subscribe = lambda _c, _u, _mid, rcs, _p: self.subacks.put([r.value for r in rcs])
        self.client = c
        c.connect(broker.host, broker.port, keepalive=30, clean_start=True)
        c.loop_start()
        rc = self.connected.get(timeout=10)
        assert rc == 0, f"CONNACK reason code {rc:#x}"

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        self.client.subscribe(topic, qos=qos)
        return self.subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Publish and return the PUBACK reason code (0 = success)."""
        info = self.client.publish(topic, payload, qos=qos)
        mid, rc = self.acks.get(timeout=10)
        assert mid == info.mid
        return rc

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _roundtrip(broker: Any, **kw: Any) -> None:
    sub = Client(broker, "smoke-sub", **kw)
    pub = Client(broker, "smoke-pub", **kw)
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

    pub = Client(mosquitto, "persist-pub")
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
    sub = Client(mosquitto_acl, "acl-ingest", username=user, password=pw)
    pub = Client(mosquitto_acl, "acl-node", username=node, password=node_pw)
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
