"""``klankkast-analyze plan``: a weekly patrol plan from the episode history, back-tested.

Loads levels (:mod:`klankkast.analysis.levels`), derives the episodes with the shared
rules (:func:`klankkast.analysis.episodes.detect`), fits the patrol model
(:mod:`klankkast.analysis.patrol`) and writes:

``DIR/plan.json``
    ``windows`` (each ``site``, ``weekday`` (English name, Monday-Sunday),
    ``weekday_iso`` (1-7), ``start`` / ``end`` (``HH:MM`` local Europe/Amsterdam;
    ``end_weekday`` when the window runs past midnight), ``duration_min``,
    ``probability`` (posterior mean that a visit then finds nuisance) with
    ``probability_low`` / ``probability_high`` (90 % credible interval),
    ``observed_weeks``, ``hit_weeks``); ``backtest`` (``weeks``, ``hit_rate_plan``,
    ``hit_rate_historical``, ``hit_rate_random``, each with a ``*_ci`` 95 % interval,
    visit and hit counts, ``per_week``); ``hour_of_week`` (per site, 168 probabilities,
    Monday 00:00 first); the parameters.
``DIR/plan.ics``
    One weekly recurring event per window (``RRULE:FREQ=WEEKLY``) in
    Europe/Amsterdam with its ``VTIMEZONE``, importable by calendar applications.

``klankkast-analyze report --plan DIR/plan.json`` adds the plan as a section of the
report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import textwrap
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from klankkast.analysis._cliargs import LEVELS_FORMS, add_source_arguments, time_arg

__all__ = ["add_arguments", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``klankkast-analyze plan``."""
    parser.description = textwrap.fill(
        "Weekly patrol plan: per site and hour of the week the probability that nuisance is "
        "going on (Beta-Binomial, pooled towards the site's daily profile), the K windows of D "
        "minutes that maximise the expected number of visits finding nuisance, and a back-test "
        "on the last W weeks (each fitted on the weeks before it) against the real visits and "
        "random plans of the same capacity. Writes DIR/plan.json and DIR/plan.ics (weekly "
        "events, Europe/Amsterdam).",
        width=88,
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = LEVELS_FORMS + (
        "Weeks and windows follow the Europe/Amsterdam wall clock (Monday 00:00 starts a week).\n"
        "Add the plan to the report with: klankkast-analyze report ... --plan DIR/plan.json"
    )
    add_source_arguments(parser, "history")
    parser.add_argument(
        "--visits", metavar="FILE", help="historical visits CSV (for the back-test)"
    )
    parser.add_argument(
        "--capacity", type=int, default=4, metavar="K", help="visits per week (default 4)"
    )
    parser.add_argument(
        "--duration", type=int, default=120, metavar="D",
        help="minutes per visit window (default 120)",
    )  # fmt: skip
    parser.add_argument(
        "--weeks", type=int, default=4, metavar="W",
        help="held-out weeks of the back-test (default 4; at most the weeks of data - 1)",
    )  # fmt: skip
    parser.add_argument(
        "--step", type=int, default=30, metavar="MIN",
        help="windows start every MIN minutes (divides 1440; default 30)",
    )  # fmt: skip
    parser.add_argument(
        "--prior-weeks", type=float, default=4.0, metavar="M",
        help="weight of the daily-profile prior in weeks (default 4)",
    )  # fmt: skip
    parser.add_argument(
        "--calendar-start", metavar="DATE",
        help="first date of the calendar events (default: today, Europe/Amsterdam)",
    )  # fmt: skip
    parser.add_argument(
        "--calendar-weeks", type=int, default=13, metavar="N",
        help="weekly occurrences per event (default 13; 0 = no end)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-plan baseline")
    parser.add_argument(
        "--now", metavar="ISO",
        help="the moment the plan is made (ISO 8601 with offset, e.g. 2026-12-03T22:37:00+01:00; "
        "default: the clock): the calendar's first date and time stamp, and the end of the "
        "history when --to is not given",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _progress(quiet: bool) -> Any:
    from klankkast.analysis.report import Progress

    return Progress(enabled=not quiet)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load, detect, fit, plan and back-test; write the files; return plan.json's document."""
    from klankkast.analysis import ics, patrol
    from klankkast.analysis.episodes import detect
    from klankkast.analysis.errors import ConfigError, PlanError
    from klankkast.analysis.importer import load_visits
    from klankkast.analysis.levels import load_grids
    from klankkast.analysis.rules import load_rules

    for key, value, lo in (
        ("--capacity", args.capacity, 1),
        ("--duration", args.duration, 1),
        ("--weeks", args.weeks, 1),
    ):
        if value < lo:
            raise PlanError(key, value, f"must be at least {lo}")
    if args.calendar_weeks < 0:
        raise PlanError("--calendar-weeks", args.calendar_weeks, "must be 0 (no end) or more")

    start_ms, end_ms = time_arg("--from", args.t_from), time_arg("--to", args.t_to)
    now = dt.datetime.now(dt.UTC)
    if getattr(args, "now", None):
        now_ms = time_arg("--now", args.now)
        assert now_ms is not None
        now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
        if end_ms is None:
            end_ms = now_ms
    first_date = now.astimezone(ZoneInfo(patrol.TZ)).date()
    if args.calendar_start:
        try:
            first_date = dt.date.fromisoformat(args.calendar_start)
        except ValueError:
            raise ConfigError(
                "--calendar-start", args.calendar_start, "must be a date YYYY-MM-DD"
            ) from None
    progress = _progress(args.quiet)
    rules = load_rules(args.rules)
    progress(0.0, "loading levels")
    grids = load_grids(
        args.levels, start_ms=start_ms, end_ms=end_ms, node_combine=rules.node_combine,
        progress=lambda f: progress(0.4 * f, "loading levels"),
    )  # fmt: skip
    progress(0.4, "detecting episodes")
    sites = [g.site for g in grids]
    level_times: dict[str, np.ndarray] = {}
    steps: dict[str, float] = {}
    episodes: dict[str, list[tuple[int, int]]] = {}
    for i, g in enumerate(grids):
        level_times[g.site] = g.t_ms[np.isfinite(g.laeq_db)]
        steps[g.site] = float(g.step_s)
        episodes[g.site] = [(e.start_ms, e.end_ms) for e in detect(g, rules)]
        progress(0.4 + 0.3 * (i + 1) / len(grids), "detecting episodes")
    visits: list[tuple[str, int, int]] = []
    if args.visits:
        visits = [(v.site, v.arrived_ms, v.left_ms) for v in load_visits(args.visits)]
    progress(0.7, "fitting and back-testing the plan")
    history = patrol.build_history(sites, level_times, episodes, level_step_s=steps)
    weeks = args.weeks
    available = int(history.heldout_candidates().size)
    if weeks > available:
        if available < 1:
            # still a plan, from all the data there is; marked as not back-tested
            print(
                f"klankkast-analyze plan: not back-tested: {history.no_backtest_reason()}",
                file=sys.stderr,
            )
            weeks = 0
        else:
            weeks = available
            print(
                f"klankkast-analyze plan: --weeks {args.weeks}: the levels span "
                f"{history.n_weeks} local week(s), {available} of them complete, at least half "
                f"measured and after a first week to fit on; back-testing the last {weeks}",
                file=sys.stderr,
            )
    plan = patrol.build_plan(
        history, capacity=args.capacity, duration_min=args.duration, weeks=weeks,
        step_min=args.step, visits=visits, prior_weeks=args.prior_weeks, seed=args.seed,
    )  # fmt: skip
    doc: dict[str, Any] = plan.to_json()
    doc["backtest"]["weeks_requested"] = args.weeks
    doc["episodes"] = {s: len(v) for s, v in episodes.items()}
    doc["rules"] = args.rules or "defaults"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    events = ics.events_for_windows(
        doc["windows"], first_date=first_date, count=args.calendar_weeks or None
    )
    (out / "plan.ics").write_text(ics.render_calendar(events, now=now), newline="")
    progress(1.0, "done")
    return doc


def main(args: argparse.Namespace) -> int:
    from klankkast.analysis.errors import AnalysisError

    try:
        doc = run(args)
    except AnalysisError as err:
        print(f"klankkast-analyze plan: {err}", file=sys.stderr)
        return 1
    bt = doc["backtest"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"

    print(f"{len(doc['windows'])} window(s) of {doc['duration_min']} min per week:")
    for w in doc["windows"]:
        print(
            f"  {w['site']:<12} {w['weekday']:<9} {w['start']}-{w['end']}  "
            f"p={w['probability']:.2f} ({w['probability_low']:.2f}-{w['probability_high']:.2f})"
        )
    if bt.get("reason"):
        print(f"not back-tested: {bt['reason']}")
    else:
        print(
            f"back-test over {bt['weeks']} week(s): plan {pct(bt['hit_rate_plan'])}, "
            f"historical visits {pct(bt['hit_rate_historical'])}, "
            f"random {pct(bt['hit_rate_random'])}"
        )
    print(f"wrote {Path(args.out) / 'plan.json'} and {Path(args.out) / 'plan.ics'}")
    return 0
