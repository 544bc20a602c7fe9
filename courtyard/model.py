"""The page model of the residents' courtyard page: pure functions, no I/O.

What a resident sees is computed here from plain values that the InfluxDB adapter
(:mod:`klankkast.courtyard.influxstore`) reads: minute levels per node, episodes,
alerts, marks, complaints, visits and the patrol windows of the plan.

Acoustics (the house rules, IEC 61672-1 §3.9 for the equivalent level):

* Levels are averaged as energy, ``10·log10(mean(10^(L/10)))``, never as arithmetic
  means of dB. Several nodes in one courtyard are combined by energy **mean** (the
  courtyard's level, not the sum of co-located microphones), from the ``LAeq_e``
  energy companions the ingest writes with every minute.
* The courtyard's *usual background* is the residual in the sense of ISO 1996-2
  §3.4.5: an LAeq of the quiet part, namely the energy mean of the quietest minutes,
  those at or below the ``background_quantile_laeq`` quantile of the minute LAeq of
  the rules (default 10 %), never LA90.
* The limit of each minute is the absolute limit of its period (day, evening, night)
  in the rules' time zone (``klankkast.analysis.rules``). A minute is *above* its
  limit when its LAeq exceeds it. This is a measurement and the rule it crosses,
  not a legal verdict.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal
from zoneinfo import ZoneInfo

from klankkast.analysis.rules import PERIODS, Rules
from klankkast.decibel import energy_to_level, finite_energy_mean_level

__all__ = [
    "MARK_INTERVAL_S",
    "RECENT_S",
    "Alert",
    "DayView",
    "Episode",
    "Limits",
    "Minute",
    "NodeMinute",
    "NowReading",
    "Segment",
    "Span",
    "WeekGrid",
    "combine_nodes",
    "day_view",
    "now_reading",
    "patrol_spans",
    "period_segments",
    "usual_background_db",
    "week_grid",
]

#: one household's marks count once per this long (the issue: once per 10 minutes)
MARK_INTERVAL_S: Final = 600
#: "right now" looks back this far
RECENT_S: Final = 600
_MIN_MS: Final = 60_000
_H_MS: Final = 3_600_000

Period = Literal["day", "evening", "night"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The periods and limits of the rules, read in the rules' time zone.

    A view of :class:`~klankkast.analysis.rules.Rules` (the result of ``load_rules``),
    not a copy of its fields, so a setting the page uses cannot drift from the one the
    analysis and the alerts use.
    """

    rules: Rules = field(default_factory=Rules)

    @classmethod
    def from_rules(cls, rules: Rules) -> Limits:
        """The limits of :func:`klankkast.analysis.rules.load_rules`'s result."""
        return cls(rules)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.rules.timezone)

    @property
    def background_quantile(self) -> float:
        """The quantile of the minute LAeq below which minutes are the residual."""
        return self.rules.background_quantile_laeq

    def period_at(self, t_ms: int) -> Period:
        """The period of the local wall-clock hour at ``t_ms`` (night wraps past midnight)."""
        hour = dt.datetime.fromtimestamp(t_ms / 1000, self.tz).hour
        r = self.rules
        if r.day_start_h <= hour < r.evening_start_h:
            return "day"
        if r.evening_start_h <= hour < r.night_start_h:
            return "evening"
        return "night"

    def limit_db(self, period: Period) -> float:
        """The absolute limit of ``period``."""
        return self.rules.limits_db()[PERIODS.index(period)]

    def emergence_db(self, period: Period) -> float:
        """The allowed rise above the residual in ``period``."""
        return self.rules.emergences_db()[PERIODS.index(period)]


@dataclass(frozen=True, slots=True)
class NodeMinute:
    """One node's minute: start ``t_ms`` and the energy ``laeq_e`` = 10^(LAeq/10)."""

    t_ms: int
    node: str
    laeq_e: float


@dataclass(frozen=True, slots=True)
class Minute:
    """The courtyard's minute: energy mean of its nodes."""

    t_ms: int
    laeq_db: float
    nodes: int


@dataclass(frozen=True, slots=True)
class Span:
    """A time interval ``[start_ms, end_ms)``."""

    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Episode:
    """An episode as the analysis/alerts wrote it (``episode`` measurement)."""

    start_ms: int
    end_ms: int
    rule: str = ""
    laeq_db: float = math.nan


@dataclass(frozen=True, slots=True)
class Alert:
    """One point of the ``alert`` measurement: ``t_ms``, state, the episode's start."""

    t_ms: int
    state: str
    started_ms: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of one period with its limit."""

    start_ms: int
    end_ms: int
    period: Period
    limit_db: float


def combine_nodes(rows: Iterable[NodeMinute]) -> list[Minute]:
    """Per minute, the energy MEAN of the nodes that reported (never the sum).

    Two nodes at 50 and 60 dB give 10·log10((10^5 + 10^6)/2) = 57.4 dB. Rows without a
    positive finite energy are skipped; several rows of one node in one minute (a
    rewrite) count once, the last one winning.
    """
    per_minute: dict[int, dict[str, float]] = {}
    for r in rows:
        if not (math.isfinite(r.laeq_e) and r.laeq_e > 0.0):
            continue
        t = r.t_ms - r.t_ms % _MIN_MS
        per_minute.setdefault(t, {})[r.node] = r.laeq_e
    out = []
    for t in sorted(per_minute):
        nodes = per_minute[t]
        mean_e = math.fsum(nodes.values()) / len(nodes)
        out.append(Minute(t, energy_to_level(mean_e), len(nodes)))
    return out


def usual_background_db(levels_db: Sequence[float], quantile: float) -> float:
    """The residual: energy mean of the quietest ``ceil(quantile·n)`` minutes (ISO 1996-2).

    An LAeq of the quiet part, not LA90 and not an arithmetic mean. NaN without data.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1]; got {quantile}")
    finite = sorted(x for x in levels_db if math.isfinite(x))
    if not finite:
        return math.nan
    k = max(1, math.ceil(quantile * len(finite)))
    return finite_energy_mean_level(finite[:k])


def period_segments(start_ms: int, end_ms: int, limits: Limits) -> list[Segment]:
    """The periods covering ``[start_ms, end_ms)``, split at local period starts.

    Walks whole minutes, so daylight-saving changes fall where the local clock puts
    them (a 23-h or 25-h day has its periods at the right UTC instants).
    """
    out: list[Segment] = []
    t = start_ms - start_ms % _MIN_MS
    while t < end_ms:
        p = limits.period_at(t)
        if out and out[-1].period == p:
            out[-1] = Segment(out[-1].start_ms, min(end_ms, t + _MIN_MS), p, out[-1].limit_db)
        else:
            out.append(Segment(max(start_ms, t), min(end_ms, t + _MIN_MS), p, limits.limit_db(p)))
        t += _MIN_MS
    return out


@dataclass(frozen=True, slots=True)
class NowReading:
    """What the node measures right now, and what it means.

    ``state``: ``above`` (the latest minute exceeds its period's limit), ``audible``
    (below the limit, but some minute of the last 10 is more than the period's
    emergence above the usual background), ``quiet`` (nothing above the usual
    background in the last 10 minutes) or ``nodata`` (no minute in the last 10).
    """

    state: Literal["above", "audible", "quiet", "nodata"]
    level_db: float
    t_ms: int
    period: Period
    limit_db: float
    background_db: float
    alerted_ms: int | None


def now_reading(
    minutes: Sequence[Minute],
    now_ms: int,
    limits: Limits,
    background_db: float,
    alerts: Sequence[Alert] = (),
) -> NowReading:
    """The reading shown after a mark; ``alerts`` of this site (any order)."""
    period = limits.period_at(now_ms)
    limit = limits.limit_db(period)
    alerted = ongoing_alert_ms(alerts, now_ms)
    recent = [m for m in minutes if now_ms - RECENT_S * 1000 <= m.t_ms < now_ms]
    if not recent:
        return NowReading("nodata", math.nan, now_ms, period, limit, background_db, alerted)
    latest = max(recent, key=lambda m: m.t_ms)
    if latest.laeq_db > limits.limit_db(limits.period_at(latest.t_ms)):
        state: Literal["above", "audible", "quiet"] = "above"
    elif math.isfinite(background_db) and any(
        m.laeq_db > background_db + limits.emergence_db(limits.period_at(m.t_ms)) for m in recent
    ):
        state = "audible"
    else:
        state = "quiet"
    return NowReading(state, latest.laeq_db, latest.t_ms, period, limit, background_db, alerted)


#: an alert without an update for this long is no longer "going on" (alerts update each 60 s)
_ALERT_STALE_MS: Final = 15 * _MIN_MS


def ongoing_alert_ms(alerts: Sequence[Alert], now_ms: int) -> int | None:
    """When the municipality was alerted of the episode going on now, else ``None``.

    The latest alert point at or before ``now_ms`` must be a ``start`` or ``update``
    less than 15 minutes old; the time is that of the episode's ``start`` point.
    """
    past = [a for a in alerts if a.t_ms <= now_ms]
    if not past:
        return None
    last = max(past, key=lambda a: a.t_ms)
    if last.state == "end" or now_ms - last.t_ms > _ALERT_STALE_MS:
        return None
    starts = [a.t_ms for a in past if a.state == "start" and a.started_ms == last.started_ms]
    return min(starts) if starts else last.t_ms


def patrol_spans(
    windows: Iterable[tuple[int, str, str]], start_ms: int, end_ms: int, tz: ZoneInfo
) -> list[Span]:
    """Concrete patrol windows within ``[start_ms, end_ms)``.

    ``windows`` are the plan's weekly windows as ``(weekday_iso, "HH:MM", "HH:MM")``
    in local time; an end at or before the start runs past midnight.
    """
    out: list[Span] = []
    first = dt.datetime.fromtimestamp(start_ms / 1000, tz).date() - dt.timedelta(days=1)
    last = dt.datetime.fromtimestamp(end_ms / 1000, tz).date()
    for weekday_iso, start_hm, end_hm in windows:
        sh, sm = (int(x) for x in start_hm.split(":"))
        eh, em = (int(x) for x in end_hm.split(":"))
        day = first
        while day <= last:
            if day.isoweekday() == weekday_iso:
                a = dt.datetime(day.year, day.month, day.day, sh, sm, tzinfo=tz)
                end_day = day + dt.timedelta(days=1) if (eh, em) <= (sh, sm) else day
                b = dt.datetime(end_day.year, end_day.month, end_day.day, eh, em, tzinfo=tz)
                a_ms, b_ms = int(a.timestamp() * 1000), int(b.timestamp() * 1000)
                if a_ms < end_ms and b_ms > start_ms:
                    out.append(Span(max(a_ms, start_ms), min(b_ms, end_ms)))
            day += dt.timedelta(days=1)
    return sorted(out, key=lambda s: s.start_ms)


@dataclass(frozen=True, slots=True)
class DayView:
    """Everything of the "last night / today" page over ``[start_ms, end_ms)``."""

    start_ms: int
    end_ms: int
    minutes: list[Minute]
    above: list[bool]
    segments: list[Segment]
    background_db: float
    episodes: list[Span]
    marks_ms: list[int]
    alerts_ms: list[int]
    patrols: list[Span]
    visits_ms: list[int]
    minutes_above: int = 0
    loudest_db: float = math.nan
    laeq_db: float = math.nan
    households: int = 0


def _within(ts: Iterable[int], start_ms: int, end_ms: int) -> list[int]:
    """Events of ``[start_ms, end_ms]``: one made at 'now' itself is shown."""
    return sorted(t for t in ts if start_ms <= t <= end_ms)


def day_view(
    now_ms: int,
    limits: Limits,
    minutes: Sequence[Minute],
    background_db: float,
    *,
    episodes: Iterable[Episode] = (),
    marks: Iterable[tuple[int, str]] = (),
    alerts: Iterable[Alert] = (),
    patrols: Iterable[Span] = (),
    visits_ms: Iterable[int] = (),
    hours: int = 24,
) -> DayView:
    """The last ``hours`` hours up to ``now_ms``.

    ``marks`` are ``(t_ms, household_hash)`` of this courtyard; ``alerts_ms`` lists the
    ``start`` points only (when the municipality was alerted).
    """
    end_ms = now_ms
    start_ms = now_ms - hours * _H_MS
    shown = [m for m in minutes if start_ms <= m.t_ms < end_ms]
    above = [m.laeq_db > limits.limit_db(limits.period_at(m.t_ms)) for m in shown]
    eps = [
        Span(max(e.start_ms, start_ms), min(e.end_ms, end_ms))
        for e in episodes
        if e.start_ms < end_ms and e.end_ms > start_ms
    ]
    marks_in = [(t, h) for t, h in marks if start_ms <= t <= end_ms]
    return DayView(
        start_ms=start_ms,
        end_ms=end_ms,
        minutes=shown,
        above=above,
        segments=period_segments(start_ms, end_ms, limits),
        background_db=background_db,
        episodes=sorted(eps, key=lambda s: s.start_ms),
        marks_ms=sorted(t for t, _ in marks_in),
        alerts_ms=_within((a.t_ms for a in alerts if a.state == "start"), start_ms, end_ms),
        patrols=[p for p in patrols if p.start_ms < end_ms and p.end_ms > start_ms],
        visits_ms=_within(visits_ms, start_ms, end_ms),
        minutes_above=sum(above),
        loudest_db=max((m.laeq_db for m in shown), default=math.nan),
        laeq_db=finite_energy_mean_level(m.laeq_db for m in shown),
        households=len({h for _, h in marks_in}),
    )


@dataclass(frozen=True, slots=True)
class WeekGrid:
    """Seven local days (oldest first, the last is today) x 24 local hours."""

    days: list[dt.date]
    nuisance_min: list[list[int]]
    marks: list[list[int]]
    complaints: list[list[int]]


def week_grid(
    now_ms: int,
    limits: Limits,
    minutes: Sequence[Minute],
    marks_ms: Iterable[int] = (),
    complaints_ms: Iterable[int] = (),
) -> WeekGrid:
    """Nuisance minutes (minutes above their period's limit), marks and complaints
    per local day and local hour, over the seven days ending today.

    Hours are wall-clock hours: on the autumn DST night the repeated hour 02 holds
    both of its real hours; on the spring night hour 02 stays empty.
    """
    tz = limits.tz
    today = dt.datetime.fromtimestamp(now_ms / 1000, tz).date()
    days = [today - dt.timedelta(days=k) for k in range(6, -1, -1)]
    index = {d: i for i, d in enumerate(days)}

    def grid() -> list[list[int]]:
        return [[0] * 24 for _ in days]

    nuisance, marks, complaints = grid(), grid(), grid()

    def add(target: list[list[int]], t_ms: int) -> None:
        if t_ms > now_ms:
            return
        local = dt.datetime.fromtimestamp(t_ms / 1000, tz)
        i = index.get(local.date())
        if i is not None:
            target[i][local.hour] += 1

    for m in minutes:
        if m.laeq_db > limits.limit_db(limits.period_at(m.t_ms)):
            add(nuisance, m.t_ms)
    for t in marks_ms:
        add(marks, t)
    for t in complaints_ms:
        add(complaints, t)
    return WeekGrid(days, nuisance, marks, complaints)
