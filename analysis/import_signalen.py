"""Complaints from an Amsterdam Signalen export: the API's JSON or the data-warehouse CSV."""

from __future__ import annotations

from typing import Any

from klankkast.analysis._checks import RawRecord, read_csv, to_float
from klankkast.analysis.errors import InputError, InputErrors
from klankkast.analysis.sitemap import fix_swapped_lat_lon

__all__ = ["signalen_csv_records", "signalen_json_records"]


def signalen_json_records(path: str, doc: Any) -> list[RawRecord]:
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
            lon, lat = to_float(coords[0]), to_float(coords[1])  # GeoJSON order: lon, lat
        address = location.get("address_text") or _address_text(location.get("address"))
        category = s.get("category") or {}
        cat = (
            category.get("sub") or category.get("main") or ""
            if isinstance(category, dict)
            else str(category)
        )
        start = str(s.get("incident_date_start") or s.get("created_at") or "")
        out.append(
            RawRecord(
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


def signalen_csv_records(path: str) -> list[RawRecord]:
    header, rows = read_csv(path)
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
        lat = to_float(_pick(row, "lat", "latitude"))
        lon = to_float(_pick(row, "lon", "lng", "longitude"))
        if lat is not None and lon is not None:
            lat, lon = fix_swapped_lat_lon(lat, lon)
        address = _pick(row, "address_text", "adres", "address", "location") or None
        if address is None and row.get("straatnaam"):
            address = f"{row['straatnaam']} {row.get('huisnummer', '')}".strip()
        start = _pick(row, "incident_date_start", "created_at")
        out.append(
            RawRecord(
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
