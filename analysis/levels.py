"""Levels in: a CSV export or InfluxDB, onto one regular grid per site.

This is the analysis' one loading module for levels and its only InfluxDB adapter
(reads of ``minute`` / ``second``, writes of ``complaint`` / ``visit`` / ``episode``).

Sources (``--levels``)
----------------------
``PATH.csv`` (or ``.csv.gz``)
    Columns ``time, site, node, LAeq, LCeq, LAFmax, LA90``; others are ignored,
    ``LCeq``, ``LAFmax`` and ``LA90`` may be empty or absent. ``time`` is the
    interval start: integer UTC milliseconds, or ISO 8601 (without an offset:
    Europe/Amsterdam, see :mod:`klankkast.analysis.timeutil`). Per-second or
    per-minute rows.
``influxdb+http://[user:password@]host:port/DATABASE[?measurement=minute|second]``
    (or ``influxdb+https://``). Reads the ``minute`` measurement (default) or the
    ``second`` frames from the ``raw`` retention policy, tags ``site``/``node``,
    in chunks of a week. A token can be given as ``?token=...``.

Grid
----
Rows are put on a grid of ``step_s`` (default: the data's own interval, usually
60 s or 1 s). Rows of one node within one step are averaged by energy
(LAeq, LCeq, LA90) and by maximum (LAFmax); nodes of one site are then combined by
energy **mean** (two nodes at 60 dB give 60.0 dB: microphones in one courtyard hear
the same sound field, so their sum would read 3 dB too high) or, only for the legacy
rules, energy **sum** (63.0 dB) (``node_combine`` in the rules); LAFmax by maximum.
"""

from __future__ import annotations

import math
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from klankkast.analysis.episodes import Episode, SiteGrid
from klankkast.analysis.errors import LevelSourceError
from klankkast.analysis.timeutil import parse_time_ms
from klankkast.decibel import (
    energies_to_levels,
    energy_sum_level,
    finite_energy_mean_level,
    levels_to_energies,
)

__all__ = [
    "LEVEL_COLUMNS",
    "InfluxSource",
    "build_grids",
    "combine_db",
    "episode_lines",
    "infer_step_s",
    "load_grids",
    "node_grids",
    "parse_influx_url",
    "read_levels",
    "read_levels_csv",
    "read_levels_influx",
    "write_lines",
]

#: Columns of a level export; ``time``, ``site``, ``node`` and ``LAeq`` are required.
LEVEL_COLUMNS = ("time", "site", "node", "LAeq", "LCeq", "LAFmax", "LA90")
_REQUIRED = ("time", "site", "node", "LAeq")
_WEEK_MS = 7 * 86_400_000


def combine_db(levels_db: Sequence[float], how: str = "mean") -> float:
    """Combine simultaneous levels by energy: the energy mean (``mean``, co-located
    nodes) or ``10·log10(Σ 10^(L/10))`` (``sum``, legacy). Two nodes at 60 dB: 60.0 dB
    (mean), 63.0 dB (sum)."""
    if how != "sum":
        return finite_energy_mean_level(levels_db)
    x = np.asarray(levels_db, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(energy_sum_level(x)) if x.size else math.nan


# ------------------------------------------------------------------ reading
def _parse_times(values: pd.Series, path: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return numeric.to_numpy(dtype=np.int64)
    text = values.astype(str).str.strip()
    if bool(text.str.contains(r"T.*(?:Z|[+-]\d\d:?\d\d)$", regex=True).all()):
        # every time carries its offset: no local-time rules needed, parse vectorised
        try:
            parsed = pd.to_datetime(text, utc=True, format="ISO8601")
            return parsed.dt.as_unit("ms").astype("int64").to_numpy(dtype=np.int64)
        except (ValueError, TypeError):
            pass  # fall through to the row-by-row parser for a precise error
    out = np.empty(len(values), dtype=np.int64)
    for i, (num, raw) in enumerate(zip(numeric, values, strict=True)):
        if not pd.isna(num):
            out[i] = int(num)
            continue
        try:
            out[i] = parse_time_ms(str(raw))
        except ValueError as err:
            raise LevelSourceError(f"{path}:{i + 2}: column time: {err}") from None
    return out


def read_levels_csv(path: str | Path) -> pd.DataFrame:
    """Read a level export; return columns ``t_ms, site, node, LAeq, LCeq, LAFmax, LA90``."""
    name = str(path)
    try:
        df = pd.read_csv(path, dtype={"site": str, "node": str}, low_memory=False)
    except FileNotFoundError:
        raise LevelSourceError(f"{name}: level file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise LevelSourceError(f"{name}: not a readable CSV ({err})") from None
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise LevelSourceError(
            f"{name}:1: missing column(s) {', '.join(missing)}; expected {', '.join(LEVEL_COLUMNS)}"
        )
    out = pd.DataFrame({"t_ms": _parse_times(df["time"], name)})
    out["site"] = df["site"].astype(str).to_numpy()
    out["node"] = df["node"].astype(str).to_numpy()
    for col in ("LAeq", "LCeq", "LAFmax", "LA90"):
        if col in df.columns:
            values = pd.to_numeric(df[col], errors="coerce")
            bad = values.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
            if bad.any():
                line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
                raise LevelSourceError(
                    f"{name}:{line}: column {col}: not a number ({df[col].iloc[line - 2]!r})"
                )
            out[col] = values.to_numpy(dtype=np.float64)
        else:
            out[col] = np.nan
    return out


@dataclass(frozen=True)
class InfluxSource:
    """Where levels live in InfluxDB (from ``influxdb+http://...``)."""

    url: str
    database: str
    measurement: str = "minute"
    username: str | None = None
    password: str | None = None
    token: str | None = None


def parse_influx_url(text: str) -> InfluxSource:
    """Parse ``influxdb+http://[user:pass@]host:port/DB[?measurement=minute|second&token=T]``."""
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme
    if scheme not in ("influxdb+http", "influxdb+https") or not parts.hostname:
        raise LevelSourceError(
            f"--levels {text!r}: expected a CSV path or influxdb+http://host:port/DATABASE"
        )
    database = parts.path.strip("/")
    if not database:
        raise LevelSourceError(f"--levels {text!r}: the URL must name the database: .../DATABASE")
    query = urllib.parse.parse_qs(parts.query)
    measurement = query.get("measurement", ["minute"])[0]
    if measurement not in ("minute", "second"):
        raise LevelSourceError(
            f"--levels measurement must be minute or second; got {measurement!r}"
        )
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return InfluxSource(
        url=f"{scheme.split('+', 1)[1]}://{netloc}",
        database=database,
        measurement=measurement,
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        token=query.get("token", [None])[0],
    )


def _client(src: InfluxSource) -> Any:
    from klankkast.influx import InfluxHTTP

    return InfluxHTTP(
        src.url,
        src.database,
        username=src.username,
        password=src.password,
        token=src.token,
        timeout_s=120.0,
    )


def read_levels_influx(
    src: InfluxSource,
    start_ms: int,
    end_ms: int,
    *,
    sites: Iterable[str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Query levels of ``[start_ms, end_ms)`` week by week; same columns as the CSV reader."""
    from klankkast.influx import QueryError, quote_ident

    client = _client(src)
    what = '"raw"."second"' if src.measurement == "second" else '"forever"."minute"'
    fields = ", ".join(quote_ident(f) for f in ("LAeq", "LCeq", "LAFmax", "LA90"))
    if src.measurement == "second":
        fields = ", ".join(quote_ident(f) for f in ("LAeq", "LCeq", "LAFmax"))
    where_site = ""
    if sites:
        quoted = (s.replace("\\", "\\\\").replace("'", "\\'") for s in sites)
        where_site = " AND (" + " OR ".join(f"\"site\" = '{s}'" for s in quoted) + ")"
    frames: list[pd.DataFrame] = []
    t = start_ms
    try:
        while t < end_ms:
            t_next = min(end_ms, t + _WEEK_MS)
            q = (
                f"SELECT {fields} FROM {what} WHERE time >= {t}ms AND time < {t_next}ms"
                f'{where_site} GROUP BY "site", "node"'
            )
            rows = client.query(q)
            if rows:
                frames.append(pd.DataFrame(rows))
            t = t_next
            if progress:
                progress((t - start_ms) / max(1, end_ms - start_ms))
    except QueryError as err:
        raise LevelSourceError(f"InfluxDB {src.url}/{src.database}: {err}") from None
    finally:
        client.close()
    if not frames:
        return pd.DataFrame(
            {c: [] for c in ("t_ms", "site", "node", "LAeq", "LCeq", "LAFmax", "LA90")}
        )
    raw = pd.concat(frames, ignore_index=True)
    out = pd.DataFrame({"t_ms": raw["time"].to_numpy(dtype=np.int64)})
    out["site"] = raw["site"].astype(str).to_numpy()
    out["node"] = raw["node"].astype(str).to_numpy()
    for col in ("LAeq", "LCeq", "LAFmax", "LA90"):
        values = raw[col] if col in raw.columns else pd.Series(np.nan, index=raw.index)
        out[col] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    return out


def read_levels(
    source: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    *,
    sites: Sequence[str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Levels from a CSV path or an ``influxdb+http://`` URL, limited to ``[start, end)``
    and, when given, to ``sites``."""
    if source.startswith(("influxdb+http://", "influxdb+https://")):
        src = parse_influx_url(source)
        lo = start_ms if start_ms is not None else 1_577_836_800_000  # 2020-01-01
        hi = end_ms if end_ms is not None else _now_ms()
        return read_levels_influx(src, lo, hi, sites=sites, progress=progress)
    df = read_levels_csv(source)
    if sites:
        df = df[df["site"].isin(list(sites))]
    if start_ms is not None:
        df = df[df["t_ms"] >= start_ms]
    if end_ms is not None:
        df = df[df["t_ms"] < end_ms]
    return df.reset_index(drop=True)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


# ------------------------------------------------------------------- grids
def infer_step_s(t_ms: np.ndarray, node_key: np.ndarray) -> int:
    """The data's own interval: the most common time step within a node, in whole
    seconds (not the smallest: one node restarting mid-minute leaves one short step in
    a year of minutes, and a grid of that step would hold no whole minute)."""
    if len(t_ms) < 2:
        return 60
    order = np.lexsort((t_ms, node_key))
    t = t_ms[order]
    k = node_key[order]
    d = np.diff(t)
    same = (np.diff(k) == 0) & (d > 0)
    if not same.any():
        return 60
    # whole seconds, gaps over an hour counted as an hour (O(n), no sort)
    steps = np.clip(np.rint(d[same] / 1000.0), 1, 3600).astype(np.int64)
    return int(np.argmax(np.bincount(steps)))


def _codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and sorted names of a string or categorical column."""
    if isinstance(column.dtype, pd.CategoricalDtype) and not bool(column.isna().any()):
        cats = [str(c) for c in column.cat.categories]
        order = np.argsort(cats, kind="stable")
        remap = np.empty(len(cats), dtype=np.int64)
        remap[order] = np.arange(len(cats))
        return remap[column.cat.codes.to_numpy()], [cats[i] for i in order]
    codes, names = pd.factorize(column.astype(str), sort=True)
    return codes.astype(np.int64), [str(n) for n in names]


def build_grids(
    df: pd.DataFrame,
    *,
    step_s: int | None = None,
    node_combine: str = "mean",
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[SiteGrid]:
    """One :class:`SiteGrid` per site from rows ``t_ms, site, node, LAeq, LCeq, LAFmax, LA90``.

    All grids share the origin (``start_ms`` or the first row, floored to the step) and
    run to ``end_ms`` or the last row. See the module docstring for the combination.
    """
    if len(df) == 0:
        return []
    t_all = df["t_ms"].to_numpy(dtype=np.int64)
    site_codes, site_names = _codes(df["site"])
    node_only, node_names = _codes(df["node"])
    node_codes = site_codes.astype(np.int64) * max(1, len(node_names)) + node_only
    step = step_s or infer_step_s(t_all, node_codes)
    step_ms = step * 1000
    lo = int(t_all.min()) if start_ms is None else start_ms
    t0 = (lo // step_ms) * step_ms
    hi = int(t_all.max()) + 1 if end_ms is None else end_ms
    nbins = max(1, -(-(hi - t0) // step_ms))
    cols = {c: df[c].to_numpy() for c in ("LAeq", "LCeq", "LAFmax", "LA90")}
    contiguous = bool(np.all(site_codes[1:] >= site_codes[:-1]))
    order = None if contiguous else np.argsort(site_codes, kind="stable")
    sorted_codes = site_codes if order is None else site_codes[order]
    bounds = np.searchsorted(sorted_codes, np.arange(len(site_names) + 1))
    grids: list[SiteGrid] = []
    for s, name in enumerate(site_names):
        rows: slice | np.ndarray = (
            slice(bounds[s], bounds[s + 1]) if order is None else order[bounds[s] : bounds[s + 1]]
        )
        bins = (t_all[rows] - t0) // step_ms
        keep = (bins >= 0) & (bins < nbins)
        if bool(keep.all()):  # the usual case: no copies for the selection
            nodes = node_codes[rows]
            values = {k: np.asarray(v[rows], dtype=np.float64) for k, v in cols.items()}
        else:
            bins = bins[keep]
            nodes = node_codes[rows][keep]
            values = {k: np.asarray(v[rows][keep], dtype=np.float64) for k, v in cols.items()}
        grids.append(_site_grid(str(name), t0, step, nbins, bins, nodes, values, node_combine))
    return grids


def _unique(bins: np.ndarray) -> bool:
    if bins.size < 2:
        return True
    if bool(np.all(bins[1:] > bins[:-1])):
        return True
    return bool(np.unique(bins).size == bins.size)


def _site_grid(
    site: str,
    t0: int,
    step: int,
    nbins: int,
    bins: np.ndarray,
    nodes: np.ndarray,
    cols: dict[str, np.ndarray],
    how: str,
) -> SiteGrid:
    if nodes.size and nodes.min() == nodes.max() and _unique(bins):
        # one node, one row per step: nothing to combine
        direct = {}
        for col in ("LAeq", "LCeq", "LAFmax", "LA90"):
            arr = np.full(nbins, np.nan)
            arr[bins] = cols[col]
            direct[col] = arr
        count = np.zeros(nbins, dtype=np.int64)
        count[bins] = np.isfinite(cols["LAeq"])
        return _grid_of(site, t0, step, direct, count)
    # 1) per (node, step): energy mean of LAeq/LCeq/LA90, max of LAFmax
    _, node_idx = np.unique(nodes, return_inverse=True)
    key = node_idx.astype(np.int64) * nbins + bins
    ukey, inv = np.unique(key, return_inverse=True)
    per_node: dict[str, np.ndarray] = {}
    for col in ("LAeq", "LCeq", "LA90"):
        x = cols[col]
        ok = np.isfinite(x)
        e = np.bincount(inv[ok], weights=levels_to_energies(x[ok]), minlength=ukey.size)
        n = np.bincount(inv[ok], minlength=ukey.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_node[col] = np.where(n > 0, e / np.maximum(n, 1), np.nan)  # energy
    fmax = np.full(ukey.size, -np.inf)
    x = cols["LAFmax"]
    ok = np.isfinite(x)
    np.maximum.at(fmax, inv[ok], x[ok])
    ubin = ukey % nbins
    # 2) nodes of the site: energy mean (or, legacy, sum) per step, LAFmax maximum
    out: dict[str, np.ndarray] = {}
    count_laeq = np.bincount(ubin[np.isfinite(per_node["LAeq"])], minlength=nbins)
    for col, energy in per_node.items():
        ok = np.isfinite(energy)
        total: np.ndarray = np.bincount(ubin[ok], weights=energy[ok], minlength=nbins)
        count = np.bincount(ubin[ok], minlength=nbins)
        if how == "mean":
            total = total / np.maximum(count, 1)
        with np.errstate(divide="ignore"):
            out[col] = np.where(count > 0, energies_to_levels(np.maximum(total, 1e-300)), np.nan)
    site_fmax = np.full(nbins, -np.inf)
    np.maximum.at(site_fmax, ubin, fmax)
    site_fmax[~np.isfinite(site_fmax)] = np.nan
    out["LAFmax"] = site_fmax
    return _grid_of(site, t0, step, out, count_laeq.astype(np.int64))


def _grid_of(
    site: str, t0: int, step: int, db: dict[str, np.ndarray], nodes: np.ndarray
) -> SiteGrid:
    """The site's grid from its per-step levels keyed by the wire's field names."""
    return SiteGrid(
        site=site,
        t0_ms=t0,
        step_s=step,
        laeq_db=db["LAeq"],
        lceq_db=db["LCeq"],
        lafmax_db=db["LAFmax"],
        la90_db=db["LA90"],
        nodes=nodes,
    )


def load_grids(
    source: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    node_combine: str = "mean",
    step_s: int | None = None,
    sites: Sequence[str] | None = None,
    progress: Callable[[float], None] | None = None,
    node_grids_out: list[SiteGrid] | None = None,
) -> list[SiteGrid]:
    """:func:`read_levels` then :func:`build_grids`; with ``node_grids_out`` also one
    grid per node (:func:`node_grids`) appended to that list."""
    df = read_levels(source, start_ms, end_ms, sites=sites, progress=progress)
    if len(df) == 0:
        raise LevelSourceError(f"--levels {source}: no level rows in the selected time range")
    grids = build_grids(
        df, step_s=step_s, node_combine=node_combine, start_ms=start_ms, end_ms=end_ms
    )
    if node_grids_out is not None:
        step = grids[0].step_s if grids else step_s
        node_grids_out.extend(node_grids(df, step_s=step, start_ms=start_ms, end_ms=end_ms))
    return grids


def node_grids(
    df: pd.DataFrame,
    *,
    step_s: int | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[SiteGrid]:
    """One grid per node, named ``"{site}/{node}"``: each node analysed on its own
    (issue 15), for corroborating a complaint by the node nearest to it."""
    if len(df) == 0:
        return []
    per_node = df.assign(site=df["site"].astype(str) + "/" + df["node"].astype(str))
    return build_grids(per_node, step_s=step_s, start_ms=start_ms, end_ms=end_ms)


# ------------------------------------------------------------------ writing
def episode_lines(episodes: Iterable[Episode]) -> list[str]:
    """``episode`` points: tags site, rule, period; fields duration_s, LAeq, LAFmax, bass, end."""
    from klankkast.influx import M_EPISODE, line

    out = []
    for e in episodes:
        fields: dict[str, float | int | str | bool] = {
            "duration_s": float(e.duration_s),
            "end": int(e.end_ms),
        }
        for key, value in (("LAeq", e.laeq_db), ("LAFmax", e.lafmax_db), ("bass", e.bass_db)):
            if math.isfinite(value):
                fields[key] = float(value)
        out.append(
            line(
                M_EPISODE, {"site": e.site, "rule": e.rule, "period": e.period}, fields, e.start_ms
            )
        )
    return out


def write_lines(url: str, lines: Sequence[str], *, batch: int = 5000) -> int:
    """Write line protocol to ``influxdb+http://host:port/DB``; return the number of points."""
    from klankkast.influx import RP_FOREVER, PermanentWriteError, RetryableWriteError

    src = parse_influx_url(url)
    client = _client(src)
    try:
        for i in range(0, len(lines), batch):
            # complaints, visits and episodes must outlive the 30-day raw policy
            client.write(list(lines[i : i + batch]), rp=RP_FOREVER, precision="ms")
    except (RetryableWriteError, PermanentWriteError) as err:
        raise LevelSourceError(f"InfluxDB {src.url}/{src.database}: write failed: {err}") from None
    finally:
        client.close()
    return len(lines)


def _eprint(text: str) -> None:
    print(text, file=sys.stderr)
