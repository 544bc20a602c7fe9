"""The real ``klankkast-courtyard`` over HTTP with a real InfluxDB: InfluxDB down,
``check``, and bad input on the wire (each a clear page, the right status, nothing
half-written)."""

from __future__ import annotations

import re
import warnings

import httpx
from support.courtyard_world import marks_of, plant, setup_influx, start_server

warnings.filterwarnings("ignore", category=DeprecationWarning, module="httpx")


def _open(client: httpx.Client, base: str, link: str) -> str:
    assert client.get(link).status_code == 200
    r = client.get(f"{base}/s/yard1")
    assert r.status_code == 200
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', r.text)
    assert m
    return m.group(1)


def test_influxdb_down_gives_a_clear_503_and_writes_nothing(influxdb, tmp_path) -> None:
    setup_influx(influxdb, users=False)
    plant(influxdb)
    server = start_server(tmp_path, influxdb, {}, invitations=2, cache_s=0.0)
    try:
        inv_id, link = server.take()
        with httpx.Client() as client:
            csrf = _open(client, server.base, link)
            influxdb.stop()
            r = client.get(f"{server.base}/s/yard1")
            assert r.status_code == 503 and 'data-error="storage"' in r.text
            assert "Er is niets opgeslagen" in r.text
            r = client.post(f"{server.base}/s/yard1/mark", data={"csrf": csrf})
            assert r.status_code == 503 and 'data-error="storage"' in r.text
            influxdb.start()
            assert marks_of(influxdb) == []
            # the household was not charged its 10 minutes: the next mark counts
            r = client.post(f"{server.base}/s/yard1/mark", data={"csrf": csrf})
            assert r.status_code == 200 and 'data-counted="yes"' in r.text
            assert len(marks_of(influxdb, server.household(inv_id))) == 1
        assert server.proc is not None and server.proc.poll() is None  # it kept running
    finally:
        server.stop()


def test_bad_input_on_the_wire(influxdb, tmp_path) -> None:
    setup_influx(influxdb, users=False)
    plant(influxdb)
    server = start_server(tmp_path, influxdb, {}, invitations=2)
    try:
        _, link = server.take()
        with httpx.Client() as client:
            r = client.get(f"{server.base}/i/{'B' * 43}")
            assert r.status_code == 404 and 'data-error="unknown"' in r.text
            csrf = _open(client, server.base, link)
            r = client.post(
                f"{server.base}/s/yard1/mark",
                content=b"csrf=" + csrf.encode() + b"&kind=" + b"x" * 1_000_000,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert r.status_code == 413 and 'data-error="too_large"' in r.text
            r = client.post(f"{server.base}/s/yard1/mark", data={"kind": "music"})
            assert r.status_code == 403 and 'data-error="csrf"' in r.text
            r = client.post(f"{server.base}/s/yard1/mark", data={"csrf": csrf, "severity": "0"})
            assert r.status_code == 400 and 'data-error="bad_form"' in r.text
            r = client.get(f"{server.base}/s/elsewhere")
            assert r.status_code == 404 and 'data-error="unknown_site"' in r.text
            r = client.get(f"{server.base}/s/yard1/mark")
            assert r.status_code == 405
        assert marks_of(influxdb) == []
    finally:
        server.stop()


def test_check(influxdb, tmp_path) -> None:
    setup_influx(influxdb, users=False)
    server = start_server(tmp_path, influxdb, {}, invitations=1)
    server.stop()
    res = server.cli("check")
    assert res.returncode == 0, res.stderr
    assert "ok (2 site(s), 2 invitation(s))" in res.stdout
    influxdb.query('DROP RETENTION POLICY "experience" ON "klankkast"')
    res = server.cli("check")
    assert res.returncode == 3
    assert "retention policy 'experience'" in res.stderr
    influxdb.stop()
    res = server.cli("check")
    assert res.returncode == 3 and "unreachable" in res.stderr


def test_serve_tells_systemd_when_it_is_ready(influxdb, tmp_path) -> None:
    """Type=notify: READY=1 on $NOTIFY_SOCKET once uvicorn listens."""
    import socket

    setup_influx(influxdb, users=False)
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    try:
        server = start_server(
            tmp_path, influxdb, {}, invitations=1, extra_env={"NOTIFY_SOCKET": str(path)}
        )
        try:
            assert sock.recv(64) == b"READY=1"
        finally:
            server.stop()
    finally:
        sock.close()


def test_marks_of_two_households_in_the_same_millisecond_are_two_points(influxdb, tmp_path) -> None:
    """``serve --now`` freezes the clock: every mark has the same time. A point is
    identified by measurement, tags and time, so the household must be a tag or the
    second mark would overwrite the first (InfluxDB line protocol, duplicate points)."""
    setup_influx(influxdb, users=False)
    plant(influxdb)
    server = start_server(tmp_path, influxdb, {}, invitations=3)
    try:
        ids = []
        for _ in range(3):
            inv_id, link = server.take()
            ids.append(inv_id)
            with httpx.Client() as client:
                csrf = _open(client, server.base, link)
                r = client.post(f"{server.base}/s/yard1/mark", data={"csrf": csrf, "kind": "music"})
                assert 'data-counted="yes"' in r.text
        rows = marks_of(influxdb)
        assert sorted(r["household"] for r in rows) == sorted(server.household(i) for i in ids)
        assert len({r["time"] for r in rows}) == 1  # the same millisecond indeed
        assert all(r["mark"] == 1 and r["kind"] == "music" for r in rows)
    finally:
        server.stop()
