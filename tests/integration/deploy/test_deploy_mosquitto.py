"""deploy/mosquitto in the real mosquitto (issue 8): the production config loads,
its ACL confines each node to its own topics and lets the ingest read everything.

MQTT 5.0 §3.4.2.1: a PUBACK reason code 0x87 means "Not authorized"; the
same code in a CONNACK (§3.2.2.2, next to 0x86 "Bad User Name or Password").
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support.stack import (
    ACL_NODES,
    MqttProbe,
    find_binary,
    free_port,
    render_production_conf,
    setup_acl_dir,
)

NOT_AUTHORIZED = 0x87
BAD_USER_OR_PASSWORD = 0x86
#: PUBACK success codes: 0x00 Success, 0x10 No matching subscribers (§3.4.2.1).
ACCEPTED = (0x00, 0x10)
REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy" / "mosquitto"


def _probe(broker: Any, user: str, client_id: str | None = None, **kw: Any) -> MqttProbe:
    name, password, _ = broker.credentials(user)
    return MqttProbe(broker, client_id or f"t-{user}", username=name, password=password, **kw)


def test_production_config_loads_with_tls(mosquitto_factory: Any, tmp_path: Path) -> None:
    """The production mosquitto.conf (listener, file paths and log rewritten to a
    temporary directory; every other line as shipped) starts and serves a node over
    TLS with user name + password."""
    from support.stack import make_tls_files

    tls = make_tls_files(tmp_path / "tls")
    password_file, acl_file, passwords = setup_acl_dir(tmp_path / "auth")
    port = free_port()
    prod = (DEPLOY / "mosquitto.conf").read_text()
    conf = render_production_conf(
        prod,
        port=port,
        directory=tmp_path,
        password_file=password_file,
        acl_file=acl_file,
        log_file=tmp_path / "mosquitto.log",
        tls=tls,
    )
    # Every production setting except the machine-specific ones survives the rewrite.
    kept = {ln.split()[0] for ln in conf.splitlines() if ln and not ln.startswith("#")}
    for key in ("allow_anonymous", "persistence", "autosave_interval", "max_queued_messages",
                "persistent_client_expiration", "max_packet_size"):  # fmt: skip
        assert key in kept
    (tmp_path / "data").mkdir()
    broker = mosquitto_factory(
        port=port, tls=tls, conf_body=conf.replace("{", "{{").replace("}", "}}")
    )
    assert "mosquitto version 2" in (tmp_path / "mosquitto.log").read_text()
    ingest = MqttProbe(broker, "ingest", username="ingest", password=passwords["ingest"])
    node = MqttProbe(broker, "yard1-n1", username="yard1-n1", password=passwords["yard1-n1"])
    try:
        assert ingest.subscribe("klankkast/v1/#") == [1]
        assert node.publish("klankkast/v1/yard1/n1/second", b"{}") in ACCEPTED
        msg = ingest.messages.get(timeout=10)
        assert msg.topic == "klankkast/v1/yard1/n1/second"
    finally:
        node.close()
        ingest.close()
    # Anonymous clients are refused (allow_anonymous false).
    with pytest.raises(ConnectionRefusedError):
        MqttProbe(broker, "anon")


def test_production_queue_is_sized_for_a_day_of_ingest_outage() -> None:
    """100 nodes × (86,400 second frames + 1,440 minute frames) = 8,784,000 messages
    must fit in the ingest session's queue."""
    conf = (DEPLOY / "mosquitto.conf").read_text()
    values = {
        ln.split()[0]: ln.split()[1] for ln in conf.splitlines() if ln and not ln.startswith("#")
    }
    assert int(values["max_queued_messages"]) >= 100 * (86_400 + 1_440)
    assert values["allow_anonymous"] == "false"
    assert values["persistence"] == "true"
    assert int(values["autosave_interval"]) <= 60
    assert values["cafile"].startswith("/etc/mosquitto/certs/")


def test_acl_denies_a_node_publishing_under_another_node(mosquitto_acl: Any) -> None:
    """yard1-n1 publishing under yard1/n2 gets PUBACK 0x87 and the ingest, which
    subscribes to everything, receives nothing; its own topic goes through."""
    ingest = _probe(mosquitto_acl, "ingest")
    n1 = _probe(mosquitto_acl, "yard1-n1")
    try:
        assert ingest.subscribe("klankkast/v1/#") == [1]
        assert n1.publish("klankkast/v1/yard1/n2/second", b"forged") == NOT_AUTHORIZED
        assert n1.publish("klankkast/v1/yard2/n1/second", b"forged") == NOT_AUTHORIZED
        assert n1.publish("klankkast/v1/yard1/alerts", b"forged") == NOT_AUTHORIZED
        assert n1.publish("klankkast/v1/_rejected", b"forged") == NOT_AUTHORIZED
        assert ingest.drain(0.5) == []
        assert n1.publish("klankkast/v1/yard1/n1/second", b"own") in ACCEPTED
        got = ingest.drain(1.0)
        assert [(m.topic, m.payload) for m in got] == [("klankkast/v1/yard1/n1/second", b"own")]
    finally:
        n1.close()
        ingest.close()


def test_acl_lets_ingest_read_all_nodes_also_shared(mosquitto_acl: Any) -> None:
    """Every node's second/minute/status reaches the ingest, on a plain and on a
    shared subscription ($share/ingest/..., as the ingest's share_group uses)."""
    ingest = _probe(mosquitto_acl, "ingest")
    shared = _probe(mosquitto_acl, "ingest", client_id="t-ingest-shared")
    nodes = [_probe(mosquitto_acl, f"{s}-{n}") for s, n in ACL_NODES]
    try:
        assert ingest.subscribe("klankkast/v1/#") == [1]
        assert shared.subscribe("$share/ingest/klankkast/v1/+/+/+") == [1]
        expected = set()
        for (site, node), probe in zip(ACL_NODES, nodes, strict=True):
            for kind in ("second", "minute", "status"):
                topic = f"klankkast/v1/{site}/{node}/{kind}"
                assert probe.publish(topic, b"{}", retain=kind == "status") in ACCEPTED
                expected.add(topic)
        assert {m.topic for m in ingest.drain(1.5)} == expected
        assert {m.topic for m in shared.drain(0.5)} == expected
        # The ingest may report what it refused.
        assert ingest.publish("klankkast/v1/_rejected", b"{}") in ACCEPTED
        # ... but cannot impersonate a node.
        assert ingest.publish("klankkast/v1/yard1/n1/second", b"{}") == NOT_AUTHORIZED
    finally:
        for probe in (*nodes, shared, ingest):
            probe.close()


def test_acl_ack_topics_ingest_writes_each_node_reads_only_its_own(mosquitto_acl: Any) -> None:
    """The ingest may publish on every node's ack topic; yard1-n1 receives its own acks
    and not yard1-n2's (mosquitto 2.0 grants the SUBACK and enforces "read" on
    delivery); a node cannot write another node's ack topic, nor the ingest a frame."""
    ingest = _probe(mosquitto_acl, "ingest")
    n1 = _probe(mosquitto_acl, "yard1-n1")
    n2 = _probe(mosquitto_acl, "yard1-n2")
    try:
        assert ingest.subscribe("$share/ingest/klankkast/v1/+/+/#") == [1]
        assert n1.subscribe("klankkast/v1/yard1/n1/ack") == [1]
        n1.subscribe("klankkast/v1/yard1/n2/ack")
        n2.subscribe("klankkast/v1/yard1/n1/ack")
        for node in ("n1", "n2"):
            body = b'{"schema":1,"kind":"second","ranges":[[0,9]]}'
            assert ingest.publish(f"klankkast/v1/yard1/{node}/ack", body) in ACCEPTED
        got = n1.drain(1.0)
        assert [m.topic for m in got] == ["klankkast/v1/yard1/n1/ack"]
        assert n2.drain(0.3) == []
        assert n1.publish("klankkast/v1/yard1/n2/ack", b"{}") == NOT_AUTHORIZED
        assert ingest.publish("klankkast/v1/yard1/n1/second", b"{}") == NOT_AUTHORIZED
    finally:
        for probe in (n2, n1, ingest):
            probe.close()


def test_acl_alerts_and_dispatch(mosquitto_acl: Any) -> None:
    """alerts writes klankkast/v1/{site}/alerts (retained); dispatch reads it and
    may neither read levels nor write alerts."""
    alerts = _probe(mosquitto_acl, "alerts")
    dispatch = _probe(mosquitto_acl, "dispatch")
    n1 = _probe(mosquitto_acl, "yard1-n1")
    try:
        assert (
            alerts.publish("klankkast/v1/yard1/alerts", b'{"state":"episode"}', retain=True)
            in ACCEPTED
        )
        assert dispatch.subscribe("klankkast/v1/+/alerts") == [1]
        msg = dispatch.messages.get(timeout=10)
        assert (msg.topic, msg.retain) == ("klankkast/v1/yard1/alerts", True)
        # mosquitto 2.0 grants the SUBACK and enforces "read" on delivery instead.
        dispatch.subscribe("klankkast/v1/yard1/n1/#")
        assert n1.publish("klankkast/v1/yard1/n1/second", b"{}") in ACCEPTED
        assert dispatch.drain(0.5) == []
        assert dispatch.publish("klankkast/v1/yard1/alerts", b"{}") == NOT_AUTHORIZED
        assert alerts.publish("klankkast/v1/yard1/n1/second", b"{}") == NOT_AUTHORIZED
    finally:
        for probe in (n1, dispatch, alerts):
            probe.close()


def test_acl_refuses_wrong_password(mosquitto_acl: Any) -> None:
    with pytest.raises(ConnectionRefusedError) as err:
        MqttProbe(mosquitto_acl, "bad", username="yard1-n1", password="not-the-password")
    # mosquitto 2.0 answers 0x87 Not authorized; 0x86 would also be correct.
    assert err.value.args[0] in (BAD_USER_OR_PASSWORD, NOT_AUTHORIZED)


def _add_node(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KLANKKAST_MOSQUITTO_DIR=str(directory), KLANKKAST_NO_RELOAD="1")
    env["PATH"] = f"{Path(find_binary('mosquitto_passwd')).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", str(DEPLOY / "add-node.sh"), *args], capture_output=True, text=True, env=env
    )


def test_add_node_then_node_can_publish(mosquitto_acl: Any, tmp_path: Path) -> None:
    """A node added to the running broker's files by add-node.sh, after a reload
    (SIGHUP), may publish under its own topics and nothing else."""
    auth = Path(mosquitto_acl.password_dir).parent
    env_dir = tmp_path / "unused"
    env_dir.mkdir()
    env = dict(
        os.environ,
        KLANKKAST_PASSWORD_FILE=str(auth / "passwd"),
        KLANKKAST_ACL_FILE=str(auth / "acl"),
        KLANKKAST_NODE_SECRETS_DIR=str(tmp_path / "secrets"),
        KLANKKAST_NO_RELOAD="1",
    )
    env["PATH"] = f"{Path(find_binary('mosquitto_passwd')).parent}:{env.get('PATH', '')}"
    res = subprocess.run(
        ["bash", str(DEPLOY / "add-node.sh"), "yard9", "n7", "--host", "127.0.0.1"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    snippet = tomllib.loads(res.stdout)
    assert snippet["node"] == {"site": "yard9", "id": "n7"}
    assert snippet["mqtt"]["username"] == "yard9-n7"
    assert snippet["mqtt"]["url"] == "mqtts://127.0.0.1:8883"
    mosquitto_acl.reload()
    password = (tmp_path / "secrets" / "yard9-n7.password").read_text()
    ingest = _probe(mosquitto_acl, "ingest")
    node = None
    for _ in range(50):  # the reload is asynchronous
        try:
            node = MqttProbe(mosquitto_acl, "yard9-n7", username="yard9-n7", password=password)
            break
        except ConnectionRefusedError:
            import time

            time.sleep(0.1)
    assert node is not None, "new node refused after reload"
    try:
        assert ingest.subscribe("klankkast/v1/#") == [1]
        assert node.publish("klankkast/v1/yard9/n7/minute", b"{}") in ACCEPTED
        assert node.publish("klankkast/v1/yard1/n1/minute", b"{}") == NOT_AUTHORIZED
        assert [m.topic for m in ingest.drain(1.0)] == ["klankkast/v1/yard9/n7/minute"]
    finally:
        node.close()
        ingest.close()


def test_add_node_snippet_is_a_valid_node_config(tmp_path: Path) -> None:
    """The printed node.toml snippet passes the node's own config validation."""
    import shutil

    shutil.copyfile(DEPLOY / "acl", tmp_path / "acl")
    res = _add_node(tmp_path, "binnenhof", "n-3.a", "--host", "mqtt.example.nl", "--port", "8884")
    assert res.returncode == 0, res.stderr
    from klankkast.sensor.config import parse_config

    cfg = parse_config(tomllib.loads(res.stdout), base_dir=tmp_path)
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("mqtt.example.nl", 8884, True)
    assert cfg.mqtt.username == "binnenhof-n-3.a"
    acl = (tmp_path / "acl").read_text()
    assert (
        "user binnenhof-n-3.a\ntopic write klankkast/v1/binnenhof/n-3.a/#\n"
        "topic read klankkast/v1/binnenhof/n-3.a/ack\n"
    ) in acl
    secret = tmp_path / "nodes" / "binnenhof-n-3.a.password"
    assert len(secret.read_text()) == 32
    assert secret.stat().st_mode & 0o077 == 0
    assert "binnenhof-n-3.a:" in (tmp_path / "passwd").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["yard/1", "n1"], "site must match"),
        (["yard1", "n+1"], "node must match"),
        (["yard1", "#"], "node must match"),
        (["yard1"], "add-node.sh SITE NODE"),
        (["yard1", "n1", "--port", "99999"], "--port must be 1-65535"),
    ],
)
def test_add_node_rejects_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    import shutil

    shutil.copyfile(DEPLOY / "acl", tmp_path / "acl")
    res = _add_node(tmp_path, *args)
    assert res.returncode == 1
    assert message in res.stderr
    assert res.stdout == ""


def test_add_node_refuses_existing_user_unless_rotate(tmp_path: Path) -> None:
    import shutil

    shutil.copyfile(DEPLOY / "acl", tmp_path / "acl")
    assert _add_node(tmp_path, "yard1", "n1").returncode == 0
    first = (tmp_path / "nodes" / "yard1-n1.password").read_text()
    again = _add_node(tmp_path, "yard1", "n1")
    assert again.returncode == 1
    assert "--rotate" in again.stderr
    assert _add_node(tmp_path, "yard1", "n1", "--rotate").returncode == 0
    assert (tmp_path / "nodes" / "yard1-n1.password").read_text() != first
    # One ACL block, not two.
    assert (tmp_path / "acl").read_text().count("user yard1-n1\n") == 1


def test_add_node_refuses_user_name_collision(tmp_path: Path) -> None:
    """Site "a-b" node "c" and site "a" node "b-c" would share the user "a-b-c"."""
    import shutil

    shutil.copyfile(DEPLOY / "acl", tmp_path / "acl")
    assert _add_node(tmp_path, "a-b", "c").returncode == 0
    res = _add_node(tmp_path, "a", "b-c", "--rotate")
    assert res.returncode == 1
    assert "already taken" in res.stderr
