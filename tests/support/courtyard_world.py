"""A courtyard world for the integration tests: real InfluxDB (auth on, a read-only and
a write-only user), planted levels, episode, alert, complaint, visit and plan, and the
real ``klankkast-courtyard`` program (invite through the CLI, then ``serve``).

The clock is frozen with ``serve --now``: Thursday 11 June 2026, 21:30 Europe/Amsterdam
(evening; limit 45 dB(A)). What the page must say follows from the planted levels:

* yard1 has two nodes. From 21:05 node n1 reads 60 dB and n2 54 dB: the courtyard's
  level is their energy MEAN, 10·log10((10^6 + 10^5.4)/2) = 57.96 dB -> "58 dB(A)"
  (the energy sum would read 61, the arithmetic mean 57). Before that both read 35.
* The alert of that episode started at 21:10 (update at 21:29): "alerted at 21:10".
* yard2 has one node at 40 dB.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from klankkast.courtyard import tokens
from klankkast.influx import InfluxHTTP, line
from support.stack import free_port

AMS = ZoneInfo("Europe/Amsterdam")
NOW_ISO = "2026-06-11T21:30:00+02:00"
NOW_MS = int(dt.datetime.fromisoformat(NOW_ISO).timestamp() * 1000)
MIN = 60_000


def local_ms(d: int, h: int, m: int) -> int:
    return int(dt.datetime(2026, 6, d, h, m, tzinfo=AMS).timestamp() * 1000)


EPISODE_START_MS = local_ms(11, 21, 5)
ALERT_MS = local_ms(11, 21, 10)
DB = "klankkast"


def courtyard_command() -> list[str]:
    script = Path(sys.executable).with_name("klankkast-courtyard")
    if script.exists():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from klankkast.courtyard.cli import main; sys.exit(main())",
    ]


def admin_client(influx: object) -> InfluxHTTP:
    return InfluxHTTP(
        influx.url, DB,  # type: ignore[attr-defined]
        username=getattr(influx, "username", None), password=getattr(influx, "password", None),
    )  # fmt: skip


def setup_influx(influx: object, *, users: bool) -> dict[str, str]:
    """Database, retention policies (as setup.sh makes them) and, with auth, the users."""
    c = admin_client(influx)
    c.query_raw(f'CREATE DATABASE "{DB}"', db="")
    c.query_raw(
        f'CREATE RETENTION POLICY "raw" ON "{DB}" DURATION 30d REPLICATION 1 DEFAULT', db=""
    )
    c.query_raw(f'CREATE RETENTION POLICY "forever" ON "{DB}" DURATION INF REPLICATION 1', db="")
    c.query_raw(
        f'CREATE RETENTION POLICY "experience" ON "{DB}" DURATION 365d REPLICATION 1', db=""
    )
    pw: dict[str, str] = {}
    if users:
        for user, grant in (("courtyard_read", "READ"), ("courtyard_write", "WRITE")):
            pw[user] = secrets.token_urlsafe(12)
            c.query_raw(f"CREATE USER \"{user}\" WITH PASSWORD '{pw[user]}'", db="")
            c.query_raw(f'GRANT {grant} ON "{DB}" TO "{user}"', db="")
    c.close()
    return pw


def plant(influx: object) -> None:
    """Levels of the last 25 hours and the municipality's doings, through klankkast.influx."""
    lines = []
    start = NOW_MS - 25 * 3_600_000
    for t in range(start, NOW_MS, MIN):
        loud = t >= EPISODE_START_MS
        for node, level in (("n1", 60.0 if loud else 35.0), ("n2", 54.0 if loud else 35.0)):
            lines.append(line("minute", {"site": "yard1", "node": node},
                              {"LAeq": level, "LAeq_e": 10 ** (level / 10)}, t))  # fmt: skip
        lines.append(line("minute", {"site": "yard2", "node": "n1"},
                          {"LAeq": 40.0, "LAeq_e": 1e4}, t))  # fmt: skip
    c = admin_client(influx)
    for k in range(0, len(lines), 5000):
        c.write(lines[k : k + 5000], rp="forever")
    c.write(
        [
            line(
                "episode",
                {"site": "yard1", "rule": "absolute", "period": "evening"},
                {"duration_s": 1500.0, "end": NOW_MS, "LAeq": 57.96},
                EPISODE_START_MS,
            ),
            line(
                "alert",
                {"site": "yard1", "state": "start"},
                {"started": EPISODE_START_MS},
                ALERT_MS,
            ),
            line(
                "alert",
                {"site": "yard1", "state": "update"},
                {"started": EPISODE_START_MS},
                local_ms(11, 21, 29),
            ),
            line(
                "complaint",
                {"site": "yard1", "id": "c1", "category": "music", "source": "app"},
                {"received": local_ms(11, 21, 20)},
                local_ms(11, 21, 15),
            ),
            line(
                "visit",
                {"site": "yard1", "id": "v1", "outcome": "nuisance"},
                {"left": local_ms(10, 23, 55)},
                local_ms(10, 23, 40),
            ),
        ],
        rp="forever",
    )
    c.close()


@dataclass
class Server:
    """The real program, its config and its invitation links."""

    base: str
    cfg: Path
    key: bytes
    links: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def take(self, site: str = "yard1") -> tuple[str, str]:
        """An unused invitation ``(id, link)`` of ``site``."""
        return self.links[site].pop()

    def household(self, invitation_id: str) -> str:
        return tokens.household_hash(self.key, invitation_id)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*courtyard_command(), "--config", str(self.cfg), *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


def start_server(
    tmp: Path, influx: object, passwords: dict[str, str], *, invitations: int = 12,
    cache_s: float = 5.0, extra_env: dict[str, str] | None = None,
) -> Server:  # fmt: skip
    """Write the config, make invitations with ``invite``, start ``serve`` and wait."""
    port = free_port()
    key = secrets.token_hex(32).encode()
    (tmp / "key").write_bytes(key)
    (tmp / "plan.json").write_text(
        '{"windows": [{"site": "yard1", "weekday_iso": 3, "start": "23:00", "end": "00:30"}]}'
    )
    influx_lines = [f'url = "{influx.url}"', f'database = "{DB}"']  # type: ignore[attr-defined]
    for user, key_name, file_key in (
        ("courtyard_read", "username", "password_file"),
        ("courtyard_write", "write_username", "write_password_file"),
    ):
        if user in passwords:
            (tmp / f"{user}.password").write_text(passwords[user] + "\n")
            influx_lines += [f'{key_name} = "{user}"', f'{file_key} = "{user}.password"']
    cfg = tmp / "courtyard.toml"
    cfg.write_text(
        "[courtyard]\n"
        f'base_url = "http://127.0.0.1:{port}"\nlisten_port = {port}\n'
        'secret_file = "key"\ndatabase = "courtyard.sqlite"\nplan = "plan.json"\n'
        f'cookie_secure = false\ncache_s = {cache_s}\nlog_level = "INFO"\n'
        '[courtyard.sites]\nyard1 = "Binnenplaats Noord"\nyard2 = "Hofje Zuid"\n'
        "[courtyard.influxdb]\n" + "\n".join(influx_lines) + "\n"
    )
    server = Server(f"http://127.0.0.1:{port}", cfg, key)
    for site in ("yard1", "yard2"):
        out = tmp / f"letters-{site}"
        res = server.cli("invite", "--site", site, "--count", str(invitations), "--out", str(out))
        assert res.returncode == 0, res.stderr
        server.links[site] = []
        for letter in sorted(out.glob("letter-*.html")):
            inv_id = letter.stem.removeprefix("letter-")
            m = re.search(r'class="link">(http[^<]+)<', letter.read_text())
            assert m, letter
            server.links[site].append((inv_id, m.group(1)))
    server.log = tmp / "server.log"
    env = {**os.environ, **(extra_env or {})}
    with server.log.open("wb") as log:
        server.proc = subprocess.Popen(
            [*courtyard_command(), "--config", str(cfg), "serve", "--now", NOW_ISO],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(server.base + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return server
        except (OSError, urllib.error.URLError):
            pass
        if server.proc.poll() is not None:
            break
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"klankkast-courtyard did not start:\n{server.log_text()[-3000:]}")


def marks_of(influx: object, household: str | None = None) -> list[dict[str, object]]:
    """The ``experience`` points (as the admin sees them)."""
    c = admin_client(influx)
    where = f" WHERE \"household\" = '{household}'" if household else ""
    rows = c.query(f'SELECT * FROM "experience"."experience"{where}')
    c.close()
    return rows
