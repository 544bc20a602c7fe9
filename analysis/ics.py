"""iCalendar (RFC 5545) for the weekly patrol plan.

One ``VEVENT`` per plan window, repeating weekly (``RRULE:FREQ=WEEKLY;BYDAY=..``) on
the Europe/Amsterdam wall clock: ``DTSTART;TZID=Europe/Amsterdam:...`` with a
``VTIMEZONE`` that carries the EU summer-time rules (last Sunday of March 02:00 CET
-> 03:00 CEST, last Sunday of October 03:00 CEST -> 02:00 CET; Directive 2000/84/EC),
so a Friday 22:00 visit stays at 22:00 local time across the clock changes in every
calendar application (RFC 5545 §3.6.5, §3.8.5.3).

Standard library only; written by hand so the output is byte-stable (CRLF line
ends, lines folded at 75 octets, TEXT values escaped; RFC 5545 §3.1, §3.3.11).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["IcsEvent", "events_for_windows", "render_calendar", "weekly_event"]

TZID: Final = "Europe/Amsterdam"
_BYDAY: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_PRODID: Final = "-//klankkast//patrol plan//EN"

_VTIMEZONE: Final = (
    "BEGIN:VTIMEZONE",
    f"TZID:{TZID}",
    "X-LIC-LOCATION:Europe/Amsterdam",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)


@dataclass(frozen=True)
class IcsEvent:
    """A weekly event: first local start, duration, title and description."""

    uid: str
    start_local: dt.datetime  # naive, Europe/Amsterdam wall clock
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


def _escape(text: str) -> str:
    """TEXT escaping of RFC 5545 §3.3.11."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 character (§3.1)."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    parts: list[str] = []
    current = b""
    limit = 75
    for ch in line:
        b = ch.encode("utf-8")
        if len(current) + len(b) > limit:
            parts.append(current.decode("utf-8"))
            current = b""
            limit = 74  # continuation lines start with one space
        current += b
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts)


def _event_lines(ev: IcsEvent, stamp: str) -> list[str]:
    rrule = f"RRULE:FREQ=WEEKLY;BYDAY={_BYDAY[ev.start_local.weekday()]}"
    if ev.count is not None:
        rrule += f";COUNT={ev.count}"
    hours, minutes = divmod(ev.duration_min, 60)
    duration = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    lines = [
        "BEGIN:VEVENT",
        f"UID:{ev.uid}",
        f"DTSTAMP:{stamp}",
        f"DTSTART;TZID={TZID}:{ev.start_local.strftime('%Y%m%dT%H%M%S')}",
        f"DURATION:{duration if duration != 'PT' else 'PT0M'}",
        rrule,
        f"SUMMARY:{_escape(ev.summary)}",
    ]
    if ev.description:
        lines.append(f"DESCRIPTION:{_escape(ev.description)}")
    lines += ["TRANSP:OPAQUE", "END:VEVENT"]
    return lines


def render_calendar(
    events: Iterable[IcsEvent], *, name: str = "klankkast patrol plan", now: dt.datetime
) -> str:
    """A complete ``VCALENDAR`` with the Europe/Amsterdam ``VTIMEZONE`` and the events.

    ``now`` (aware) becomes every event's ``DTSTAMP``.
    """
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    lines: list[str] = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{_PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_escape(name)}",
        f"X-WR-TIMEZONE:{TZID}",
        *_VTIMEZONE,
    ]
    for ev in events:
        lines += _event_lines(ev, stamp)
    lines.append("END:VCALENDAR")
    return "".join(_fold(x) + "\r\n" for x in lines)


def events_for_windows(
    windows: Sequence[Mapping[str, Any]],
    *,
    first_date: dt.date,
    count: int | None,
) -> list[IcsEvent]:
    """Events for the ``windows`` of a ``plan.json`` document."""
    from klankkast.analysis.patrol import WEEKDAYS

    out = []
    for w in windows:
        weekday = WEEKDAYS.index(str(w["weekday"]))
        hh, mm = str(w["start"]).split(":")
        prob = float(w["probability"])
        lo, hi = w.get("probability_low"), w.get("probability_high")
        interval = (
            f" ({float(lo):.0%}-{float(hi):.0%})" if lo is not None and hi is not None else ""
        )
        out.append(
            weekly_event(
                site=str(w["site"]),
                weekday=weekday,
                start_min=int(hh) * 60 + int(mm),
                duration_min=int(w["duration_min"]),
                first_date=first_date,
                summary=f"Patrol {w['site']}: nuisance likely ({prob:.0%})",
                description=(
                    f"Site {w['site']}, {w['weekday']} {w['start']}-{w['end']} local time. "
                    f"Probability that nuisance is going on: {prob:.0%}{interval}, "
                    f"from {w.get('observed_weeks', '?')} observed weeks. klankkast patrol plan."
                ),
                count=count,
            )
        )
    return out
