"""plan.ics: parsed by the real ``icalendar`` package; wall-clock times survive DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
from dateutil import rrule

from klankkast.analysis import ics

AMS = ZoneInfo("Europe/Amsterdam")
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _calendar(first_date: dt.date, count: int | None = 12) -> icalendar.Calendar:
    windows = [
        {"site": "yard1", "weekday": "Friday", "start": "22:00", "end": "00:00",
         "duration_min": 120, "probability": 0.82, "probability_low": 0.6,
         "probability_high": 0.95, "observed_weeks": 12},
        {"site": "yard, 2; \"back\"", "weekday": "Sunday", "start": "01:30", "end": "02:30",
         "duration_min": 60, "probability": 0.5},
    ]  # fmt: skip
    events = ics.events_for_windows(windows, first_date=first_date, count=count)
    text = ics.render_calendar(events, now=NOW)
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return icalendar.Calendar.from_ical(text)


def _occurrences(event: icalendar.Event) -> list[dt.datetime]:
    start = event.decoded("dtstart")
    rule = event["rrule"].to_ical().decode()
    return list(rrule.rrulestr(rule, dtstart=start))


def test_calendar_parses_with_timezone_and_weekly_rules() -> None:
    cal = _calendar(dt.date(2026, 3, 1))
    tzs = cal.walk("VTIMEZONE")
    assert len(tzs) == 1 and str(tzs[0]["tzid"]) == "Europe/Amsterdam"
    events = cal.walk("VEVENT")
    assert len(events) == 2
    fri = events[0]
    start = fri.decoded("dtstart")
    assert start.tzinfo is not None
    assert (start.year, start.month, start.day, start.hour, start.minute) == (2026, 3, 6, 22, 0)
    assert start.weekday() == 4
    assert fri.decoded("duration") == dt.timedelta(hours=2)
    assert str(fri["rrule"]["freq"][0]) == "WEEKLY" and fri["rrule"]["byday"][0] == "FR"
    assert "yard1" in str(fri["summary"])
    # TEXT escaping survives the round trip
    assert 'yard, 2; "back"' in str(events[1]["summary"])
    assert len({str(e["uid"]) for e in events}) == 2


def test_times_stay_on_the_wall_clock_across_both_dst_changes() -> None:
    """Friday 22:00 local: 21:00 UTC in winter (CET, +1), 20:00 UTC in summer (CEST, +2).

    Spring change 2026-03-29, autumn change 2026-10-25.
    """
    cal = _calendar(dt.date(2026, 3, 1), count=40)
    fri = cal.walk("VEVENT")[0]
    occ = _occurrences(fri)
    assert len(occ) == 40
    for o in occ:
        local = o.astimezone(AMS)
        assert (local.weekday(), local.hour, local.minute) == (4, 22, 0)
    utc_hours = {o.date(): o.astimezone(dt.UTC).hour for o in occ}
    assert utc_hours[dt.date(2026, 3, 27)] == 21  # before the spring change
    assert utc_hours[dt.date(2026, 4, 3)] == 20  # after it
    assert utc_hours[dt.date(2026, 10, 23)] == 20  # before the autumn change
    assert utc_hours[dt.date(2026, 10, 30)] == 21  # after it


def test_vtimezone_rules_give_the_real_offsets() -> None:
    """The embedded VTIMEZONE alone (not the system zone database) yields CET/CEST."""
    cal = _calendar(dt.date(2026, 3, 1))
    tz = cal.walk("VTIMEZONE")[0].to_tz()
    for when, hours in (
        (dt.datetime(2026, 1, 15, 12), 1),
        (dt.datetime(2026, 3, 29, 1, 30), 1),
        (dt.datetime(2026, 3, 29, 3, 30), 2),
        (dt.datetime(2026, 7, 1, 12), 2),
        (dt.datetime(2026, 10, 25, 3, 30), 1),
        (dt.datetime(2026, 12, 1, 12), 1),
    ):
        assert when.replace(tzinfo=tz).utcoffset() == dt.timedelta(hours=hours), when


def test_first_occurrence_is_on_or_after_the_first_date() -> None:
    ev = ics.weekly_event(
        site="a", weekday=4, start_min=22 * 60, duration_min=60,
        first_date=dt.date(2026, 3, 6), summary="x",
    )  # fmt: skip
    assert ev.start_local == dt.datetime(2026, 3, 6, 22, 0)  # that Friday itself
    ev = ics.weekly_event(
        site="a", weekday=0, start_min=30, duration_min=60,
        first_date=dt.date(2026, 3, 6), summary="x",
    )  # fmt: skip
    assert ev.start_local == dt.datetime(2026, 3, 9, 0, 30)  # the next Monday
