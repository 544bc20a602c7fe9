"""``klankkast-analyze run``: the analysis on a schedule, for production (issue 17).

Every night at ``report_at`` (local time of the rules' time zone) one run:

1. makes the weekly patrol plan when it is due (on ``plan_weekday``, or when the latest
   plan is missing or older than seven days) into ``out_dir/<date>/plan``;
2. writes the report of the last ``history_days`` into ``out_dir/<date>/report``, with
   the current plan's section, and writes the complaint, visit and episode points and the
   headline numbers per site (measurement ``analysis``) to the InfluxDB of ``levels``,
   so Grafana's headline panels follow ``$site``; the plan's back-test as one more point;
3. points ``out_dir/latest`` at ``<date>`` and ``out_dir/current-plan`` at the newest
   plan (both replaced atomically: readers never see a half-written run) and removes
   dated folders older than ``keep_days`` (never the one holding the current plan).

A configured input file that does not exist (an export not delivered yet) is left out
of that night's run with a log line, not an error.

``--once`` does one run now and exits (the systemd timer's service); without it the
program runs until SIGTERM, sleeping until the next ``report_at``. The configuration is
the ``[analysis]`` table of ``central.toml``; ``check`` validates it.

:class:`Schedule` is pure (time arithmetic in the rules' time zone, DST included); the
rest is thin wiring around ``klankkast-analyze report`` and ``plan``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from klankkast import configcheck as _cc
from klankkast.analysis.errors import AnalysisError, ConfigError

__all__ = ["Config", "Schedule", "add_arguments", "load_config", "main", "run_once"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Schedule:
    """When runs happen and when a plan is due, in the wall clock of ``tz``."""

    report_at: dt.time
    plan_weekday: int  # Monday = 0
    tz: str

    def next_run(self, now_ms: int) -> int:
        """The first ``report_at`` strictly after ``now_ms`` (UTC ms), in local time."""
        zone = ZoneInfo(self.tz)
        day = dt.datetime.fromtimestamp(now_ms / 1000, zone).date()
        for _ in range(3):
            # fold=0: a time in the spring gap is read with the offset before it (02:30
            # becomes 03:30 CEST), an ambiguous autumn time is its first occurrence
            at = dt.datetime.combine(day, self.report_at, tzinfo=zone)
            t = int(at.timestamp() * 1000)
            if t > now_ms:
                return t
            day += dt.timedelta(days=1)
        raise AssertionError("unreachable: a report time within three days")

    def plan_due(self, run_ms: int, last_plan_ms: int | None) -> bool:
        """Whether the run at ``run_ms`` makes a new plan."""
        if last_plan_ms is None or run_ms - last_plan_ms >= 7 * _DAY_MS - 3_600_000:
            return True
        weekday = dt.datetime.fromtimestamp(run_ms / 1000, ZoneInfo(self.tz)).weekday()
        return weekday == self.plan_weekday and run_ms - last_plan_ms > _DAY_MS


@dataclass(frozen=True)
class Config:
    """The ``[analysis]`` table of ``central.toml``."""

    levels: str
    out_dir: Path
    password_file: Path | None = None
    complaints: Path | None = None
    visits: Path | None = None
    experiences: Path | None = None
    site_map: Path | None = None
    rules: Path | None = None
    lang: str = "nl"
    history_days: int = 56
    report_at: dt.time = dt.time(6, 0)
    plan_weekday: int = 0
    capacity: int = 4
    duration_min: int = 120
    keep_days: int = 90


def _check_levels(value: str) -> str | None:
    if "://" not in value:
        return None  # a level CSV
    from klankkast.influx import AddressError, parse_address

    try:
        parse_address(value, options=("measurement",))
    except AddressError as err:
        return err.reason
    return None


def _check_time(value: str) -> str | None:
    try:
        dt.time.fromisoformat(value)
    except ValueError:
        return 'must be a local time "HH:MM"'
    return None


#: ``[analysis]``, checked by the one config checker (:mod:`klankkast.configcheck`)
SCHEMA: Final[_cc.Schema] = {
    "analysis": {
        "levels": _cc.string(_cc.MISSING, check=_check_levels),
        "out_dir": _cc.string(_cc.MISSING),
        "password_file": _cc.string(None),
        "complaints": _cc.string(None),
        "visits": _cc.string(None),
        "experiences": _cc.string(None),
        "site_map": _cc.string(None),
        "rules": _cc.string(None),
        "lang": _cc.choice("nl", ("nl", "en")),
        "history_days": _cc.integer(56, 7, 400, " days"),
        "report_at": _cc.string("06:00", check=_check_time),
        "plan_weekday": _cc.choice("monday", WEEKDAYS),
        "capacity": _cc.integer(4, 1, 100),
        "duration_min": _cc.integer(120, 30, 480, " min"),
        "keep_days": _cc.integer(90, 1, 3650, " days"),
    }
}


def load_config(path: str | Path) -> Config:
    """The ``[analysis]`` table of ``path``; one :class:`ConfigError` carrying every
    problem of the table (one line each, ``analysis.key = value: what is allowed``)."""
    p = Path(path)
    doc = _cc.read_toml(p, ConfigError, "--config")
    return parse_config(doc.get("analysis"), base=p.parent)


def parse_config(table: Any, *, base: Path) -> Config:
    """Check the ``[analysis]`` table (relative paths against ``base``)."""
    problems = _cc.Problems()
    v = _cc.check_all({"analysis": table if table is not None else {}}, SCHEMA, problems,
                      other_tables="ignore")["analysis"]  # fmt: skip
    if table is None:
        problems.add("[analysis]", _cc.MISSING, "the table must be present")
    problems.raise_as(ConfigError)
    levels = str(v["levels"])
    if "://" not in levels:
        levels = str(_cc.resolve_path(levels, base))

    def path(key: str) -> Path | None:
        return _cc.resolve_path(v[key], base)

    return Config(
        levels=levels,
        out_dir=path("out_dir") or base,
        password_file=path("password_file"),
        complaints=path("complaints"),
        visits=path("visits"),
        experiences=path("experiences"),
        site_map=path("site_map"),
        rules=path("rules"),
        lang=str(v["lang"]),
        history_days=int(v["history_days"]),
        report_at=dt.time.fromisoformat(str(v["report_at"])),
        plan_weekday=WEEKDAYS.index(str(v["plan_weekday"])),
        capacity=int(v["capacity"]),
        duration_min=int(v["duration_min"]),
        keep_days=int(v["keep_days"]),
    )


# ------------------------------------------------------------------------------ one run
@dataclass(frozen=True)
class RunResult:
    folder: Path
    plan_made: bool
    summary: dict[str, Any]


def _iso(t_ms: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(t_ms / 1000, ZoneInfo(tz)).isoformat(timespec="seconds")


def _address_args(cfg: Config, flag: str) -> list[str]:
    out = [flag, cfg.levels]
    if cfg.password_file is not None and "://" in cfg.levels:
        out += ["--influx-password-file", str(cfg.password_file)]
    return out


def _latest_plan(out_dir: Path, tz: str) -> tuple[Path | None, int | None]:
    """The newest dated run's plan.json and its date (local midnight, UTC ms)."""
    for plan in sorted(out_dir.glob("*/plan/plan.json"), reverse=True):
        try:
            day = dt.date.fromisoformat(plan.parent.parent.name)
        except ValueError:
            continue
        midnight = dt.datetime.combine(day, dt.time(0, 0), tzinfo=ZoneInfo(tz))
        return plan, int(midnight.timestamp() * 1000)
    return None, None


def _set_link(out_dir: Path, name: str, target: Path) -> None:
    """``out_dir/name`` -> ``target`` (relative), replaced atomically."""
    tmp = out_dir / f".{name}-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.relative_to(out_dir))
    os.replace(tmp, out_dir / name)


def _prune(out_dir: Path, now_ms: int, keep_days: int, tz: str) -> list[Path]:
    """Remove dated runs older than ``keep_days``, except the one holding the current plan."""
    keep, _ = _latest_plan(out_dir, tz)
    zone = ZoneInfo(tz)
    today = dt.datetime.fromtimestamp(now_ms / 1000, zone).date()
    removed = []
    for folder in out_dir.iterdir():
        if not folder.is_dir() or folder.is_symlink():
            continue
        try:
            day = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue
        if (today - day).days > keep_days and (keep is None or keep.parent.parent != folder):
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def run_once(
    cfg: Config,
    now_ms: int,
    schedule: Schedule,
    *,
    analyze: Callable[[list[str]], int] | None = None,
    say: Callable[[str], None] = print,
) -> RunResult:
    """One scheduled run at ``now_ms`` (see the module docstring)."""
    if analyze is None:
        from klankkast.analysis.cli import main as cli_main

        analyze = cli_main
    tz = schedule.tz
    date = dt.datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz)).date().isoformat()
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    folder = cfg.out_dir / date
    start_ms = now_ms - cfg.history_days * _DAY_MS
    period = ["--from", _iso(start_ms, tz), "--to", _iso(now_ms, tz)]
    common = [*(["--rules", str(cfg.rules)] if cfg.rules else []), "--quiet"]
    plan_path, plan_ms = _latest_plan(cfg.out_dir, tz)
    plan_made = False
    if schedule.plan_due(now_ms, plan_ms):
        args = ["plan", *_address_args(cfg, "--levels"), *period, "--now", _iso(now_ms, tz),
                "--capacity", str(cfg.capacity), "--duration", str(cfg.duration_min),
                "--lang", cfg.lang, "--out", str(folder / "plan"), *common]  # fmt: skip
        if cfg.visits and cfg.visits.exists():
            args += ["--visits", str(cfg.visits)]
        say(f"klankkast-analyze run: plan into {folder / 'plan'}")
        if analyze(args) != 0:
            raise AnalysisError(f"the plan of {date} failed (see the lines above)")
        plan_path, plan_made = folder / "plan" / "plan.json", True
    args = ["report", *_address_args(cfg, "--levels"), *period, "--lang", cfg.lang,
            "--out", str(folder / "report"), *common]  # fmt: skip
    if "://" in cfg.levels:
        args += ["--influx", cfg.levels]
    for flag, value in (
        ("--complaints", cfg.complaints),
        ("--visits", cfg.visits),
        ("--experiences", cfg.experiences),
        ("--site-map", cfg.site_map),
        ("--plan", plan_path),
    ):
        if value is None:
            continue
        if not value.exists():
            # an export that has not arrived yet: the report runs without it, and says so
            say(f"klankkast-analyze run: {flag.lstrip('-')} file {value} not found; left out")
            continue
        args += [flag, str(value)]
    say(f"klankkast-analyze run: report into {folder / 'report'}")
    if analyze(args) != 0:
        raise AnalysisError(f"the report of {date} failed (see the lines above)")
    summary = json.loads((folder / "report" / "summary.json").read_text(encoding="utf-8"))
    if "://" in cfg.levels:
        _write_points(cfg, folder / "plan" / "plan.json" if plan_made else None, summary, now_ms)
    if plan_made:
        _set_link(cfg.out_dir, "current-plan", folder / "plan")
    _set_link(cfg.out_dir, "latest", folder)
    for old in _prune(cfg.out_dir, now_ms, cfg.keep_days, tz):
        say(f"klankkast-analyze run: removed {old} (older than {cfg.keep_days} days)")
    return RunResult(folder, plan_made, summary)


def _write_points(
    cfg: Config, plan_json: Path | None, summary: Mapping[str, Any], t_ms: int
) -> None:
    """The new plan's back-test point, and the period limits of the coming eight days (the
    report wrote those of its span), so the dashboards have them until the next run."""
    from klankkast.analysis.headline import limit_lines, plan_lines
    from klankkast.analysis.levels import write_lines
    from klankkast.analysis.rules import load_rules

    lines = []
    if plan_json is not None:
        lines += plan_lines(json.loads(plan_json.read_text(encoding="utf-8")), t_ms)
    sites = list((summary.get("sites") or {}).keys())
    lines += limit_lines(load_rules(cfg.rules), sites, t_ms, t_ms + 8 * _DAY_MS)
    if lines:
        write_lines(_internal_address(cfg), lines)


def _internal_address(cfg: Config) -> str:
    """The address with the password inline, as :mod:`klankkast.analysis.levels` reads it."""
    if cfg.password_file is None or "@" not in cfg.levels:
        return cfg.levels
    import urllib.parse

    password = cfg.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
    scheme, rest = cfg.levels.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{urllib.parse.quote(password, safe='')}@{host}"


# ---------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``klankkast-analyze run``."""
    parser.description = (
        "The analysis on a schedule: every night at [analysis] report_at the report of the "
        "last history_days (and the weekly plan when due) into out_dir/<date>/, the "
        "headline numbers per site to InfluxDB, and out_dir/latest pointed at it."
    )
    parser.epilog = (
        "exit status: 0 done (--once) or stopped by SIGTERM/SIGINT; 1 a run failed "
        "(--once) or the configuration is invalid (every problem on its own line)"
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="central.toml")
    parser.add_argument("--once", action="store_true", help="one run now, then exit (timer)")
    parser.add_argument(
        "--now", metavar="ISO", help="the run's moment (ISO 8601 with offset; tests, re-runs)"
    )


def main(args: argparse.Namespace) -> int:
    """Run ``klankkast-analyze run``."""
    from klankkast.analysis.rules import load_rules
    from klankkast.analysis.timeutil import parse_time_ms

    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        for e in err.errors:
            print(f"klankkast-analyze run: {args.config}: {e}", file=sys.stderr)
        return 1
    try:
        rules = load_rules(cfg.rules)
        now_ms = parse_time_ms(args.now) if args.now else int(time.time() * 1000)
    except (AnalysisError, ValueError) as err:
        print(f"klankkast-analyze run: {err}", file=sys.stderr)
        return 1
    schedule = Schedule(cfg.report_at, cfg.plan_weekday, rules.timezone)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if args.once:
        try:
            r = run_once(cfg, now_ms, schedule, say=log)
        except (AnalysisError, OSError, ValueError) as err:
            print(f"klankkast-analyze run: {err}", file=sys.stderr)
            return 1
        print(
            f"klankkast-analyze run: wrote {r.folder}"
            + (" (with a new plan)" if r.plan_made else "")
        )
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        now_ms = int(time.time() * 1000)
        at = schedule.next_run(now_ms)
        log(f"klankkast-analyze run: next run at {_iso(at, schedule.tz)}")
        if stop.wait((at - now_ms) / 1000):
            break
        try:
            run_once(cfg, at, schedule, say=log)
        except (AnalysisError, OSError, ValueError) as err:
            # one failed night is logged; the next night runs again
            log(f"klankkast-analyze run: the run of {_iso(at, schedule.tz)} failed: {err}")
    return 0
