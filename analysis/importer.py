"""Import complaints and enforcement visits; the ``import`` subcommand.

Formats
-------
Complaints CSV
    ``id, received_at, incident_start, incident_end, site, category, source``;
    ``incident_end``, ``category`` and ``source`` may be empty.
Visits CSV
    ``id, arrived_at, left_at, site, outcome, complaint_ids``; ``outcome`` one of
    ``nothing_found``, ``warning``, ``fine``, ``other``; ``complaint_ids``
    ``;``-separated, may be empty.
Open311 GeoReport v2 ``requests.json``
    A JSON list of service requests: ``service_request_id``, ``requested_datetime``,
    ``service_name``/``service_code``, ``address``, ``lat``, ``long``. The incident
    time is the request time. A site-mapping file assigns the site.
Amsterdam Signalen export
    The API's JSON (``results`` or GeoJSON ``features``) or the data-warehouse CSV
    (``id, created_at, incident_date_start, incident_date_end``, categories, ``lat``,
    ``lon``, address). That CSV has been seen with the longitude in the column called
    ``lat``: a pair whose "lat" lies in the Dutch longitude range (3.2-7.3) and whose
    "lon" lies in the latitude range (50.7-53.6) is swapped back.

Times are ISO 8601; without an offset they are Europe/Amsterdam local time
(:mod:`klankkast.analysis.timeutil`: a time in the spring-forward gap is an error, one
in the repeated autumn hour means its first occurrence).

Site mapping (``--site-map FILE``, TOML)::

    max_distance_m = 150           # default radius of every site
    [[site]]
    id = "yard1"
    lat = 52.3745
    lon = 4.8820
    radius_m = 100                 # optional
    addresses = ["Westerstraat 12", "Binnenplaats De Ster"]
    # optional: where the site's nodes hang; a complaint with a position is then
    # corroborated by the episodes of the nearest node (each node analysed on its own)
    nodes = [{id = "yard1-n1", lat = 52.37452, lon = 4.88190},
             {id = "yard1-n2", lat = 52.37441, lon = 4.88215}]

A complaint without a site column is assigned to the site whose address or name
its address starts with (case and punctuation ignored), else to the nearest site
within its radius; complaints that match no site are counted and left out. When the
site lists node positions and the complaint has a position, the complaint keeps the
id of the nearest node (``Complaint.node``), not the position.

Privacy: only the fields above are kept. Names, e-mail addresses, phone numbers,
free text (descriptions) and even the address (after it has served to find the
site) are dropped at import and never written anywhere.

Nothing is half-imported: every problem is collected (file, line, column, value)
and the whole import fails with all of them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from klankkast.analysis._checks import assign_sites, collapse, unknown_site_message
from klankkast.analysis.csvfile import detect_separator, read_text
from klankkast.analysis.errors import AnalysisError, InputError, InputErrors
from klankkast.analysis.import_csv import read_complaints_csv, read_visits_csv
from klankkast.analysis.import_open311 import open311_records
from klankkast.analysis.import_signalen import signalen_csv_records, signalen_json_records
from klankkast.analysis.records import (
    COMPLAINT_COLUMNS,
    OUTCOMES,
    VISIT_COLUMNS,
    Complaint,
    Visit,
)
from klankkast.analysis.sitemap import (
    Site,
    SiteMap,
    fix_swapped_lat_lon,
    haversine_m,
    known_sites_of,
    load_site_map,
)

__all__ = [
    "COMPLAINT_COLUMNS",
    "OUTCOMES",
    "VISIT_COLUMNS",
    "Complaint",
    "Site",
    "SiteMap",
    "Visit",
    "add_arguments",
    "collapse",
    "complaint_lines",
    "detect_format",
    "fix_swapped_lat_lon",
    "haversine_m",
    "known_sites_of",
    "load_complaints",
    "load_site_map",
    "load_visits",
    "main",
    "read_complaints_csv",
    "read_visits_csv",
    "unknown_site_message",
    "visit_lines",
]


def detect_format(path: str | Path) -> str:
    """``csv`` (the documented columns), ``signalen`` or ``open311`` from the file itself."""
    head = read_text(path).text[:4096]
    stripped = head.lstrip()
    if stripped.startswith(("[", "{")):
        if "service_request_id" in head or "requested_datetime" in head:
            return "open311"
        return "signalen"
    first = stripped.splitlines()[0] if stripped else ""
    cols = [c.strip().strip('"') for c in first.split(detect_separator(first))]
    if "received_at" in cols or "arrived_at" in cols:
        return "csv"
    if "created_at" in cols:
        return "signalen"
    return "csv"


def load_complaints(
    path: str | Path,
    *,
    fmt: str = "auto",
    site_map: SiteMap | None = None,
    known_sites: set[str] | None = None,
) -> tuple[list[Complaint], int]:
    """Complaints of any supported format; returns (complaints, records matching no site)."""
    name = str(path)
    if not Path(path).is_file():
        raise InputErrors([InputError(name, None, None, None, "file not found")])
    kind = detect_format(path) if fmt == "auto" else fmt
    if kind == "csv":
        return read_complaints_csv(path, known_sites), 0
    text = read_text(path).text
    first = text.lstrip()[:1]
    if kind == "open311" or (kind == "signalen" and first in ("[", "{")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputErrors(
                [InputError(name, err.lineno, None, None, f"not valid JSON: {err.msg}")]
            ) from None
        records = (
            open311_records(name, doc) if kind == "open311" else signalen_json_records(name, doc)
        )
    elif kind == "signalen":
        records = signalen_csv_records(name)
    else:
        raise InputErrors(
            [InputError(name, None, None, kind, "format must be auto, csv, open311 or signalen")]
        )
    return assign_sites(name, records, site_map, known_sites)


def load_visits(
    path: str | Path,
    *,
    known_sites: set[str] | None = None,
    complaint_ids: set[str] | None = None,
) -> list[Visit]:
    """Visits from the documented CSV."""
    if not Path(path).is_file():
        raise InputErrors([InputError(str(path), None, None, None, "file not found")])
    return read_visits_csv(path, known_sites, complaint_ids)


# ------------------------------------------------------------------- InfluxDB
def complaint_lines(complaints: Iterable[Complaint]) -> list[str]:
    """``complaint`` points at the incident start: tags id, site, category, source; fields
    received (ms), incident_end (ms, when known), lag_s (received - incident start).

    The id is a tag so that two complaints with the same time and tags stay two points."""
    from klankkast.influx import M_COMPLAINT, line

    out = []
    for c in complaints:
        fields: dict[str, float | int | str | bool] = {
            "received": c.received_ms,
            "lag_s": (c.received_ms - c.incident_start_ms) / 1000.0,
        }
        if c.incident_end_ms is not None:
            fields["incident_end"] = c.incident_end_ms
        tags = {"id": c.id, "site": c.site, "category": c.category, "source": c.source}
        out.append(line(M_COMPLAINT, tags, fields, c.incident_start_ms))
    return out


def visit_lines(visits: Iterable[Visit]) -> list[str]:
    """``visit`` points at arrival: tags id, site, outcome; fields left (ms), duration_s,
    complaint_ids (``;``-separated)."""
    from klankkast.influx import M_VISIT, line

    out = []
    for v in visits:
        fields: dict[str, float | int | str | bool] = {
            "left": v.left_ms,
            "duration_s": (v.left_ms - v.arrived_ms) / 1000.0,
            "complaint_ids": ";".join(v.complaint_ids),
        }
        tags = {"id": v.id, "site": v.site, "outcome": v.outcome}
        out.append(line(M_VISIT, tags, fields, v.arrived_ms))
    return out


# ------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``klankkast-analyze import``."""
    parser.description = (
        "Validate complaints and visits (CSV, Open311 requests.json, Signalen export), "
        "report every problem with file, line and column, and optionally write them to "
        "InfluxDB (measurements complaint and visit). Personal data is dropped."
    )
    parser.add_argument("--complaints", metavar="FILE", help="complaints file")
    parser.add_argument("--visits", metavar="FILE", help="visits CSV")
    parser.add_argument(
        "--format",
        choices=("auto", "csv", "open311", "signalen"),
        default="auto",
        help="format of --complaints (default: detected from the file)",
    )
    parser.add_argument(
        "--site-map", metavar="FILE", help="site-mapping TOML (addresses, positions)"
    )
    parser.add_argument(
        "--sites",
        metavar="A,B",
        help="comma-separated list of known site ids (else from --site-map)",
    )
    parser.add_argument(
        "--influx",
        metavar="URL",
        help="write to InfluxDB: influxdb+http(s)://[user@]host:port/DATABASE "
        "(password: --influx-password-file)",
    )


def main(args: argparse.Namespace) -> int:
    """Run ``klankkast-analyze import``."""
    if not args.complaints and not args.visits:
        print(
            "klankkast-analyze import: give --complaints FILE and/or --visits FILE", file=sys.stderr
        )
        return 2
    try:
        site_map = load_site_map(args.site_map) if args.site_map else None
        known = known_sites_of(site_map, args.sites)
        complaints: list[Complaint] = []
        unmatched = 0
        if args.complaints:
            complaints, unmatched = load_complaints(
                args.complaints, fmt=args.format, site_map=site_map, known_sites=known
            )
        visits: list[Visit] = []
        if args.visits:
            ids = {c.id for c in complaints} if args.complaints else None
            visits = load_visits(args.visits, known_sites=known, complaint_ids=ids)
        print(
            f"{len(complaints)} complaints ({unmatched} outside every site, left out), "
            f"{len(visits)} visits: valid"
        )
        if args.influx:
            from klankkast.analysis.levels import write_lines

            n = write_lines(args.influx, complaint_lines(complaints) + visit_lines(visits))
            print(f"wrote {n} points to {args.influx.split('@')[-1]}")
    except InputErrors as err:
        for e in err.errors:
            print(str(e), file=sys.stderr)
        print(f"nothing imported: {len(err.errors)} problem(s)", file=sys.stderr)
        return 1
    except AnalysisError as err:
        print(str(err), file=sys.stderr)
        return 1
    return 0
