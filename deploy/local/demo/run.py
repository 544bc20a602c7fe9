"""The demo's run, step by step: servers, central programs, the scenario's data through
the node's code and the wire, complaints and visits, residents, analysis, summary.

Each step is a function of the :class:`Stage` it runs on (the options, the directories,
the servers, the period and its truth); :func:`run` calls them in order.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services import Broker, Influx

from ._common import AUDIO_FS_HZ, AUDIO_OFFSET_DB, DB, NODE_ID, Options, say
from .analyze import analyze
from .audio import start_audio
from .children import Children, has_alerts, run_step, tool
from .files import central_config, node_config, write_csv, write_truth
from .frames import WirePublisher, minute_payloads, status_payloads
from .residents_page import residents_step, serve_residents
from .scenario import (
    COMPLAINT_COLUMNS,
    HOUR_MS,
    VISIT_COLUMNS,
    Timeline,
    TrueEpisode,
    audio_party,
    iso_local,
    make_reports,
    make_timeline,
    plan_episodes,
)
from .summary import build_summary, grafana_hint, print_summary, read_json
from .waits import wait_counts, wait_ingest_ready, wait_stable

__all__ = ["Stage", "run"]


@dataclass
class Stage:
    """What the steps share: the options, the directories and the running servers."""

    opts: Options
    children: Children
    out: Path
    work: Path  # temporary: the servers' data, outboxes, audio
    broker: Broker
    influx: Influx
    central: Path = field(init=False)
    tl: Timeline = field(init=False)
    episodes: list[TrueEpisode] = field(init=False)

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def sites(self) -> list[str]:
        return [s for s, _d, _n in self.opts.sites]

    @property
    def n_nodes(self) -> int:
        return sum(n for *_x, n in self.opts.sites)


def run(opts: Options, children: Children) -> int:
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="klankkast-demo-"))
    say(f"output in {out}")

    # 1. services, 2. central programs
    st = Stage(opts, children, out, work, *start_servers(work, children))
    st.central = start_central(st)

    # 3. the scenario, and its data through the node's code and over the wire
    plan_truth(st)
    audio = None
    if opts.audio_s > 0:
        audio = start_audio(
            opts, st.tl, Path(tempfile.mkdtemp(prefix="audio-", dir=work)),
            audio_node_config(st), st.logs / "simulate-audio.log", children,
        )  # fmt: skip
    simulate_seconds(st)
    minutes = publish_minutes(st)
    audio_seconds, n_wavs = 0, 0
    if audio is not None:
        pool, job = audio
        audio_seconds, n_wavs = job.result()
        pool.shutdown()
        children.pools.remove(pool)
    got = wait_ingested(st, minutes, audio_seconds, n_wavs)

    # 4. complaints and visits; 4b. residents; 5. analysis and plan
    rows_c, rows_v = write_reports(st)
    residents = residents_step(opts, st.tl, out, work, st.influx, children, st.central, st.episodes)
    report_dir, plan_dir, plan_error = analyze(
        opts, st.tl, st.influx, out, out / "complaints.csv", out / "visits.csv"
    )

    summary = build_summary(
        opts, st.tl, out, report_dir, plan_dir, got, rows_c, rows_v, st.episodes,
        audio_seconds, minutes,
    )  # fmt: skip
    serve_residents(residents, st.central, plan_dir / "plan.json", children, st.logs)
    summary["residents"] = residents
    if plan_error:
        summary["partial"] = {"plan": plan_error}
    finish(st, summary, plan_dir)
    return 0


def start_servers(work: Path, children: Children) -> tuple[Broker, Influx]:
    """A private Mosquitto and InfluxDB (``services.py``), stopped with the children."""
    broker = Broker.launch(work / "mosquitto")
    children.services.append(broker)
    influx = Influx.launch(work / "influxdb")
    children.services.append(influx)
    say(f"Mosquitto on {broker.url}, InfluxDB on {influx.url} (child processes, temp dir {work})")
    return broker, influx


def start_central(st: Stage) -> Path:
    """``klankkast-ingest`` (and ``klankkast-alerts`` when installed) on the servers,
    once the ingest writes; returns their configuration (central.toml)."""
    central = central_config(st.out / "central.toml", st.broker.url, st.influx.url)
    st.children.spawn(
        "ingest", [*tool("klankkast-ingest"), "--config", str(central)], st.logs / "ingest.log"
    )
    alerts_running = False
    if has_alerts():
        st.children.spawn(
            "alerts", [*tool("klankkast-alerts"), "--config", str(central)], st.logs / "alerts.log"
        )
        alerts_running = True
    wait_ingest_ready(st.broker, st.influx, st.children, st.logs)
    say(
        "klankkast-ingest is subscribed and writing"
        + (", klankkast-alerts running" if alerts_running else "")
    )
    return central


def plan_truth(st: Stage) -> None:
    """The period and the nuisance planted in it."""
    opts = st.opts
    st.tl = tl = make_timeline(opts.now_ms, opts.weeks, opts.audio_s, opts.seconds_s)
    say(
        f"period {iso_local(tl.start_ms)} .. {iso_local(tl.end_ms)} ({opts.weeks} weeks), "
        f"sites {', '.join(st.sites)}"
    )
    if opts.audio_s > 0:
        st.episodes = plan_episodes(tl, st.sites, opts.seed, audio_party(opts.audio_s, tl))
    else:
        party = (tl.audio_start_ms + HOUR_MS // 2, tl.audio_start_ms + 4 * HOUR_MS)
        st.episodes = plan_episodes(tl, st.sites, opts.seed, party, 64.0, audio_measured=False)


def audio_node_config(st: Stage) -> Path:
    """The configuration of the real-audio node (the first node of the first site)."""
    site0 = st.sites[0]
    say(
        f"synthesising {st.opts.audio_s / 60:.0f} min of courtyard audio for "
        f"{site0}/{NODE_ID}-001 from {iso_local(st.tl.audio_start_ms)} "
        "(traffic, voices, music, door slams, party) and measuring it with the node's code"
    )
    return node_config(
        st.out / f"node-{site0}-audio.toml",
        site0,
        st.broker.url,
        st.work / f"outbox-{site0}-audio.sqlite",
        AUDIO_FS_HZ,
        AUDIO_OFFSET_DB,
    )


def _simulator_episodes(st: Stage, site: str) -> list[str]:
    """The planted episodes of ``site`` that start in the 1-s stretch, as ``--episode``
    values (offset:duration:level)."""
    t0 = st.tl.seconds_start_ms
    return [
        f"{(e.start_ms - t0) / 1000:.0f}:{(e.end_ms - max(e.start_ms, t0)) / 1000:.0f}:"
        f"{e.laeq_db:.1f}"
        for e in st.episodes
        if e.site == site and math.isfinite(e.laeq_db) and e.end_ms > t0 and e.start_ms >= t0
    ]


def simulate_seconds(st: Stage) -> None:
    """Synthetic 1-s frames for the last stretch of every node, from the node's own
    simulator (``klankkast-sensor simulate``)."""
    opts = st.opts
    for site, _d, n_nodes in opts.sites:
        cfg = node_config(
            st.out / f"node-{site}.toml",
            site,
            st.broker.url,
            st.work / f"outbox-{site}.sqlite",
            16000,
            110.0,
        )
        eps = _simulator_episodes(st, site)
        say(
            f"  klankkast-sensor simulate: {site}, {n_nodes} node(s), "
            f"last {opts.seconds_s / 60:.0f} min of 1-s frames"
        )
        cmd = [*tool("klankkast-sensor"), "simulate", "--config", str(cfg),
               "--nodes", str(n_nodes), "--rate", "max", "--duration", f"{opts.seconds_s:.0f}",
               "--start", iso_local(st.tl.seconds_start_ms), "--seed", str(opts.seed),
               "--quiet", *[f"--episode={e}" for e in eps]]  # fmt: skip
        run_step("klankkast-sensor simulate", cmd, st.logs / "simulate.log")


def publish_minutes(st: Stage) -> int:
    """Synthesised per-minute levels (and hourly statuses) for the whole period, for
    every node, with the wire encoder; returns the number of minute summaries."""
    opts, tl = st.opts, st.tl
    say(
        f"publishing synthesised per-minute levels for {opts.weeks} weeks "
        f"({st.n_nodes} nodes) with the wire encoder"
    )
    pub = WirePublisher(st.broker.url, f"klankkast-demo-levels-{os.getpid()}")
    minutes = 0
    try:
        for site, _d, n_nodes in opts.sites:
            for i in range(n_nodes):
                node = f"{NODE_ID}-{i + 1:03d}"
                skip = [(tl.seconds_start_ms, tl.end_ms)]
                if site == st.sites[0] and i == 0:
                    skip.append((tl.audio_start_ms, tl.audio_end_ms))
                for payload in minute_payloads(
                    site, node, i, tl.start_ms, tl.seconds_start_ms, st.episodes, skip,
                    opts.seed * 31 + i,
                ):  # fmt: skip
                    pub.publish("minute", payload)
                    minutes += 1
                for payload in status_payloads(site, node, tl.start_ms, tl.end_ms, opts.seed + i):
                    pub.publish("status", payload)
            say(f"  {site}: published")
    except BaseException:
        pub.close(wait=False)  # stopping: no acknowledgements to wait for
        raise
    pub.close()
    return minutes


def wait_ingested(st: Stage, minutes: int, audio_seconds: int, n_wavs: int) -> dict[str, int]:
    """Wait until InfluxDB holds everything sent, then until the counts stop changing."""
    sim_minutes = st.n_nodes * math.ceil(st.opts.seconds_s / 60)
    sim_seconds = st.n_nodes * round(st.opts.seconds_s)
    # the meter may hold back a partial block at the end of each file: a little slack,
    # then wait until the counts stop changing
    expected: dict[tuple[str | None, str], int] = {
        ("forever", "minute"): minutes + sim_minutes + math.ceil(audio_seconds / 60) - n_wavs,
        ("raw", "second"): sim_seconds + audio_seconds - 2 * n_wavs,
    }
    wait_counts(st.influx, expected, 240.0, "waiting for the ingest")
    got = wait_stable(st.influx, expected)
    say(f"ingested: {got['minute']} minute summaries, {got['second']} 1-s frames")
    return got


def write_reports(st: Stage) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """complaints.csv, visits.csv and truth.json in the output directory."""
    rows_c, rows_v = make_reports(st.episodes, st.tl, st.sites, st.opts.seed)
    complaints_csv = write_csv(st.out / "complaints.csv", COMPLAINT_COLUMNS, rows_c)
    visits_csv = write_csv(st.out / "visits.csv", VISIT_COLUMNS, rows_v)
    write_truth(st.out / "truth.json", st.episodes)
    say(
        f"{len(rows_c)} complaints and {len(rows_v)} visits generated ({complaints_csv.name}, "
        f"{visits_csv.name}); {len(st.episodes)} planted episodes in truth.json"
    )
    return rows_c, rows_v


def finish(st: Stage, summary: dict[str, Any], plan_dir: Path) -> None:
    """The plan's back-test into InfluxDB (the dashboards show it), summary.json, the
    printed summary; with ``--keep`` the servers stay up until Ctrl-C."""
    # report --influx wrote the headline numbers per site; the plan's back-test here
    from klankkast.analysis.headline import plan_lines

    plan_doc = read_json(plan_dir / "plan.json")
    if plan_doc:
        st.influx.write(plan_lines(plan_doc, st.tl.end_ms), DB, rp="forever", precision="ms")
    (st.out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print_summary(summary)
    if st.opts.keep:
        page = (summary.get("residents") or {}).get("page")
        say(
            f"--keep: Mosquitto {st.broker.url}, InfluxDB {st.influx.url}"
            + (f" and the residents' page {page}" if page else "")
            + " stay up until Ctrl-C"
        )
        print(grafana_hint(st.influx.url), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
