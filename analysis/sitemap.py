"""The site-mapping file: which courtyard a complaint with an address or a position is about.

See :mod:`klankkast.analysis.importer` for the file's format. Also the Signalen
data-warehouse swap of latitude and longitude (:func:`fix_swapped_lat_lon`).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klankkast.analysis.errors import InputError, InputErrors

__all__ = [
    "Site",
    "SiteMap",
    "fix_swapped_lat_lon",
    "haversine_m",
    "known_sites_of",
    "load_site_map",
    "normalise",
]

_NL_LAT = (50.7, 53.6)
_NL_LON = (3.2, 7.3)


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
            norm = normalise(address)
            for site in self.sites.values():
                for pattern in site.addresses:
                    p = normalise(pattern)
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


def normalise(text: str) -> str:
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


def known_sites_of(site_map: SiteMap | None, sites: str | None) -> set[str] | None:
    """Known site ids from ``--sites`` and/or a site map (None: any site accepted)."""
    known: set[str] | None = None
    if sites:
        known = {s.strip() for s in sites.split(",") if s.strip()}
    if site_map is not None:
        known = (known or set()) | site_map.ids()
    return known
