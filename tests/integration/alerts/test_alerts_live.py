"""klankkast-alerts end to end: simulate -> real Mosquitto -> klankkast-alerts ->
MQTT (retained), webhooks on loopback, InfluxDB measurement ``alert``.

The streams come from ``klankkast-sensor simulate --rate max --episode ... --start ...``
(two virtual nodes of site yard1). The rules file used here sets every absolute
limit to 55 dB(A) and disables emergence, so the simulator's background (35-42
dB(A)) can never raise an episode whatever the time of day the test runs, while the
planted episodes (70 dB(A)) always do.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

ONSET_S = 300
EPISODE_S = 1200
CONFIRM_S = 300
UPDATE_S = 120


class Receiver:
    """A webhook receiver on loopback: records (path, JSON body) of every POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Watcher:
    """Subscribes to ``klankkast/v1/+/alerts`` and keeps every alert JSON it sees."""

    def __init__(self, host: str, port: int, name: str) -> None:
        self.messages: list[tuple[dict[str, Any], bool]] = []
        self.ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        c.on_connect = lambda cl, *_: cl.subscribe("klankkast/v1/+/alerts", qos=1)
        c.on_subscribe = lambda *_: self.ready.set()
        c.on_message = lambda _c, _u, m: self.messages.append((json.loads(m.payload), m.retain))
        c.connect(host, port)
        c.loop_start()
        self.client = c
        assert self.ready.wait(10), "watcher could not subscribe"

    def live(self) -> list[dict[str, Any]]:
        return [m for m, retained in self.messages if not retained]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def write_configs(tmp: Path, broker: Any, influx_url: str, hooks: list[dict[str, str]]) -> Path:
    (tmp / "rules.toml").write_text(
        # plumbing, not detection: a fixed 55 dB threshold on the total level, which
        # needs no residual (the default specific-level rule waits for ~7.5 min of
        # 1-s data to estimate one; the detection rules have their own unit tests)
        '[absolute]\nlevel = "total"\nday_db = 55.0\nevening_db = 55.0\nnight_db = 55.0\n'
        "[emergence]\nenabled = false\n"
    )
    hook_lines = ", ".join(f'{{ url = "{h["url"]}", format = "{h["format"]}" }}' for h in hooks)
    central = tmp / "central.toml"
    central.write_text(
        f'[mqtt]\nurl = "{broker.url}"\n'
        f'[influxdb]\nurl = "{influx_url}"\ndatabase = "alerts_it"\ntimeout_s = 5.0\n'
        "[alerts]\n"
        f"confirm_s = {CONFIRM_S}\nupdate_s = {UPDATE_S}\nmin_gap_s = 900\nhysteresis_db = 3.0\n"
        'rules = "rules.toml"\nclient_id = "alerts-it"\nlog_level = "INFO"\n'
        f"webhooks = [{hook_lines}]\n"
    )
    (tmp / "node.toml").write_text(
        '[node]\nid = "n"\nsite = "yard1"\n'
        '[audio]\ndevice = "none"\n'
        "[calibration]\noffset_db = 100.0\n"
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "sim-{tmp.name[-20:]}"\n'
        f'[outbox]\npath = "{tmp / "outbox.sqlite"}"\n'
    )
    return central


class AlertsProcess:
    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [_bin("klankkast-alerts"), "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


def simulate(tmp: Path, start: dt.datetime, duration_s: int, episodes: list[str]) -> None:
    cmd = [
        _bin("klankkast-sensor"), "simulate", "--config", str(tmp / "node.toml"),
        "--nodes", "2", "--duration", str(duration_s), "--rate", "max",
        "--start", start.isoformat(), "--quiet",
    ]  # fmt: skip
    for e in episodes:
        cmd += ["--episode", e]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture
def stack(mosquitto: Any, influxdb: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    rx = Receiver()
    cfg = write_configs(
        tmp_path,
        mosquitto,
        influxdb.url,
        [
            {"url": rx.url + "/json", "format": "json"},
            {"url": rx.url + "/slack", "format": "slack"},
        ],
    )
    watcher = Watcher(mosquitto.host, mosquitto.port, "watch-" + tmp_path.name[-20:])
    alerts = AlertsProcess(cfg, tmp_path / "alerts.log")
    try:
        wait_for(lambda: "MQTT connected" in alerts.log(), 30, "klankkast-alerts to connect")
        yield {"rx": rx, "watcher": watcher, "alerts": alerts, "tmp": tmp_path, "broker": mosquitto}
    finally:
        rc = alerts.stop()
        watcher.close()
        rx.close()
    assert rc == 0, alerts.log()[-3000:]


def _stream_start(offset_s: float) -> dt.datetime:
    """A whole second ``offset_s`` from now (UTC)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now + dt.timedelta(seconds=offset_s)


def test_planted_episode_one_start_updates_one_end_webhooks_and_influx(
    stack: dict[str, Any], influxdb: Any
) -> None:
    """20 min at 70 dB(A) from ONSET_S: exactly one start, within confirm_s of the onset
    (stream time), updates every UPDATE_S, one end; both webhooks get every message;
    the retained state is the end; InfluxDB holds one ``alert`` point per message.

    The stream starts a minute before now and runs into the future (``--rate max``),
    so no alert is late.
    """
    start = _stream_start(-60)
    t0 = int(start.timestamp() * 1000)
    total = ONSET_S + EPISODE_S + 720
    simulate(stack["tmp"], start, total, [f"{ONSET_S}:{EPISODE_S}:70"])
    w: Watcher = stack["watcher"]
    wait_for(lambda: any(m["state"] == "end" for m in w.live()), 60, "the end alert")
    msgs = w.live()
    (stack["tmp"] / "alerts.json").write_text(json.dumps({"t0": t0, "msgs": msgs}, indent=1))
    states = [m["state"] for m in msgs]
    assert states.count("start") == 1 and states.count("end") == 1, states
    assert states[0] == "start" and states[-1] == "end"
    start_msg, end_msg = msgs[0], msgs[-1]
    onset_ms = t0 + ONSET_S * 1000
    assert abs(start_msg["started"] - onset_ms) <= 1000
    assert 0 < start_msg["t"] - start_msg["started"] <= CONFIRM_S * 1000
    assert abs(end_msg["ended"] - (onset_ms + EPISODE_S * 1000)) <= 1000, (t0, msgs)
    ups = [m for m in msgs if m["state"] == "update"]
    assert len(ups) >= (EPISODE_S - CONFIRM_S) // UPDATE_S - 1
    ts = [m["t"] for m in msgs[:-1]]
    assert all(b - a == UPDATE_S * 1000 for a, b in itertools.pairwise(ts))
    for m in msgs:
        assert m["site"] == "yard1" and m["late"] is False
        assert m["nodes"] == ["n-001", "n-002"]
        # two co-located nodes at 70 +- 0.3 dB(A), energy mean: 70.0 dB(A) over the episode
        assert 69.5 < m["LAeq"] < 70.5
        assert m["bass"] is not None and m["bass"] > 0
        assert m["LAFmax"] >= m["LAeq"] - 3.1
    # webhooks: every message, JSON and Slack-style text
    rx: Receiver = stack["rx"]
    wait_for(lambda: len(rx.posts) >= 2 * len(msgs), 30, "webhook posts")
    json_posts = [b for p, b in rx.posts if p == "/json"]
    slack_posts = [b for p, b in rx.posts if p == "/slack"]
    assert [b["state"] for b in json_posts] == states
    assert len(slack_posts) == len(msgs) and all("yard1" in b["text"] for b in slack_posts)
    # the retained state is the last message
    late_watcher = Watcher(stack["broker"].host, stack["broker"].port, "late-watcher")
    try:
        wait_for(lambda: bool(late_watcher.messages), 10, "the retained alert")
        retained, flag = late_watcher.messages[0]
        assert flag and retained == end_msg
    finally:
        late_watcher.close()

    def n_points() -> int:
        rows = influxdb.rows('SELECT count("LAeq") FROM "forever"."alert"', db="alerts_it")
        return int(rows[0]["count"]) if rows else 0

    wait_for(lambda: n_points() == len(msgs), 30, "alert points in InfluxDB")


def test_flapping_does_not_flood_and_backlog_is_late_without_webhooks(
    stack: dict[str, Any],
) -> None:
    """Part 1, live: 90 s at 70 dB(A) every 4 min for 24 min, a level that keeps crossing
    the limit; the rules' gap merge and the alert's hysteresis make it one alert, not a
    start/end pair per burst.

    Part 2, backlog: the same nodes publish a 20-min episode from 3 h ago (a backlog
    after an outage, behind the site's current stream): its alerts are on MQTT,
    marked late and not retained, and no webhook is called.
    """
    w: Watcher = stack["watcher"]
    rx: Receiver = stack["rx"]
    start = _stream_start(-30)
    bursts = [f"{120 + k * 240}:90:70" for k in range(6)]
    simulate(stack["tmp"], start, 120 + 6 * 240 + 720, bursts)
    wait_for(lambda: any(m["state"] == "end" for m in w.live()), 60, "the end alert")
    live = w.live()
    states = [m["state"] for m in live]
    assert states.count("start") == 1 and states.count("end") == 1, states
    assert all(not m["late"] for m in live)
    wait_for(lambda: len(rx.posts) >= 2 * len(live), 30, "webhook posts")
    posts_before = len(rx.posts)

    old = _stream_start(-3 * 3600)
    simulate(stack["tmp"], old, ONSET_S + EPISODE_S + 720, [f"{ONSET_S}:{EPISODE_S}:70"])
    wait_for(lambda: sum(m["state"] == "end" for m in w.live()) >= 2, 60, "the late end alert")
    backlog = w.live()[len(live) :]
    assert [m["state"] for m in backlog].count("start") == 1
    assert backlog and all(m["late"] is True for m in backlog)
    assert all(m["started"] < int(old.timestamp() * 1000) + 3_600_000 for m in backlog)
    retained = [m for m, flag in w.messages if flag]
    assert all(not m["late"] for m in retained)
    time.sleep(1.0)  # give a (wrong) webhook post the chance to arrive
    assert len(rx.posts) == posts_before


def test_alerts_work_under_the_deployed_acl(mosquitto_acl: Any, tmp_path: Path) -> None:
    """With deploy/mosquitto's ACL: user ``alerts`` reads node frames and writes the
    retained ``klankkast/v1/yard1/alerts``, which user ``dispatch`` can read.

    Node yard1-n1 publishes 10 min of frames (its own credentials) with 70 dB(A) from
    60 s to 460 s; confirm_s = 60, so a start alert follows a minute after onset, and
    at the stream's end the retained state is that episode (the rules would end it
    only after their window and gap merge, beyond this stream). Then the node's
    retained status goes ``offline``: with no data the alert ends (hold_s = 2 s).
    """
    from klankkast.sensor import wire
    from klankkast.sensor.simulate import Episode, SyntheticNode

    user, _pw, pw_file = mosquitto_acl.credentials("alerts")
    cfg = tmp_path / "central.toml"
    cfg.write_text(
        f'[mqtt]\nurl = "{mosquitto_acl.url}"\nusername = "{user}"\npassword_file = "{pw_file}"\n'
        '[alerts]\nconfirm_s = 60\nupdate_s = 60\ninflux = false\nclient_id = "alerts-acl"\n'
        'hold_s = 2.0\nrules = "rules.toml"\n'
    )
    (tmp_path / "rules.toml").write_text(
        # plumbing, not detection: a fixed 55 dB threshold on the total level, which
        # needs no residual (the default specific-level rule waits for ~7.5 min of
        # 1-s data to estimate one; the detection rules have their own unit tests)
        '[absolute]\nlevel = "total"\nday_db = 55.0\nevening_db = 55.0\nnight_db = 55.0\n'
        "[emergence]\nenabled = false\n"
    )
    proc = AlertsProcess(cfg, tmp_path / "alerts.log")
    try:
        wait_for(lambda: "MQTT connected" in proc.log(), 30, "klankkast-alerts to connect")
        node_user, node_pw, _ = mosquitto_acl.credentials("yard1-n1")
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="yard1-n1", protocol=mqtt.MQTTv5)
        pub.username_pw_set(node_user, node_pw)
        pub.max_inflight_messages_set(1000)
        pub.connect(mosquitto_acl.host, mosquitto_acl.port)
        pub.loop_start()
        node = SyntheticNode("yard1", "n1", episodes=[Episode(60, 400, 70.0)], seed=3)
        t0 = (time.time_ns() // 1_000_000 // 1000 - 30) * 1000
        infos = []
        for s in range(600):
            payload = node.frame(t0 + s * 1000, s) | {"seq": s}
            infos.append(
                pub.publish(
                    wire.topic("yard1", "n1", "second"), wire.encode("second", payload), qos=1
                )
            )
        for info in infos:
            info.wait_for_publish(30)
        d_user, d_pw, _ = mosquitto_acl.credentials("dispatch")
        got: list[dict[str, Any]] = []
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dispatch-t", protocol=mqtt.MQTTv5)
        sub.username_pw_set(d_user, d_pw)
        sub.on_connect = lambda c, *_: c.subscribe("klankkast/v1/+/alerts", qos=1)
        sub.on_message = lambda _c, _u, m: got.append(json.loads(m.payload))
        sub.connect(mosquitto_acl.host, mosquitto_acl.port)
        sub.loop_start()
        try:
            # the retained current state: the episode is still going on at the stream's end
            wait_for(lambda: bool(got), 30, "the retained alert")
            first = got[0]
            assert first["state"] in ("start", "update")
            assert first["site"] == "yard1" and first["nodes"] == ["n1"]
            assert abs(first["started"] - (t0 + 60_000)) <= 1000
            status = {"site": "yard1", "node": "n1", "t": t0 + 600_000, "state": "offline",
                      "version": "test", "uptime_s": 600.0}  # fmt: skip
            pub.publish(wire.topic("yard1", "n1", "status"), wire.encode("status", status),
                        qos=1, retain=True).wait_for_publish(10)  # fmt: skip
            wait_for(lambda: got[-1]["state"] == "end", 20, "the end alert after offline")
            assert got[-1]["ended"] == t0 + 460_000
        finally:
            sub.disconnect()
            sub.loop_stop()
            pub.disconnect()
            pub.loop_stop()
        assert "not authorised" not in proc.log().lower()
    finally:
        assert proc.stop() == 0, proc.log()[-3000:]
