"""Residents' marks ("ik heb nu last") against measured episodes: the third source.

A mark says "this bothers me *now*" (``klankkast-courtyard``, measurement
``experience``, one point per household and mark). Unlike a complaint it names no
incident time, so its window is the present as the resident lives it:
``[t − MARK_BEFORE_S, t + MARK_AFTER_S]`` — the ten minutes before the tap (the
page's own "in the last 10 minutes" reading) and two minutes after (the detector
dates an episode from the stretch that led to its first flag, which can lie just
after the tap).

* A mark is ``matched`` when an episode of its site overlaps its window (then it is
  counted for the episode that starts nearest before the tap, or the first one after
  it); ``not_matched`` when levels were measured in the window but no episode
  overlaps ("no nuisance measured"); ``no_data`` when nothing was measured.
* One household counts once per :data:`ONCE_PER_S` (the page enforces this too; a
  file may not).
* Per episode: the marks it drew and the number of distinct households.
* Episodes with neither a complaint nor a mark.
* Association: the circular time-shift permutation test of
  :mod:`klankkast.analysis.stats`, with the marks' windows in place of the
  complaints' (statistic = matched marks).

Pure functions; readers for a CSV file (``--experiences FILE``) and for InfluxDB sit
at the end.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from klankkast.analysis.episodes import Episode
from klankkast.analysis.errors import InputError, InputErrors
from klankkast.analysis.stats import PermutationResult, shift_test
from klankkast.analysis.timeutil import parse_time_ms

__all__ = [
    "KINDS",
    "MARK_AFTER_S",
    "MARK_BEFORE_S",
    "ONCE_PER_S",
    "EpisodeMarks",
    "Mark",
    "MarkFindings",
    "MarkVerdict",
    "analyse_marks",
    "count_once",
    "mark_window",
    "read_marks_csv",
    "read_marks_influx",
]

MARK_BEFORE_S: Final = 600
MARK_AFTER_S: Final = 120
ONCE_PER_S: Final = 600
#: the kinds the page offers (``klankkast.courtyard``); anything else reads as "other"
KINDS: Final = ("music", "voices", "bangs", "machine", "other")


@dataclass(frozen=True, slots=True)
class Mark:
    """One resident's mark: a household (keyed hash, never a person) at ``t_ms``."""

    site: str
    t_ms: int
    household: str
    kind: str | None = None
    severity: int | None = None


@dataclass(frozen=True, slots=True)
class MarkVerdict:
    """A mark with its verdict (``matched`` | ``not_matched`` | ``no_data``)."""

    mark: Mark
    verdict: str
    episode_index: int | None = None


@dataclass(frozen=True, slots=True)
class EpisodeMarks:
    """What one episode drew from the residents."""

    episode_index: int
    marks: int
    households: int


@dataclass
class MarkFindings:
    """Everything the report says about the marks."""

    verdicts: list[MarkVerdict]
    per_episode: list[EpisodeMarks]
    episodes: int
    episodes_with_neither: int
    association: PermutationResult
    duplicates_dropped: int = 0
    sites: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The ``marks`` object of ``summary.json``."""
        matched = sum(1 for v in self.verdicts if v.verdict == "matched")
        a = self.association
        marked = [e for e in self.per_episode if e.marks]
        return {
            "total": len(self.verdicts),
            "households": len({(v.mark.site, v.mark.household) for v in self.verdicts}),
            "matched": matched,
            "not_matched": sum(1 for v in self.verdicts if v.verdict == "not_matched"),
            "no_data": sum(1 for v in self.verdicts if v.verdict == "no_data"),
            "duplicates_dropped": self.duplicates_dropped,
            "episodes_with_marks": len(marked),
            "episodes_with_neither": self.episodes_with_neither,
            "median_households_per_marked_episode": (
                float(np.median([e.households for e in marked])) if marked else None
            ),
            "association": a.as_json("marks_tested"),
        }


def mark_window(t_ms: int) -> tuple[int, int]:
    """``[t − MARK_BEFORE_S, t + MARK_AFTER_S]`` in UTC ms."""
    return t_ms - MARK_BEFORE_S * 1000, t_ms + MARK_AFTER_S * 1000


def count_once(marks: Iterable[Mark], once_per_s: int = ONCE_PER_S) -> tuple[list[Mark], int]:
    """Marks with each household counted once per ``once_per_s`` (the first counts), and
    how many were dropped. Sorted by site, time."""
    out: list[Mark] = []
    last: dict[tuple[str, str], int] = {}
    dropped = 0
    for m in sorted(marks, key=lambda m: (m.site, m.t_ms, m.household)):
        key = (m.site, m.household)
        if key in last and m.t_ms - last[key] < once_per_s * 1000:
            dropped += 1
            continue
        last[key] = m.t_ms
        out.append(m)
    return out, dropped


def analyse_marks(
    marks: Iterable[Mark],
    episodes: Sequence[Episode],
    episode_complained: Sequence[bool],
    measured: Callable[[str, np.ndarray, np.ndarray], np.ndarray],
    span_ms: tuple[int, int],
    *,
    permutations: int = 999,
    seed: int = 0,
) -> MarkFindings:
    """Marks against the episodes of their sites.

    ``episode_complained[i]`` says whether episode ``i`` was corroborated by a complaint
    (:class:`klankkast.analysis.correlate.Findings`); ``measured(site, a, b)`` whether
    any level was measured in each window (:meth:`Coverage.measured`).
    """
    kept, dropped = count_once(m for m in marks if span_ms[0] <= m.t_ms < span_ms[1])
    by_site: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(episodes):
        by_site[e.site].append(i)
    starts_of: dict[str, np.ndarray] = {}
    ends_of: dict[str, np.ndarray] = {}
    for site, order in by_site.items():
        order.sort(key=lambda i: episodes[i].start_ms)
        starts_of[site] = np.array([episodes[i].start_ms for i in order], dtype=np.int64)
        ends_of[site] = np.array([episodes[i].end_ms for i in order], dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)

    verdicts: list[MarkVerdict] = []
    draws: dict[int, list[str]] = defaultdict(list)
    windows: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for m in kept:
        a, b = mark_window(m.t_ms)
        windows[m.site].append((a, b))
        starts = starts_of.get(m.site, empty)
        ends = ends_of.get(m.site, empty)
        # episodes overlapping [a, b]: start <= b and end > a
        hit = np.flatnonzero((starts <= b) & (ends > a))
        if hit.size:
            before = hit[starts[hit] <= m.t_ms]
            k = int(before[-1]) if before.size else int(hit[0])
            idx = by_site[m.site][k]
            draws[idx].append(m.household)
            verdicts.append(MarkVerdict(m, "matched", idx))
            continue
        seen = bool(measured(m.site, np.array([a]), np.array([b]))[0])
        verdicts.append(MarkVerdict(m, "not_matched" if seen else "no_data"))

    per_episode = [
        EpisodeMarks(i, len(draws.get(i, [])), len(set(draws.get(i, []))))
        for i in range(len(episodes))
    ]
    neither = sum(
        1 for i in range(len(episodes)) if not episode_complained[i] and not per_episode[i].marks
    )
    per_site = []
    for site in sorted(windows):
        w = np.array(windows[site], dtype=np.int64)
        per_site.append((starts_of.get(site, empty), ends_of.get(site, empty), w[:, 0], w[:, 1]))
    association = shift_test(
        per_site, span_ms[0], span_ms[1], permutations=permutations, seed=seed, subject="mark"
    )
    return MarkFindings(
        verdicts,
        per_episode,
        len(episodes),
        neither,
        association,
        dropped,
        sorted({m.site for m in kept}),
    )


# --- readers -------------------------------------------------------------------------


def read_marks_csv(path: str | Path, tz: str) -> list[Mark]:
    """``--experiences FILE``: a CSV (``,`` or ``;``, UTF-8 with or without BOM) with
    columns ``site``, ``time`` and ``household``, optional ``kind`` and ``severity``
    (1-5). Times are ISO 8601; without an offset they are local in ``tz``. Every
    problem of the file is reported at once (:class:`InputErrors`); nothing is read
    from a file with problems."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputErrors([InputError(str(p), None, None, None, str(err))]) from None
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    names = {(n or "").strip().lower(): n for n in reader.fieldnames or []}
    missing = [c for c in ("site", "time", "household") if c not in names]
    if missing:
        message = f"missing column(s) {', '.join(missing)} (a marks export has site;time;household)"
        raise InputErrors([InputError(str(p), 1, None, None, message)])
    out: list[Mark] = []
    errors: list[InputError] = []
    for row_no, row in enumerate(reader, start=2):
        cells = {k: (row.get(names[k]) or "").strip() for k in names}
        bad = [k for k in ("site", "time", "household") if not cells[k]]
        for k in bad:
            errors.append(InputError(str(p), row_no, k, None, "is empty"))
        t_ms = 0
        if cells["time"]:
            try:
                t_ms = parse_time_ms(cells["time"], tz)
            except ValueError as err:
                errors.append(InputError(str(p), row_no, "time", cells["time"], str(err)))
                bad.append("time")
        severity = None
        if cells.get("severity"):
            try:
                severity = int(cells["severity"])
            except ValueError:
                severity = 0
            if not 1 <= severity <= 5:
                errors.append(
                    InputError(str(p), row_no, "severity", cells["severity"], "must be 1-5")
                )
                bad.append("severity")
        if not bad:
            kind = cells.get("kind") or None
            out.append(Mark(cells["site"], t_ms, cells["household"], kind, severity))
    if errors:
        raise InputErrors(errors)
    return out


def read_marks_influx(
    client: Any,
    start_ms: int,
    end_ms: int,
    *,
    sites: Iterable[str] | None = None,
    rp: str = "experience",
) -> list[Mark]:
    """Marks of ``[start_ms, end_ms)`` from ``"<rp>"."experience"`` (the courtyard page's
    layout: tags ``site`` and ``household``, fields ``mark``, ``kind``, ``severity``).
    ``client`` is a :class:`klankkast.influx.InfluxHTTP` on the levels' database."""
    from klankkast.influx import quote_ident

    where_site = ""
    if sites:
        quoted = (s.replace("\\", "\\\\").replace("'", "\\'") for s in sites)
        where_site = " AND (" + " OR ".join(f"\"site\" = '{s}'" for s in quoted) + ")"
    q = (
        f'SELECT "mark", "kind", "severity" FROM {quote_ident(rp)}."experience" '
        f"WHERE time >= {int(start_ms)}ms AND time < {int(end_ms)}ms{where_site} "
        'GROUP BY "site", "household"'
    )
    out = []
    for row in client.query(q):
        sev = row.get("severity")
        out.append(
            Mark(
                str(row["site"]),
                int(row["time"]),
                str(row["household"]),
                row.get("kind") or None,
                None if sev is None else int(sev),
            )
        )
    return out


def read_marks_source(
    levels: str, start_ms: int, end_ms: int, sites: Iterable[str] | None = None
) -> list[Mark] | None:
    """The marks beside the levels: from the same InfluxDB database when ``levels`` is an
    InfluxDB address (an empty list when the ``experience`` retention policy does not
    exist: no residents' page was ever set up), ``None`` when ``levels`` is a file."""
    from klankkast.analysis import levels as lv
    from klankkast.analysis.errors import LevelSourceError
    from klankkast.influx import QueryError

    if not levels.startswith("influxdb+"):
        return None
    src = lv.parse_influx_url(levels)
    client = lv._client(src)
    try:
        return read_marks_influx(client, start_ms, end_ms, sites=sites)
    except QueryError as err:
        if "retention policy not found" in str(err):
            return []
        raise LevelSourceError(f"residents' marks from {src.url}/{src.database}: {err}") from None
    finally:
        client.close()
