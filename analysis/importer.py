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
import csv
import io
import json
import math
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klankkast.analysis.errors import AnalysisError, InputError, InputErrors, TimeParseError
from klankkast.analysis.timeutil import parse_time_ms

__all__ = [
    "COMPLAINT_COLUMNS",
    "OUTCOMES",
    "VISIT_COLUMNS",
    "Complaint",
    "Site",
    "SiteMap",
    "Visit",
    "add_arguments",
    "complaint_lines",
    "load_complaints",
    "load_site_map",
    "load_visits",
    "main",
    "visit_lines",
]

COMPLAINT_COLUMNS = (
    "id", "received_at", "incident_start", "incident_end", "site", "category", "source",
)  # fmt: skip
_COMPLAINT_REQUIRED = ("id", "received_at", "incident_start", "site")
VISIT_COLUMNS = ("id", "arrived_at", "left_at", "site", "outcome", "complaint_ids")
_VISIT_REQUIRED = ("id", "arrived_at", "left_at", "site", "outcome")
OUTCOMES = ("nothing_found", "warning", "fine", "other")
_NL_LAT = (50.7, 53.6)
_NL_LON = (3.2, 7.3)


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint without personal data (times UTC ms)."""

    id: str
    received_ms: int
    incident_start_ms: int
    incident_end_ms: int | None
    site: str
    category: str = ""
    source: str = ""
    #: nearest node of the site to the complaint's position (site map with node
    #: positions), else ""; the position itself is not kept
    node: str = ""


@dataclass(frozen=True, slots=True)
class Visit:
    """An enforcement visit (times UTC ms)."""

    id: str
    arrived_ms: int
    left_ms: int
    site: str
    outcome: str
    complaint_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Site:
    """A site of the mapping file."""

    id: str
    lat: float | None
    lon: float | None
    radius_m: float
    addresses: tuple[str, ...] = ()
    #: (node id, lat, lon) of the site's nodes, when the mapping gives them
    nodes: tuple[tuple[str, float, float], ...] = ()


@dataclass
class SiteMap:
    """Sites by id, with address and distance matching."""

    sites: dict[str, Site] = field(default_factory=dict)

    def ids(self) -> set[str]:
        """Known site ids."""
        return set(self.sites)

    def match(self, address: str | None, lat: float | None, lon: float | None) -> str | None:
        """Site of an address or a position; None when nothing matches."""
        if address:
            norm = _normalise(address)
            for site in self.sites.values():
                for pattern in site.addresses:
                    p = _normalise(pattern)
                    if p and (norm == p or norm.startswith(p + " ")):
                        return site.id
        if lat is None or lon is None:
            return None
        best: tuple[float, str] | None = None
        for site in self.sites.values():
            if site.lat is None or site.lon is None:
                continue
            d = haversine_m(lat, lon, site.lat, site.lon)
            if d <= site.radius_m and (best is None or d < best[0]):
                best = (d, site.id)
        return best[1] if best else None

    def nearest_node(self, site: str, lat: float | None, lon: float | None) -> str:
        """Id of the site's node nearest to a position; "" without positions."""
        entry = self.sites.get(site)
        if entry is None or not entry.nodes or lat is None or lon is None:
            return ""
        return min(entry.nodes, key=lambda n: haversine_m(lat, lon, n[1], n[2]))[0]

    def has_node_positions(self) -> bool:
        """Whether any site lists node positions."""
        return any(s.nodes for s in self.sites.values())


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (mean Earth radius 6371.0088 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


def fix_swapped_lat_lon(lat: float, lon: float) -> tuple[float, float]:
    """Undo the Signalen data-warehouse swap: a "lat" in the Dutch longitude range with a
    "lon" in the Dutch latitude range is returned as ``(lon, lat)``."""
    lat_ok = _NL_LAT[0] <= lat <= _NL_LAT[1]
    if not lat_ok and _NL_LON[0] <= lat <= _NL_LON[1] and _NL_LAT[0] <= lon <= _NL_LAT[1]:
        return lon, lat
    return lat, lon


def _site_nodes(
    name: str, where: str, value: Any, errors: list[InputError]
) -> tuple[tuple[str, float, float], ...] | None:
    """``nodes = [{id, lat, lon}, ...]`` of one site; None (and an error) when malformed."""
    allowed = 'a list of {id = "...", lat = degrees, lon = degrees}'
    if not isinstance(value, list):
        errors.append(InputError(name, None, f"{where}.nodes", value, f"must be {allowed}"))
        return None
    out: list[tuple[str, float, float]] = []
    for j, node in enumerate(value):
        ok = (
            isinstance(node, dict)
            and isinstance(node.get("id"), str)
            and bool(node["id"])
            and all(
                isinstance(node.get(k), int | float) and not isinstance(node.get(k), bool)
                for k in ("lat", "lon")
            )
        )
        if not ok or not (-90 <= node["lat"] <= 90 and -180 <= node["lon"] <= 180):
            errors.append(InputError(name, None, f"{where}.nodes[{j}]", node, f"must be {allowed}"))
            return None
        out.append((node["id"], float(node["lat"]), float(node["lon"])))
    return tuple(out)


def load_site_map(path: str | Path) -> SiteMap:
    """Read a site-mapping TOML file (see the module docstring)."""
    name = str(path)
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputErrors(
            [InputError(name, None, None, None, "site-mapping file not found")]
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise InputErrors([InputError(name, None, None, None, f"not valid TOML: {err}")]) from None
    default_r = doc.get("max_distance_m", 150.0)
    errors: list[InputError] = []
    sites: dict[str, Site] = {}
    for i, entry in enumerate(doc.get("site", [])):
        where = f"site[{i}]"
        sid = entry.get("id")
        if not isinstance(sid, str) or not sid:
            errors.append(InputError(name, None, f"{where}.id", sid, "every site needs an id"))
            continue
        if sid in sites:
            errors.append(InputError(name, None, f"{where}.id", sid, "duplicate site id"))
            continue
        lat, lon = entry.get("lat"), entry.get("lon")
        if (lat is None) != (lon is None) or (
            lat is not None and not (-90 <= float(lat) <= 90 and -180 <= float(lon) <= 180)
        ):
            errors.append(
                InputError(name, None, f"{where}.lat/lon", (lat, lon), "need both, in degrees")
            )
            continue
        addresses = entry.get("addresses", [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            errors.append(
                InputError(name, None, f"{where}.addresses", addresses, "must be a list of strings")
            )
            continue
        nodes = _site_nodes(name, where, entry.get("nodes", []), errors)
        if nodes is None:
            continue
        sites[sid] = Site(
            sid,
            None if lat is None else float(lat),
            None if lon is None else float(lon),
            float(entry.get("radius_m", default_r)),
            tuple(addresses),
            nodes,
        )
    if errors:
        raise InputErrors(errors)
    return SiteMap(sites)


# ------------------------------------------------------------------------ CSV
def _read_csv(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    text = Path(path).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for row in reader:
        if not any((v or "").strip() for k, v in row.items() if k is not None):
            continue
        rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}))
    return header, rows


def _time(
    errors: list[InputError], path: str, line: int, col: str, raw: str, *, optional: bool = False
) -> int | None:
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


def _check_header(
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


def _check_id(
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


def _check_site(
    errors: list[InputError], known: set[str] | None, path: str, line: int, raw: str
) -> bool:
    if not raw:
        errors.append(InputError(path, line, "site", raw, "site must not be empty"))
        return False
    if known is not None and raw not in known:
        allowed = ", ".join(sorted(known)[:20])
        errors.append(InputError(path, line, "site", raw, f"unknown site; known: {allowed}"))
        return False
    return True


def read_complaints_csv(path: str | Path, known_sites: set[str] | None = None) -> list[Complaint]:
    """Complaints from the documented CSV; raise :class:`InputErrors` with every problem."""
    name = str(path)
    header, rows = _read_csv(path)
    bad = _check_header(name, header, _COMPLAINT_REQUIRED, COMPLAINT_COLUMNS)
    if bad:
        raise InputErrors([bad])
    errors: list[InputError] = []
    seen: dict[str, int] = {}
    out: list[Complaint] = []
    for line, row in rows:
        n0 = len(errors)
        cid = row.get("id", "")
        _check_id(errors, seen, name, line, cid)
        received = _time(errors, name, line, "received_at", row.get("received_at", ""))
        start = _time(errors, name, line, "incident_start", row.get("incident_start", ""))
        end = _time(errors, name, line, "incident_end", row.get("incident_end", ""), optional=True)
        _check_site(errors, known_sites, name, line, row.get("site", ""))
        if start is not None and end is not None and end < start:
            errors.append(
                InputError(
                    name, line, "incident_end", row["incident_end"], "ends before incident_start"
                )
            )
        if len(errors) == n0 and received is not None and start is not None:
            out.append(
                Complaint(
                    cid,
                    received,
                    start,
                    end,
                    row["site"],
                    row.get("category", ""),
                    row.get("source", "") or "csv",
                )
            )
    if errors:
        raise InputErrors(errors)
    return out


def read_visits_csv(
    path: str | Path,
    known_sites: set[str] | None = None,
    complaint_ids: set[str] | None = None,
) -> list[Visit]:
    """Visits from the documented CSV; raise :class:`InputErrors` with every problem."""
    name = str(path)
    header, rows = _read_csv(path)
    bad = _check_header(name, header, _VISIT_REQUIRED, VISIT_COLUMNS)
    if bad:
        raise InputErrors([bad])
    errors: list[InputError] = []
    seen: dict[str, int] = {}
    out: list[Visit] = []
    for line, row in rows:
        n0 = len(errors)
        vid = row.get("id", "")
        _check_id(errors, seen, name, line, vid)
        arrived = _time(errors, name, line, "arrived_at", row.get("arrived_at", ""))
        left = _time(errors, name, line, "left_at", row.get("left_at", ""))
        _check_site(errors, known_sites, name, line, row.get("site", ""))
        outcome = row.get("outcome", "")
        if outcome not in OUTCOMES:
            errors.append(
                InputError(name, line, "outcome", outcome, f"must be one of {', '.join(OUTCOMES)}")
            )
        if arrived is not None and left is not None and left < arrived:
            errors.append(InputError(name, line, "left_at", row["left_at"], "is before arrived_at"))
        ids = tuple(x.strip() for x in row.get("complaint_ids", "").split(";") if x.strip())
        if complaint_ids is not None:
            unknown = [x for x in ids if x not in complaint_ids]
            if unknown:
                errors.append(
                    InputError(
                        name, line, "complaint_ids", ";".join(unknown), "unknown complaint id(s)"
                    )
                )
        if len(errors) == n0 and arrived is not None and left is not None:
            out.append(Visit(vid, arrived, left, row["site"], outcome, ids))
    if errors:
        raise InputErrors(errors)
    return out


# ------------------------------------------------------------ Open311 / Signalen
def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass
class _Raw:
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


def _open311_records(path: str, doc: Any) -> list[_Raw]:
    if isinstance(doc, dict) and "service_requests" in doc:
        doc = doc["service_requests"]
    if not isinstance(doc, list):
        raise InputErrors(
            [InputError(path, None, None, None, "Open311 requests.json must be a JSON list")]
        )
    out = []
    for i, r in enumerate(doc):
        if not isinstance(r, dict):
            continue
        when = str(r.get("requested_datetime") or "")
        out.append(
            _Raw(
                line=None,
                id=str(r.get("service_request_id") or r.get("token") or ""),
                received=when,
                start=when,
                end="",
                category=str(r.get("service_name") or r.get("service_code") or ""),
                source="open311",
                address=r.get("address") or None,
                lat=_float(r.get("lat")),
                lon=_float(r.get("long")),
            )
        )
        out[-1].line = i + 1
    return out


def _signalen_json_records(path: str, doc: Any) -> list[_Raw]:
    items: list[Any]
    if isinstance(doc, dict) and "features" in doc:
        items = [
            {**(f.get("properties") or {}), "_geometry": f.get("geometry")} for f in doc["features"]
        ]
    elif isinstance(doc, dict) and "results" in doc:
        items = list(doc["results"])
    elif isinstance(doc, list):
        items = doc
    else:
        raise InputErrors([InputError(path, None, None, None, "not a Signalen export")])
    out = []
    for i, s in enumerate(items):
        if not isinstance(s, dict):
            continue
        location = s.get("location") or {}
        geometry = s.get("_geometry") or location.get("geometrie") or {}
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        lat = lon = None
        if isinstance(coords, list) and len(coords) >= 2:
            lon, lat = _float(coords[0]), _float(coords[1])  # GeoJSON order: lon, lat
        address = location.get("address_text") or _address_text(location.get("address"))
        category = s.get("category") or {}
        cat = (
            category.get("sub") or category.get("main") or ""
            if isinstance(category, dict)
            else str(category)
        )
        start = str(s.get("incident_date_start") or s.get("created_at") or "")
        out.append(
            _Raw(
                line=i + 1,
                id=str(s.get("id") or s.get("signal_id") or ""),
                received=str(s.get("created_at") or start),
                start=start,
                end=str(s.get("incident_date_end") or ""),
                category=str(cat),
                source="signalen",
                address=address,
                lat=lat,
                lon=lon,
            )
        )
    return out


def _address_text(address: Any) -> str | None:
    if not isinstance(address, dict):
        return None
    parts = [
        str(address.get(k) or "")
        for k in ("openbare_ruimte", "huisnummer", "huisletter", "postcode", "woonplaats")
    ]
    text = " ".join(p for p in parts if p)
    return text or None


def _pick(row: dict[str, str], *names: str) -> str:
    for n in names:
        if row.get(n):
            return row[n]
    return ""


def _signalen_csv_records(path: str) -> list[_Raw]:
    header, rows = _read_csv(path)
    if "id" not in header or "created_at" not in header:
        raise InputErrors(
            [
                InputError(
                    path,
                    1,
                    "id,created_at",
                    ",".join(header),
                    "a Signalen CSV needs at least id and created_at",
                )
            ]
        )
    out = []
    for line, row in rows:
        lat = _float(_pick(row, "lat", "latitude"))
        lon = _float(_pick(row, "lon", "lng", "longitude"))
        if lat is not None and lon is not None:
            lat, lon = fix_swapped_lat_lon(lat, lon)
        address = _pick(row, "address_text", "adres", "address", "location") or None
        if address is None and row.get("straatnaam"):
            address = f"{row['straatnaam']} {row.get('huisnummer', '')}".strip()
        start = _pick(row, "incident_date_start", "created_at")
        out.append(
            _Raw(
                line=line,
                id=row.get("id", ""),
                received=row.get("created_at", ""),
                start=start,
                end=row.get("incident_date_end", ""),
                category=_pick(
                    row,
                    "sub_category",
                    "sub",
                    "subrubriek",
                    "category",
                    "main_category",
                    "hoofdrubriek",
                ),
                source="signalen",
                address=address,
                lat=lat,
                lon=lon,
                site=row.get("site", ""),
            )
        )
    return out


def _assign(
    path: str, records: list[_Raw], site_map: SiteMap | None, known: set[str] | None
) -> tuple[list[Complaint], int]:
    errors: list[InputError] = []
    seen: dict[str, int] = {}
    out: list[Complaint] = []
    unmatched = 0
    for r in records:
        line = r.line
        site = r.site
        if not site:
            if site_map is None:
                errors.append(
                    InputError(path, line, "site", None, "no site column; pass --site-map FILE")
                )
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
        received = _time(errors, path, line or 0, "received_at", r.received)
        start = _time(errors, path, line or 0, "incident_start", r.start)
        end = _time(errors, path, line or 0, "incident_end", r.end, optional=True)
        _check_site(errors, known, path, line or 0, site)
        if len(errors) == n0 and received is not None and start is not None:
            if end is not None and end < start:
                end = None
            out.append(Complaint(r.id, received, start, end, site, r.category, r.source, node))
    if errors:
        raise InputErrors(errors)
    return out, unmatched


def detect_format(path: str | Path) -> str:
    """``csv`` (the documented columns), ``signalen`` or ``open311`` from the file itself."""
    p = Path(path)
    head = p.read_text(encoding="utf-8-sig")[:4096]
    stripped = head.lstrip()
    if stripped.startswith(("[", "{")):
        if "service_request_id" in head or "requested_datetime" in head:
            return "open311"
        return "signalen"
    first = stripped.splitlines()[0] if stripped else ""
    cols = [c.strip() for c in first.split(",")]
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
    first = Path(path).read_text(encoding="utf-8-sig").lstrip()[:1]
    if kind == "open311" or (kind == "signalen" and first in ("[", "{")):
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as err:
            raise InputErrors(
                [InputError(name, err.lineno, None, None, f"not valid JSON: {err.msg}")]
            ) from None
        records = (
            _open311_records(name, doc) if kind == "open311" else _signalen_json_records(name, doc)
        )
    elif kind == "signalen":
        records = _signalen_csv_records(name)
    else:
        raise InputErrors(
            [InputError(name, None, None, kind, "format must be auto, csv, open311 or signalen")]
        )
    return _assign(name, records, site_map, known_sites)


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


def known_sites_of(site_map: SiteMap | None, sites: str | None) -> set[str] | None:
    """Known site ids from ``--sites`` and/or a site map (None: any site accepted)."""
    known: set[str] | None = None
    if sites:
        known = {s.strip() for s in sites.split(",") if s.strip()}
    if site_map is not None:
        known = (known or set()) | site_map.ids()
    return known


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
