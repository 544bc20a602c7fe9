"""``klankkast-analyze plan``: a weekly patrol plan from the episode history, back-tested.

Loads levels (:mod:`klankkast.analysis.levels`), derives the episodes with the shared
rules (:func:`klankkast.analysis.episodes.detect`), fits the patrol model
(:mod:`klankkast.analysis.patrol`) and writes:

``DIR/plan.json``
    ``windows`` (each ``site``, ``weekday`` (English name, Monday-Sunday),
    ``weekday_iso`` (1-7), ``start`` / ``end`` (``HH:MM`` on the wall clock of the rules'
    ``timezone``, Europe/Amsterdam by default; ``end_weekday`` when the window runs past
    midnight), ``duration_min``, ``probability`` (posterior mean that a visit then finds
    nuisance) with ``probability_low`` / ``probability_high`` (90 % credible interval),
    ``observed_weeks``, ``hit_weeks``); at most one window per courtyard-night (noon to
    noon), back-to-back windows of one courtyard merged; ``backtest`` (``weeks``,
    ``hit_rate_plan``, ``hit_rate_historical``, ``hit_rate_random``, each with a ``*_ci``
    95 % interval, visit and hit counts, ``per_week``; without a rate ``reason`` in words
    and ``reason_code``); ``hour_of_week`` (per site, 168 probabilities, Monday 00:00
    first); ``valid_weeks``, ``lang``, ``timezone`` and the parameters.
``DIR/plan.ics``
    One weekly recurring event per window (``RRULE:FREQ=WEEKLY;COUNT=N``, N =
    ``--valid-weeks``, default 4: until the next plan is due) in the rules' time zone
    with its ``VTIMEZONE``, written with the ``icalendar`` package; title and
    description (probability, based on how many weeks) in ``--lang`` (Dutch by default).

``klankkast-analyze report --plan DIR/plan.json`` adds the plan as a section of the
report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from klankkast.analysis._cliargs import add_source_arguments, time_arg

__all__ = ["DEFAULT_WEEKS", "add_arguments", "main", "run"]

#: held-out weeks of the back-test when --weeks is not given (fewer when the data has fewer)
DEFAULT_WEEKS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``klankkast-analyze plan``."""
    add_source_arguments(
        parser,
        "history",
        "Weekly patrol plan: per site and hour of the week the probability that nuisance is "
        "going on (Beta-Binomial, pooled towards the site's daily profile), the K windows of D "
        "minutes that maximise the expected number of visits finding nuisance, and a back-test "
        "on the last W weeks (each fitted on the weeks before it) against the real visits and "
        "random plans of the same capacity. A courtyard-night counts once. Writes "
        "DIR/plan.json and DIR/plan.ics (weekly events until the next plan is due).",
        "Weeks and windows follow the wall clock of the rules' timezone (Europe/Amsterdam by\n"
        "default; Monday 00:00 starts a week).\n"
        "Add the plan to the report with: klankkast-analyze report ... --plan DIR/plan.json",
    )
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
        "--weeks", type=int, default=None, metavar="W",
        help="held-out complete weeks of the back-test (default: up to 4, as many as the "
        "data allows)",
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
        help="first date of the calendar events (default: today in the rules' time zone)",
    )  # fmt: skip
    parser.add_argument(
        "--valid-weeks", type=int, default=4, metavar="N",
        help="weeks until the next plan is due: the calendar events repeat that often "
        "(default 4)",
    )  # fmt: skip
    parser.add_argument(
        "--calendar-weeks", type=int, default=None, metavar="N",
        help="(older name) weekly occurrences per event; 0 = no end. Overrides --valid-weeks",
    )  # fmt: skip
    parser.add_argument(
        "--lang", choices=("nl", "en"), default="nl",
        help="language of the calendar events (default nl)",
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
        ("--valid-weeks", getattr(args, "valid_weeks", 4), 1),
    ):
        if value is not None and value < lo:
            raise PlanError(key, value, f"must be at least {lo}")
    if args.calendar_weeks is not None and args.calendar_weeks < 0:
        raise PlanError("--calendar-weeks", args.calendar_weeks, "must be 0 (no end) or more")
    lang = getattr(args, "lang", "nl")

    start_ms, end_ms = time_arg("--from", args.t_from), time_arg("--to", args.t_to)
    now = dt.datetime.now(dt.UTC)
    if getattr(args, "now", None):
        now_ms = time_arg("--now", args.now)
        assert now_ms is not None
        now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
        if end_ms is None:
            end_ms = now_ms
    rules = load_rules(args.rules)
    first_date = now.astimezone(ZoneInfo(rules.timezone)).date()
    if args.calendar_start:
        try:
            first_date = dt.date.fromisoformat(args.calendar_start)
        except ValueError:
            raise ConfigError(
                "--calendar-start", args.calendar_start, "must be a date YYYY-MM-DD"
            ) from None
    progress = _progress(args.quiet)
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
    history = patrol.build_history(
        sites, level_times, episodes, level_step_s=steps, tz=rules.timezone
    )
    available = int(history.heldout_candidates().size)
    weeks = min(DEFAULT_WEEKS, available) if args.weeks is None else args.weeks
    if available < 1:
        # still a plan, from all the data there is; marked as not back-tested
        print(
            f"klankkast-analyze plan: not back-tested: {history.no_backtest_reason()}",
            file=sys.stderr,
        )
        weeks = 0
    elif weeks > available:
        weeks = available
        print(
            f"klankkast-analyze plan: --weeks {args.weeks}: the levels span "
            f"{history.n_weeks} local week(s), {available} of them complete, at least half "
            f"measured and after a first week to fit on; back-testing the last {weeks}",
            file=sys.stderr,
        )
    spec = patrol.PlanSpec(
        capacity=args.capacity, duration_min=args.duration, weeks=weeks, step_min=args.step,
        visits=visits, prior_weeks=args.prior_weeks, seed=args.seed,
    )  # fmt: skip
    plan = patrol.build_plan(history, spec)
    doc: dict[str, Any] = plan.to_json()
    doc["backtest"]["weeks_requested"] = args.weeks if args.weeks is not None else DEFAULT_WEEKS
    doc["episodes"] = {s: len(v) for s, v in episodes.items()}
    doc["rules"] = args.rules or "defaults"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    count = args.valid_weeks if args.calendar_weeks is None else (args.calendar_weeks or None)
    doc["valid_weeks"] = count
    doc["lang"] = lang
    (out / "plan.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    events = ics.events_for_windows(
        doc["windows"], first_date=first_date, count=count, lang=lang,
        weeks_of_history=history.n_weeks,
    )  # fmt: skip
    name = {"nl": "klankkast controleplan", "en": "klankkast patrol plan"}[lang]
    (out / "plan.ics").write_text(
        ics.render_calendar(events, now=now, tz=rules.timezone, name=name), newline=""
    )
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
