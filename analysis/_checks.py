"""Checks shared by the complaint and visit readers: times, ids, sites, headers.

Every problem becomes an :class:`~klankkast.analysis.errors.InputError` with file,
line, column and value; :func:`collapse` says a problem found on many lines once.
Also the record of a foreign format (Open311, Signalen) before its site is assigned
(:class:`RawRecord`, :func:`assign_sites`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from klankkast.analysis.csvfile import parse_float, read_csv_rows, read_text
from klankkast.analysis.errors import InputError, InputErrors, TimeParseError
from klankkast.analysis.records import Complaint
from klankkast.analysis.sitemap import SiteMap, normalise
from klankkast.analysis.timeutil import parse_time_ms

__all__ = [
    "RawRecord",
    "assign_sites",
    "check_header",
    "check_id",
    "check_site",
    "collapse",
    "read_csv",
    "to_float",
    "to_time",
    "unknown_site_message",
]


def read_csv(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows; ``;``/``,``/tab separators, UTF-8 (BOM or not) or cp1252
    (:mod:`klankkast.analysis.csvfile`)."""
    header, rows, _ = read_csv_rows(read_text(path).text)
    return header, rows


def to_time(
    errors: list[InputError], path: str, line: int, col: str, raw: str, *, optional: bool = False
) -> int | None:
    """UTC ms of an ISO 8601 time (no offset: local time, see timeutil); None and an
    error when it cannot be parsed or does not exist."""
    if not raw:
        if optional:
            return None
        errors.append(InputError(path, line, col, raw, "a time is required"))
        return None
    try:
        return int(parse_time_ms(raw))
    except TimeParseError as err:
        errors.append(InputError(path, line, col, raw, str(err)))
        return None


def check_header(
    path: str, header: Sequence[str], required: Sequence[str], allowed: Sequence[str]
) -> InputError | None:
    missing = [c for c in required if c not in header]
    if missing:
        return InputError(
            path,
            1,
            ",".join(missing),
            ",".join(header),
            f"missing column(s) {', '.join(missing)}; expected {', '.join(allowed)}",
        )
    return None


def check_id(
    errors: list[InputError], seen: dict[str, int], path: str, line: int, raw: str
) -> bool:
    if not raw:
        errors.append(InputError(path, line, "id", raw, "id must not be empty"))
        return False
    if raw in seen:
        errors.append(
            InputError(path, line, "id", raw, f"duplicate id (first on line {seen[raw]})")
        )
        return False
    seen[raw] = line
    return True


def check_site(
    errors: list[InputError], known: set[str] | None, path: str, line: int, raw: str
) -> bool:
    if not raw:
        errors.append(InputError(path, line, "site", raw, "site must not be empty"))
        return False
    if known is not None and raw not in known:
        errors.append(InputError(path, line, "site", raw, unknown_site_message(raw, known)))
        return False
    return True


def unknown_site_message(raw: str, known: set[str]) -> str:
    """``unknown site; did you mean 'yard1'? known: …`` (the nearest known name, by
    spelling, case and punctuation ignored; no suggestion when none is close)."""
    allowed = ", ".join(sorted(known)[:20])
    by_norm = {normalise(k).replace(" ", ""): k for k in known}
    norm = normalise(raw).replace(" ", "")
    guess = by_norm.get(norm)
    if guess is None:
        close = difflib.get_close_matches(norm, list(by_norm), n=1, cutoff=0.6)
        guess = by_norm[close[0]] if close else None
    hint = f"did you mean {guess!r}? " if guess else ""
    return f"unknown site; {hint}known: {allowed}"


def collapse(errors: list[InputError], keep: int = 3) -> list[InputError]:
    """The same problem (file, column, value, message) on many lines is reported once,
    with the lines it is on: 2,000 rows with one bad site are one line, not 2,000."""
    groups: dict[tuple[str, str | None, str, str], list[InputError]] = {}
    for e in errors:
        groups.setdefault((e.path, e.column, repr(e.value), e.message), []).append(e)
    out = []
    for group in groups.values():
        first = group[0]
        if len(group) <= keep:
            out.extend(group)
            continue
        lines = [e.line for e in group if e.line is not None]
        shown = ", ".join(str(x) for x in lines[:5]) + (", …" if len(lines) > 5 else "")
        out.append(
            InputError(
                first.path,
                None,
                first.column,
                first.value,
                f"{first.message} — on {len(group)} lines ({shown})",
            )
        )
    return out


def to_float(value: Any) -> float | None:
    """A finite number, decimal comma accepted (:func:`csvfile.parse_float`)."""
    return parse_float(value)


@dataclass
class RawRecord:
    """A foreign record before site assignment (personal data already gone)."""

    line: int | None
    id: str
    received: str
    start: str
    end: str
    category: str
    source: str
    address: str | None
    lat: float | None
    lon: float | None
    site: str = ""


def assign_sites(
    path: str, records: list[RawRecord], site_map: SiteMap | None, known: set[str] | None
) -> tuple[list[Complaint], int]:
    """Complaints of foreign records with their sites (from the record or the site
    map); returns (complaints, records matching no site). Records without a site and
    no site map are one file-level error."""
    errors: list[InputError] = []
    seen: dict[str, int] = {}
    out: list[Complaint] = []
    unmatched = 0
    no_site = [r for r in records if not r.site]
    if no_site and site_map is None:
        # a problem of the whole file: said once, not once per record
        what = (
            "has no site column" if len(no_site) == len(records) else "has records without a site"
        )
        errors.append(
            InputError(
                path, None, "site", None,
                f"the file {what} ({len(no_site)} record(s)); pass --site-map FILE to assign "
                "sites by address or position",
            )
        )  # fmt: skip
    for r in records:
        line = r.line
        site = r.site
        if not site:
            if site_map is None:
                continue
            site = site_map.match(r.address, r.lat, r.lon) or ""
            if not site:
                unmatched += 1
                continue
        node = site_map.nearest_node(site, r.lat, r.lon) if site_map is not None else ""
        n0 = len(errors)
        if r.id in seen:
            errors.append(
                InputError(path, line, "id", r.id, f"duplicate id (first at record {seen[r.id]})")
            )
        elif not r.id:
            errors.append(InputError(path, line, "id", r.id, "id must not be empty"))
        seen.setdefault(r.id, line or 0)
        received = to_time(errors, path, line or 0, "received_at", r.received)
        start = to_time(errors, path, line or 0, "incident_start", r.start)
        end = to_time(errors, path, line or 0, "incident_end", r.end, optional=True)
        check_site(errors, known, path, line or 0, site)
        if len(errors) == n0 and received is not None and start is not None:
            if end is not None and end < start:
                end = None
            out.append(Complaint(r.id, received, start, end, site, r.category, r.source, node))
    if errors:
        raise InputErrors(collapse(errors))
    return out, unmatched
