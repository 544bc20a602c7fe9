"""iCalendar (RFC 5545) for the weekly patrol plan, written with the ``icalendar`` package.

One ``VEVENT`` per plan window, repeating weekly (``RRULE:FREQ=WEEKLY;BYDAY=..``) on
the wall clock of the rules' time zone: ``DTSTART;TZID=<zone>:...`` with a
``VTIMEZONE`` generated from the zone database for the span of the events
(``icalendar.Timezone.from_tzid``), so a Friday 22:00 visit stays at 22:00 local
time across the clock changes in every calendar application (RFC 5545 §3.6.5,
§3.8.5.3). The library does the line folding, the TEXT escaping and the CRLF line
ends (§3.1, §3.3.11).

The events repeat until the next plan is due (``count`` weeks, ``--valid-weeks``,
default 4): a plan is refitted on new data, and a calendar that keeps sending
officers to last season's windows is worse than none. Titles and descriptions follow
``--lang`` (Dutch by default).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

import icalendar

from klankkast.analysis.rules import Rules

__all__ = ["IcsEvent", "event_texts", "events_for_windows", "render_calendar", "weekly_event"]

#: the default zone: the rules' default timezone (plan.py passes the rules' own)
TZID: Final = Rules().timezone
_BYDAY: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_PRODID: Final = "-//klankkast//patrol plan//NL"
_DAYS: Final = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
}
_EN_DAYS: Final = _DAYS["en"]


@dataclass(frozen=True)
class IcsEvent:
    """A weekly event: first local start, duration, title and description."""

    uid: str
    start_local: dt.datetime  # naive, on the wall clock of the calendar's zone
    duration_min: int
    summary: str
    description: str = ""
    count: int | None = None  # number of weekly occurrences; None = no end


def weekly_event(
    *,
    site: str,
    weekday: int,
    start_min: int,
    duration_min: int,
    first_date: dt.date,
    summary: str,
    description: str = "",
    count: int | None = None,
) -> IcsEvent:
    """The weekly event of a plan window starting on or after ``first_date``.

    ``weekday`` 0 = Monday; ``start_min`` minutes after local midnight.
    """
    ahead = (weekday - first_date.weekday()) % 7
    day = first_date + dt.timedelta(days=ahead)
    start = dt.datetime.combine(day, dt.time(start_min // 60, start_min % 60))
    key = f"{site}|{weekday}|{start_min}|{duration_min}|{first_date.isoformat()}"
    uid = hashlib.sha1(key.encode()).hexdigest()[:20] + "@klankkast"
    return IcsEvent(uid, start, duration_min, summary, description, count)


def render_calendar(
    events: Iterable[IcsEvent],
    *,
    name: str = "klankkast patrol plan",
    now: dt.datetime,
    tz: str = TZID,
) -> str:
    """A complete ``VCALENDAR`` with the zone's ``VTIMEZONE`` and the events.

    ``now`` (aware) becomes every event's ``DTSTAMP``; ``tz`` is the IANA zone of the
    events' wall clock (the rules' ``timezone``).
    """
    zone = ZoneInfo(tz)
    evs = list(events)
    cal = icalendar.Calendar()
    cal.add("prodid", _PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", tz)
    if evs:
        first = min(e.start_local for e in evs).date() - dt.timedelta(days=7)
        weeks = max((e.count or 104) for e in evs)
        last = max(e.start_local for e in evs).date() + dt.timedelta(weeks=weeks + 1)
    else:
        first = now.date()
        last = first + dt.timedelta(days=365)
    cal.add_component(icalendar.Timezone.from_tzid(tz, first_date=first, last_date=last))
    stamp = now.astimezone(dt.UTC)
    for e in evs:
        ev = icalendar.Event()
        ev.add("uid", e.uid)
        ev.add("dtstamp", stamp)
        ev.add("dtstart", e.start_local.replace(tzinfo=zone))
        ev.add("duration", dt.timedelta(minutes=e.duration_min))
        rule: dict[str, Any] = {"freq": "weekly", "byday": _BYDAY[e.start_local.weekday()]}
        if e.count is not None:
            rule["count"] = e.count
        ev.add("rrule", rule)
        ev.add("summary", e.summary)
        if e.description:
            ev.add("description", e.description)
        ev.add("transp", "OPAQUE")
        cal.add_component(ev)
    text: str = cal.to_ical().decode("utf-8")
    return text


def event_texts(
    window: Mapping[str, Any], lang: str, weeks_of_history: int | None
) -> tuple[str, str]:
    """Title and description of a window's event in ``lang`` (``nl`` or ``en``)."""
    site = str(window["site"])
    prob = float(window["probability"])
    lo, hi = window.get("probability_low"), window.get("probability_high")
    interval = f" ({float(lo):.0%}–{float(hi):.0%})" if lo is not None and hi is not None else ""
    weeks = window.get("observed_weeks", weeks_of_history)
    day = _DAYS[lang][_EN_DAYS.index(str(window["weekday"]))]
    start, end = window["start"], window["end"]
    if lang == "nl":
        summary = f"Controle {site}: overlast waarschijnlijk ({prob:.0%})"
        description = (
            f"Binnenplaats {site}, {day} {start}–{end}. Kans dat er dan overlast gemeten wordt: "
            f"{prob:.0%}{interval}, op grond van {weeks} {'week' if weeks == 1 else 'weken'} "
            "metingen. Geldt tot het "
            "volgende controleplan. klankkast controleplan."
        )
    else:
        summary = f"Patrol {site}: nuisance likely ({prob:.0%})"
        description = (
            f"Courtyard {site}, {day} {start}–{end}. Probability that nuisance is measured "
            f"then: {prob:.0%}{interval}, based on {weeks} {'week' if weeks == 1 else 'weeks'} "
            "of measurements. Valid until "
            "the next patrol plan. klankkast patrol plan."
        )
    return summary, description


def events_for_windows(
    windows: Sequence[Mapping[str, Any]],
    *,
    first_date: dt.date,
    count: int | None,
    lang: str = "en",
    weeks_of_history: int | None = None,
) -> list[IcsEvent]:
    """Events for the ``windows`` of a ``plan.json`` document."""
    out = []
    for w in windows:
        weekday = _EN_DAYS.index(str(w["weekday"]))
        hh, mm = str(w["start"]).split(":")
        summary, description = event_texts(w, lang, weeks_of_history)
        out.append(
            weekly_event(
                site=str(w["site"]),
                weekday=weekday,
                start_min=int(hh) * 60 + int(mm),
                duration_min=int(w["duration_min"]),
                first_date=first_date,
                summary=summary,
                description=description,
                count=count,
            )
        )
    return out
