"""The demo's command line: ``./run-demo.sh`` (``python -m demo``) options, and
:func:`main`, which runs the demo and stops its child processes on every way out."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services import ServiceError

from ._common import REPO, DemoError, Options, say
from .children import Children
from .run import run
from .scenario import DAY_MS, MIN_MS, SITES

__all__ = ["MAX_NOW_AGE_DAYS", "main", "parse_args", "parse_now"]

#: how far back ``--now`` may lie: InfluxDB drops 1-s frames older than the 30 days of
#: the ``raw`` retention policy, counted on the real clock
MAX_NOW_AGE_DAYS = 28


def parse_now(text: str | None, clock_ms: int) -> int:
    """``--now``: an ISO 8601 time (offset or Europe/Amsterdam) -> UTC ms; default the clock."""
    from klankkast.sensor.simulate import parse_start

    if text is None:
        return clock_ms
    try:
        ms = parse_start(text)  # the node simulator's --start: the same rule
    except ValueError:
        raise ValueError(
            f"--now must be an ISO 8601 time like 2026-12-03T22:37; got {text!r}"
        ) from None
    if not clock_ms - MAX_NOW_AGE_DAYS * DAY_MS <= ms <= clock_ms + MIN_MS:
        raise ValueError(
            f"--now must lie within the last {MAX_NOW_AGE_DAYS} days (InfluxDB keeps 1-s "
            f"frames for 30 days, on the real clock) and not in the future; got {text!r}"
        )
    return ms


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run-demo.sh",
        description="klankkast end to end on this machine: private Mosquitto and InfluxDB, "
        "simulated courtyard nodes (synthesised audio through the real node code, synthesised "
        "levels for the rest), ingest, complaints and visits, analysis report and patrol plan.",
        epilog="Output: report.html (Dutch), plan.json/plan.ics, complaints.csv, visits.csv, "
        "levels.csv (to re-run report and plan later) and summary.json in the output directory.",
    )
    p.add_argument(
        "--short",
        action="store_true",
        help="a quick run (two sites with one node, 5 minutes of audio); under 90 s",
    )
    p.add_argument("--out", type=Path, help="output directory (default demo-out/<UTC time>)")
    p.add_argument(
        "--weeks", type=int, default=2, help="weeks of history to simulate (default 2, 2-8)"
    )
    p.add_argument(
        "--audio-minutes",
        type=float,
        help="minutes of real audio through the node code (default 120, --short 5)",
    )
    p.add_argument(
        "--no-audio",
        action="store_true",
        help="skip the real-audio part (synthetic frames and levels only)",
    )
    p.add_argument("--seed", type=int, default=2026, help="random seed of the scenario")
    p.add_argument(
        "--now",
        metavar="ISO",
        help="the end of the simulated history, e.g. 2026-12-03T22:37 (Europe/Amsterdam unless "
        f"an offset is given; within the last {MAX_NOW_AGE_DAYS} days; default: the clock). "
        "The report and the plan are made as of this moment.",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep Mosquitto, InfluxDB and the residents' page running at the end until Ctrl-C",
    )
    p.add_argument(
        "--grafana",
        default="http://localhost:3000",
        metavar="URL",
        help="a Grafana with klankkast's dashboards on the demo's InfluxDB (see --keep); the "
        "dashboard links are printed only when it answers (default %(default)s)",
    )
    return p


def parse_args(argv: Sequence[str] | None) -> Options:
    p = _parser()
    a = p.parse_args(argv)
    if not 2 <= a.weeks <= 8:
        p.error(
            f"--weeks must be from 2 to 8 (the plan is back-tested on the last week); got {a.weeks}"
        )
    audio_min = a.audio_minutes if a.audio_minutes is not None else (5.0 if a.short else 120.0)
    if a.no_audio:
        audio_min = 0.0
    elif not 1 <= audio_min <= 240:
        p.error(f"--audio-minutes must be from 1 to 240; got {audio_min:g}")
    try:
        now_ms = parse_now(a.now, int(time.time() * 1000))
    except ValueError as err:
        p.error(str(err))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = a.out if a.out is not None else REPO / "demo-out" / stamp
    sites = tuple((s, d, 1) for s, d, _n in SITES[:2]) if a.short else SITES
    return Options(
        out=out,
        weeks=a.weeks,
        short=a.short,
        audio_s=audio_min * 60.0,
        seconds_s=600.0 if a.short else 3600.0,
        sites=sites,
        seed=a.seed,
        keep=a.keep,
        capacity=4,
        plan_minutes=120,
        now_ms=now_ms,
        grafana=a.grafana.rstrip("/"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    children = Children()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C must work even when started from a shell that ignores SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(opts, children)
    except KeyboardInterrupt:
        say("interrupted; stopping child processes")
        return 130
    except (DemoError, ServiceError) as err:
        print(f"run-demo: {err}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
