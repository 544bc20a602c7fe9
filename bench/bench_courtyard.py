"""Benchmark: the residents' courtyard page under 500 residents and 50 marks/s.

One run, one machine: a real InfluxDB (``deploy/local/services.py``) holding a week of
minute levels of a two-node courtyard, and the real ``klankkast-courtyard serve``
(uvicorn, one process) in front of it. The load comes from this process through a
small asyncio HTTP/1.1 keep-alive client (one connection per resident, so the
client's own cost stays small next to the server's).

Two phases with the same load shape, so that the page is compared with a **peer
measured in the same run**: ``GET /healthz`` of the same server (a bare plain-text
response: the cost of uvicorn + Starlette + the security middleware + this client
on this machine, without the page).

Load shape of each phase:

* **residents** (500), each on its own keep-alive connection, arrive spread over the
  first 10 s and then reload their page after a think time drawn uniformly from
  0-10 s (mean 5 s: ~100 page loads/s from 500 residents) until the phase ends;
* **marks** (50/s, open loop): every 20 ms another household posts "ik heb nu last"
  (its own invitation: each mark is written to InfluxDB, none is deduplicated), on a
  pool of 100 connections; latency counts from the scheduled moment, so a server
  that falls behind is charged for the queue.

After both phases a **burst** is measured separately: every resident requests the
page at the same instant (the worst case, e.g. a push message to all); its p50/p95 and
the time until the last answer are printed for information, not held to the target.

Prints p50/p95/max latency and errors per kind, requests/s, the server's CPU time and
the ratios page/peer. Targets (issue 19): p95 < 300 ms for the page and < 150 ms for a
mark, 0 errors.

Usage: ``.venv/bin/python bench/bench_courtyard.py [--residents 500] [--marks-per-s 50]
[--duration-s 60] [--quick]``. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from services import Influx, free_port  # noqa: E402

from klankkast.courtyard import tokens  # noqa: E402
from klankkast.courtyard.invitations import SqliteInvitations  # noqa: E402
from klankkast.influx import InfluxHTTP, line  # noqa: E402

DB = "klankkast"
SITE = "yard1"
MIN_MS = 60_000
#: a resident reloads after a think time uniform in [0, THINK_S) s (mean 5 s; --think-s)
THINK_S = 10.0


# -- a minimal HTTP/1.1 keep-alive client -------------------------------------------
class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.r, self.w = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, cookie: str = "", body: bytes = b"") -> int:
        """Send one request, read the whole response; return the status."""
        for attempt in (0, 1):
            if self.w is None:
                await self._open()
            assert self.r is not None and self.w is not None
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            if cookie:
                head += f"Cookie: {cookie}\r\n"
            if body:
                head += "Content-Type: application/x-www-form-urlencoded\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            try:
                self.w.write(head.encode() + body)
                await self.w.drain()
                status_line = await self.r.readline()
                if not status_line:
                    raise ConnectionError("closed")
                status = int(status_line.split()[1])
                length = 0
                close = False
                while True:
                    h = await self.r.readline()
                    if h in (b"\r\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    k = k.strip().lower()
                    if k == "content-length":
                        length = int(v)
                    elif k == "connection" and v.strip().lower() == "close":
                        close = True
                await self.r.readexactly(length)
                if close:
                    self.close()
                return status
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.w is not None:
            self.w.close()
        self.r = self.w = None


# -- set-up ---------------------------------------------------------------------------
def plant(influx: Influx, now_ms: int) -> int:
    """A week of minute levels of two nodes: 35 dB, evenings 19-22 h UTC at 55/50 dB."""
    c = InfluxHTTP(influx.url, DB)
    c.query_raw(f'CREATE DATABASE "{DB}"', db="")
    c.query_raw(f'CREATE RETENTION POLICY "forever" ON "{DB}" DURATION INF REPLICATION 1', db="")
    c.query_raw(
        f'CREATE RETENTION POLICY "experience" ON "{DB}" DURATION 365d REPLICATION 1', db=""
    )
    start = now_ms - now_ms % MIN_MS - 7 * 86_400_000
    lines = []
    for t in range(start, now_ms, MIN_MS):
        loud = 19 <= (t // 3_600_000) % 24 < 22
        for node, level in (("n1", 55.0 if loud else 35.0), ("n2", 50.0 if loud else 35.0)):
            lines.append(line("minute", {"site": SITE, "node": node},
                              {"LAeq": level, "LAeq_e": 10 ** (level / 10)}, t))  # fmt: skip
    for k in range(0, len(lines), 5000):
        c.write(lines[k : k + 5000], rp="forever")
    c.close()
    return len(lines)


def start_server(tmp: Path, influx: Influx, key: bytes) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (tmp / "key").write_bytes(key)
    cfg = tmp / "courtyard.toml"
    cfg.write_text(
        f'[courtyard]\nbase_url = "http://127.0.0.1:{port}"\nlisten_port = {port}\n'
        'secret_file = "key"\ndatabase = "courtyard.sqlite"\ncookie_secure = false\n'
        'cache_s = 5.0\nlog_level = "WARNING"\n'
        f'[courtyard.sites]\n{SITE} = "Binnenplaats"\n'
        f'[courtyard.influxdb]\nurl = "{influx.url}"\ndatabase = "{DB}"\n'
    )
    script = Path(sys.executable).with_name("klankkast-courtyard")
    cmd = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from klankkast.courtyard.cli import main; sys.exit(main())"
    ]  # fmt: skip
    proc = subprocess.Popen(
        [*cmd, "--config", str(cfg), "serve"],
        stdout=(tmp / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start:\n{(tmp / 'server.log').read_text()[-2000:]}")


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# -- load -----------------------------------------------------------------------------
async def phase(
    port: int, page_path: str, residents: list[str], markers: list[tuple[str, str]],
    marks_per_s: float, duration_s: float, seed: int, think_s: float,
) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    lat: dict[str, list[float]] = {"page": [], "mark": []}
    errors: dict[str, int] = {"page": 0, "mark": 0}
    codes: dict[str, dict[int, int]] = {"page": {}, "mark": {}}
    t_end = time.perf_counter() + duration_s

    async def resident(cookie: str) -> None:
        conn = Conn("127.0.0.1", port)
        # residents arrive spread over the first think time, not in one instant
        await asyncio.sleep(rng.uniform(0.0, think_s))
        try:
            while time.perf_counter() < t_end:
                t0 = time.perf_counter()
                try:
                    status = await conn.request("GET", page_path, cookie)
                except (OSError, ConnectionError, asyncio.IncompleteReadError):
                    status = 0
                lat["page"].append(time.perf_counter() - t0)
                codes["page"][status] = codes["page"].get(status, 0) + 1
                if status != 200:
                    errors["page"] += 1
                await asyncio.sleep(
                    min(rng.uniform(0.0, think_s), max(0.0, t_end - time.perf_counter()))
                )
        finally:
            conn.close()

    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(100):
        pool.put_nowait(Conn("127.0.0.1", port))

    async def one_mark(scheduled: float, cookie: str, body: bytes) -> None:
        conn = await pool.get()
        try:
            status = await conn.request("POST", f"/s/{SITE}/mark", cookie, body)
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            status = 0
        finally:
            pool.put_nowait(conn)
        lat["mark"].append(time.perf_counter() - scheduled)
        codes["mark"][status] = codes["mark"].get(status, 0) + 1
        if status != 200:
            errors["mark"] += 1

    async def marker() -> None:
        if not marks_per_s or not markers:
            return
        tasks = []
        t0 = time.perf_counter()
        k = 0
        while True:
            scheduled = t0 + k / marks_per_s
            if scheduled >= t_end or k >= len(markers):
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            cookie, body = markers[k]
            tasks.append(asyncio.create_task(one_mark(scheduled, cookie, body.encode())))
            k += 1
        await asyncio.gather(*tasks)

    started = time.perf_counter()
    await asyncio.gather(*(resident(c) for c in residents), marker())
    wall = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().close()
    return {"lat": lat, "errors": errors, "codes": codes, "wall_s": wall}


async def burst(port: int, residents: list[str]) -> tuple[list[float], int]:
    """Every resident requests the page at once on a fresh connection."""
    lat: list[float] = []
    errors = 0

    async def one(cookie: str) -> None:
        nonlocal errors
        conn = Conn("127.0.0.1", port)
        t0 = time.perf_counter()
        try:
            status = await conn.request("GET", f"/s/{SITE}", cookie)
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            status = 0
        finally:
            conn.close()
        lat.append(time.perf_counter() - t0)
        errors += status != 200

    await asyncio.gather(*(one(c) for c in residents))
    return lat, errors


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--residents", type=int, default=500)
    ap.add_argument("--marks-per-s", type=float, default=50.0)
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--peer-duration-s", type=float, default=None,
                    help="duration of the /healthz phase (default: a third of --duration-s)")  # fmt: skip
    ap.add_argument("--think-s", type=float, default=THINK_S,
                    help="upper end of a resident's uniform think time (default 10 s)")  # fmt: skip
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 60 residents thinking 0-1 s, 10 marks/s, 3 s")  # fmt: skip
    args = ap.parse_args(argv)
    if args.quick:
        args.residents, args.marks_per_s, args.duration_s, args.think_s = 60, 10.0, 3.0, 1.0

    peer_s = args.peer_duration_s or max(2.0, args.duration_s / 3)
    n_marks = int(args.marks_per_s * args.duration_s) + 10
    key = os.urandom(32).hex().encode()
    now_ms = int(time.time() * 1000)
    with tempfile.TemporaryDirectory(prefix="bench-courtyard-") as tmp_name:
        tmp = Path(tmp_name)
        influx = Influx.launch(tmp / "influx")
        proc = None
        try:
            points = plant(influx, now_ms)
            store = SqliteInvitations(tmp / "courtyard.sqlite")
            store.start()
            made = store.create(SITE, args.residents + n_marks, now_ms, 30)
            store.close()
            sessions = [tokens.session_value(key, inv.id, now_ms // 1000) for inv, _ in made]
            cookies = [f"kk_session={s}" for s in sessions]
            residents = cookies[: args.residents]
            markers = [
                (cookies[args.residents + k],
                 f"csrf={tokens.csrf_token(key, sessions[args.residents + k])}&kind=music&severity=3")
                for k in range(n_marks)
            ]  # fmt: skip
            proc, port = start_server(tmp, influx, key)
            # warm: the first read of the week from InfluxDB, the first render
            for _ in range(3):
                urllib.request.urlopen(
                    urllib.request.Request(f"http://127.0.0.1:{port}/s/{SITE}",
                                           headers={"Cookie": residents[0]}), timeout=30
                ).read()  # fmt: skip
            print(f"set-up: InfluxDB with {points} minute points (7 days, 2 nodes); "
                  f"{len(made)} invitations; server pid {proc.pid}; {os.cpu_count()} CPUs", flush=True)  # fmt: skip
            cpu0 = cpu_s(proc.pid)
            peer = asyncio.run(phase(port, "/healthz", residents, [], 0.0, peer_s, 1, args.think_s))
            cpu1 = cpu_s(proc.pid)
            real = asyncio.run(phase(port, f"/s/{SITE}", residents, markers,
                                     args.marks_per_s, args.duration_s, 2, args.think_s))  # fmt: skip
            cpu2 = cpu_s(proc.pid)
            burst_lat, burst_errors = asyncio.run(burst(port, residents))
            c = InfluxHTTP(influx.url, DB)
            written = c.query('SELECT count("mark") FROM "experience"."experience"')
            c.close()
            n_written = int(written[0]["count"]) if written else 0
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=15)
            influx.close()
    page, mark, hz = real["lat"]["page"], real["lat"]["mark"], peer["lat"]["page"]
    rows = [
        ("peer GET /healthz", hz, peer["errors"]["page"], peer["wall_s"]),
        (f"GET /s/{SITE} (page)", page, real["errors"]["page"], real["wall_s"]),
        ("POST mark", mark, real["errors"]["mark"], real["wall_s"]),
    ]
    print(f"{'':24} {'n':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'errors':>7}")
    for name, lat, err, wall in rows:
        print(f"{name:24} {len(lat):7d} {len(lat) / wall:7.1f} {pct(lat, 50):8.1f} "
              f"{pct(lat, 95):8.1f} {max(lat, default=0) * 1000:8.1f} {err:7d}")  # fmt: skip
    print(f"marks written to InfluxDB: {n_written} of {len(mark)} posted")
    ratio50 = pct(page, 50) / pct(hz, 50)
    ratio95 = pct(page, 95) / pct(hz, 95)
    print(f"ratio page/peer: p50 {ratio50:.2f}, p95 {ratio95:.2f}")
    print(f"server CPU: peer {1000 * (cpu1 - cpu0) / max(1, len(hz)):.2f} ms/request, "
          f"page+marks {1000 * (cpu2 - cpu1) / max(1, len(page) + len(mark)):.2f} ms/request "
          f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"burst of {len(burst_lat)} simultaneous page loads (information): p50 {pct(burst_lat, 50):.0f} ms, "
          f"p95 {pct(burst_lat, 95):.0f} ms, last {max(burst_lat, default=0) * 1000:.0f} ms, {burst_errors} errors")  # fmt: skip
    print("targets: page p95 < 300 ms, mark p95 < 150 ms, 0 errors")
    errors = real["errors"]["page"] + real["errors"]["mark"] + peer["errors"]["page"]
    print(json.dumps({
        "residents": args.residents, "marks_per_s": args.marks_per_s, "duration_s": args.duration_s,
        "page_n": len(page), "page_p50_ms": round(pct(page, 50), 1), "page_p95_ms": round(pct(page, 95), 1),
        "mark_n": len(mark), "mark_p50_ms": round(pct(mark, 50), 1), "mark_p95_ms": round(pct(mark, 95), 1),
        "peer_n": len(hz), "peer_p50_ms": round(pct(hz, 50), 1), "peer_p95_ms": round(pct(hz, 95), 1),
        "ratio_p95": round(ratio95, 2), "errors": errors, "marks_written": n_written,
        "burst_p95_ms": round(pct(burst_lat, 95), 1), "burst_errors": burst_errors,
        "codes": {k: {str(s): n for s, n in v.items()} for k, v in real["codes"].items()},
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
