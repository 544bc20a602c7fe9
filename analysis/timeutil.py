"""Time at the edges: parsing user timestamps, Europe/Amsterdam local time.

Everything inside the analysis is UTC milliseconds since the epoch. Local time
appears only where people write or read it: timestamps in complaint and visit
files, ``--from`` / ``--to`` on the command line, and reports.

Rules for a timestamp written without an offset (local Europe/Amsterdam time):

* a local time in the spring-forward gap (last Sunday of March, 02:00-02:59)
  does not exist: :class:`~klankkast.analysis.errors.TimeParseError`;
* a local time in the repeated autumn hour (last Sunday of October,
  02:00-02:59 happens twice) is ambiguous and resolved to the **first**
  occurrence, still on summer time (CEST, UTC+2). Write an explicit offset
  (``+01:00``) to mean the second one.

A timestamp with an offset or ``Z`` is taken as written.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from klankkast.analysis.errors import TimeParseError

__all__ = [
    "LOCAL_TZ",
    "format_local",
    "is_ambiguous",
    "local_datetime",
    "parse_time_ms",
    "to_ms",
]

LOCAL_TZ = "Europe/Amsterdam"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def to_ms(when: dt.datetime) -> int:
    """UTC milliseconds of an aware datetime."""
    if when.tzinfo is None:
        raise TimeParseError(f"datetime must be timezone-aware; got {when.isoformat()}")
    return (when - _EPOCH) // dt.timedelta(milliseconds=1)


def is_ambiguous(naive: dt.datetime, tz: str = LOCAL_TZ) -> bool:
    """True when the local wall time happens twice (the repeated autumn hour)."""
    zone = _zone(tz)
    a = naive.replace(tzinfo=zone, fold=0).utcoffset()
    b = naive.replace(tzinfo=zone, fold=1).utcoffset()
    return a != b and _exists(naive, zone)


def _exists(naive: dt.datetime, zone: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=zone, fold=0)
    back = aware.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
    return back == naive


def localize(naive: dt.datetime, tz: str = LOCAL_TZ) -> dt.datetime:
    """Attach the local zone to a naive wall time by the rules in the module docstring."""
    zone = _zone(tz)
    if not _exists(naive, zone):
        raise TimeParseError(
            f"{naive.isoformat(sep=' ')} does not exist in {tz} (clocks go forward); "
            "give an explicit UTC offset"
        )
    return naive.replace(tzinfo=zone, fold=0)


def parse_time_ms(text: str, tz: str = LOCAL_TZ) -> int:
    """Parse an ISO 8601 timestamp (or a date) to UTC milliseconds.

    ``2026-03-29T02:30`` (no offset) is local ``tz`` time and raises
    :class:`TimeParseError` because it falls in the spring-forward gap;
    ``2026-10-25T02:30`` is the first (CEST) occurrence = ``00:30Z``;
    ``2026-10-25T02:30+01:00`` is the second one = ``01:30Z``. A date alone
    (``2026-06-01``) means local midnight. A space may replace the ``T``.
    """
    raw = text.strip()
    if not raw:
        raise TimeParseError("empty timestamp; expected ISO 8601 such as 2026-06-01T22:15")
    candidate = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        when = dt.datetime.fromisoformat(candidate)
    except ValueError:
        raise TimeParseError(
            f"{raw!r} is not an ISO 8601 timestamp; expected e.g. 2026-06-01T22:15 "
            "or 2026-06-01T22:15:00+02:00"
        ) from None
    if when.tzinfo is None:
        when = localize(when, tz)
    return to_ms(when)


def local_datetime(t_ms: int, tz: str = LOCAL_TZ) -> dt.datetime:
    """Aware local datetime of UTC milliseconds."""
    return (_EPOCH + dt.timedelta(milliseconds=int(t_ms))).astimezone(_zone(tz))


def format_local(t_ms: int, tz: str = LOCAL_TZ, *, seconds: bool = False) -> str:
    """``YYYY-MM-DD HH:MM`` local time with its offset, for reports."""
    when = local_datetime(t_ms, tz)
    fmt = "%Y-%m-%d %H:%M:%S%z" if seconds else "%Y-%m-%d %H:%M%z"
    text = when.strftime(fmt)
    return text[:-2] + ":" + text[-2:]
