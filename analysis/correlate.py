"""Complaints and visits against measured episodes (pure functions).

* **Complaint corroboration**: a complaint is ``corroborated`` when an episode of its
  site overlaps ``[incident_start − lookback_s, (incident_end or received_at) +
  grace_s]``; ``not_corroborated`` when levels were measured in that window but no
  episode overlaps; ``no_data`` when nothing was measured in it. The lag is
  ``received_at − start of the overlapping episode`` (the one starting nearest the
  incident start).
* **Visit classes**: ``during`` (an episode overlaps ``[arrived_at, left_at]``),
  ``after`` (the last episode ended within ``visit_lookback_s`` before arrival, with
  the minutes from its end to arrival), ``nothing`` (no episode in those hours),
  ``no_data`` (nothing measured then).
* **Silent nuisance**: episodes that no complaint's window overlaps, overall and by
  hour of week (local time of the episode start, Monday = 0).
* **Association**: :func:`klankkast.analysis.stats.shift_test`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from klankkast.analysis.episodes import Episode, SiteGrid, local_hour_weekday
from klankkast.analysis.importer import Complaint, Visit
from klankkast.analysis.marks import Mark, MarkFindings, analyse_marks
from klankkast.analysis.rules import Rules
from klankkast.analysis.stats import PermutationResult, shift_test

__all__ = [
    "ComplaintVerdict",
    "Coverage",
    "Findings",
    "VisitVerdict",
    "analyse",
    "attach_marks",
    "complaint_window",
]


@dataclass(frozen=True)
class ComplaintVerdict:
    """A complaint with its verdict."""

    complaint: Complaint
    verdict: str  # corroborated | not_corroborated | no_data
    episode_start_ms: int | None = None
    episode_end_ms: int | None = None
    lag_min: float | None = None
    #: the matched episode (of the complaint's nearest node when that decided)
    episode: Episode | None = None


@dataclass(frozen=True)
class VisitVerdict:
    """A visit with its class."""

    visit: Visit
    verdict: str  # during | after | nothing | no_data
    minutes_after_end: float | None = None
    episode_start_ms: int | None = None
    episode_end_ms: int | None = None
    #: the episode going on at arrival (``during``) or the last one before it (``after``)
    episode: Episode | None = None
    #: ids of the complaints the visit answered (its ``complaint_ids`` that were imported)
    answers: tuple[str, ...] = ()
    #: minutes from the first answered complaint's ``received_at`` to arrival
    response_min: float | None = None
    #: ``nothing``: minutes from leaving to the start of the site's next episode, when
    #: one began within ``visit_lookback_s`` after it (the visit came that much early)
    minutes_before_start: float | None = None

    @property
    def minutes_from_start(self) -> float | None:
        """``during``: minutes from the episode's start to arrival (how late it came)."""
        if self.verdict != "during" or self.episode_start_ms is None:
            return None
        return (self.visit.arrived_ms - self.episode_start_ms) / 60_000.0


class Coverage:
    """Which steps of each site were measured, for ``no_data`` verdicts."""

    def __init__(self, grids: Sequence[SiteGrid]) -> None:
        self._by_site: dict[str, tuple[int, int, np.ndarray]] = {}
        for g in grids:
            measured = np.isfinite(g.laeq_db).astype(np.int64)
            cum = np.concatenate(([0], np.cumsum(measured)))
            self._by_site[g.site] = (g.t0_ms, g.step_s * 1000, cum)

    def sites(self) -> set[str]:
        """Sites with a grid."""
        return set(self._by_site)

    def measured(self, site: str, a_ms: np.ndarray, b_ms: np.ndarray) -> np.ndarray:
        """Whether any step overlapping ``[a, b]`` was measured."""
        a = np.asarray(a_ms, dtype=np.int64)
        b = np.asarray(b_ms, dtype=np.int64)
        if site not in self._by_site:
            return np.zeros(a.shape, dtype=bool)
        t0, step, cum = self._by_site[site]
        n = cum.size - 1
        i0 = np.clip((a - t0) // step, 0, n)
        i1 = np.clip((b - t0) // step + 1, 0, n)
        hit: np.ndarray = (cum[i1] - cum[i0]) > 0
        return hit


@dataclass
class Findings:
    """Everything the report shows."""

    complaints: list[ComplaintVerdict]
    visits: list[VisitVerdict]
    episodes: list[Episode]
    episode_complained: list[bool]
    association: PermutationResult
    span_ms: tuple[int, int]
    sites: list[str]
    hour_of_week_episodes: np.ndarray = field(default_factory=lambda: np.zeros((7, 24)))
    hour_of_week_silent: np.ndarray = field(default_factory=lambda: np.zeros((7, 24)))
    hour_of_week_minutes: np.ndarray = field(default_factory=lambda: np.zeros((7, 24)))
    hour_of_week_complaints: np.ndarray = field(default_factory=lambda: np.zeros((7, 24)))
    #: episodes of single nodes (``site`` = ``"{site}/{node}"``), when nodes were analysed
    node_episodes: list[Episode] = field(default_factory=list)
    #: the association test of each site's complaints on their own
    site_association: dict[str, PermutationResult] = field(default_factory=dict)
    #: the local time zone of the hour-of-week tables (the rules' ``timezone``)
    tz: str = "Europe/Amsterdam"
    #: residents' marks against the episodes (:func:`attach_marks`); None: none were read
    marks: MarkFindings | None = None
    site_marks: dict[str, MarkFindings] = field(default_factory=dict)

    def for_site(self, site: str) -> Findings:
        """The findings of one site: its complaints, visits and episodes, its own
        hour-of-week tables and its own association test (the counts of all sites add
        up to the totals; rates and medians are the site's own)."""
        keep = [i for i, e in enumerate(self.episodes) if e.site == site]
        none = PermutationResult(None, 0, float("nan"), 0, "day", "no complaints to test", 0)
        f = Findings(
            complaints=[c for c in self.complaints if c.complaint.site == site],
            visits=[v for v in self.visits if v.visit.site == site],
            episodes=[self.episodes[i] for i in keep],
            episode_complained=[self.episode_complained[i] for i in keep],
            association=self.site_association.get(site, none),
            span_ms=self.span_ms,
            sites=[site],
            node_episodes=[e for e in self.node_episodes if e.site.partition("/")[0] == site],
            tz=self.tz,
            marks=self.site_marks.get(site) if self.marks is not None else None,
        )
        _hour_of_week(f, self.tz)
        return f

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` document (dotted keys of the contract as nested objects):
        the totals, and under ``sites.{site}`` the same keys for each site."""
        out = self._totals()
        out["sites"] = {site: self.for_site(site)._totals() for site in self.sites}
        return out

    def _totals(self) -> dict[str, Any]:
        c_total = len(self.complaints)
        corroborated = sum(1 for c in self.complaints if c.verdict == "corroborated")
        c_nodata = sum(1 for c in self.complaints if c.verdict == "no_data")
        lags = [c.lag_min for c in self.complaints if c.lag_min is not None]
        v_total = len(self.visits)
        counts: dict[str, int] = defaultdict(int)
        for v in self.visits:
            counts[v.verdict] += 1
        after = [v.minutes_after_end for v in self.visits if v.minutes_after_end is not None]
        e_total = len(self.episodes)
        silent = sum(1 for x in self.episode_complained if not x)
        by_rule: dict[str, int] = defaultdict(int)
        by_period: dict[str, int] = defaultdict(int)
        for e in self.episodes:
            by_rule[e.rule] += 1
            by_period[e.period] += 1
        a = self.association
        how = []
        for wd in range(7):
            for h in range(24):
                n = int(self.hour_of_week_episodes[wd, h])
                if n:
                    s = int(self.hour_of_week_silent[wd, h])
                    how.append(
                        {
                            "weekday": wd,
                            "hour": h,
                            "episodes": n,
                            "without_complaint": s,
                            "without_complaint_rate": s / n,
                            "nuisance_minutes": float(self.hour_of_week_minutes[wd, h]),
                        }
                    )
        return {
            "complaints": {
                "total": c_total,
                "corroborated": corroborated,
                "not_corroborated": sum(
                    1 for c in self.complaints if c.verdict == "not_corroborated"
                ),
                "no_data": c_nodata,
                "corroboration_rate": _rate(corroborated, c_total),
                "median_lag_minutes": _median(lags),
            },
            "visits": {
                "total": v_total,
                "during_nuisance": counts["during"],
                "after_nuisance": counts["after"],
                "nothing": counts["nothing"],
                "no_data": counts["no_data"],
                "hit_rate": _rate(counts["during"], v_total),
                "median_minutes_after_end": _median(after),
            },
            "episodes": {
                "count": e_total,
                "with_complaint": e_total - silent,
                "without_complaint": silent,
                "without_complaint_rate": _rate(silent, e_total),
                "total_minutes": round(sum(e.duration_s for e in self.episodes) / 60.0, 3),
                "by_rule": dict(sorted(by_rule.items())),
                "by_period": dict(sorted(by_period.items())),
                "without_complaint_by_hour_of_week": how,
            },
            "association": a.as_json(),
            # residents' marks ("ik heb nu last"): None when no marks were read
            "marks": None if self.marks is None else self.marks.summary(),
        }


def attach_marks(
    f: Findings, marks: list[Mark], coverage: Coverage, *, permutations: int, seed: int
) -> None:
    """Judge residents' marks against ``f``'s episodes (all sites, and each site on its
    own, so that ``summary.json``'s ``sites.{site}.marks`` adds up to ``marks``)."""
    f.marks = analyse_marks(
        marks, f.episodes, f.episode_complained, coverage.measured, f.span_ms,
        permutations=permutations, seed=seed,
    )  # fmt: skip
    f.site_marks = {}
    for site in f.sites:
        keep = [i for i, e in enumerate(f.episodes) if e.site == site]
        f.site_marks[site] = analyse_marks(
            [m for m in marks if m.site == site],
            [f.episodes[i] for i in keep],
            [f.episode_complained[i] for i in keep],
            coverage.measured,
            f.span_ms,
            permutations=permutations,
            seed=seed,
        )


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def complaint_window(c: Complaint, rules: Rules) -> tuple[int, int]:
    """``[incident_start − lookback, (incident_end or received_at) + grace]`` in UTC ms."""
    end = c.incident_end_ms if c.incident_end_ms is not None else c.received_ms
    end = max(end, c.incident_start_ms)
    return c.incident_start_ms - rules.lookback_s * 1000, end + rules.grace_s * 1000


def _site_arrays(
    episodes: Sequence[Episode],
) -> dict[str, tuple[np.ndarray, np.ndarray, list[int]]]:
    by_site: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(episodes):
        by_site[e.site].append(i)
    out = {}
    for site, idx in by_site.items():
        idx.sort(key=lambda i: episodes[i].start_ms)
        starts = np.array([episodes[i].start_ms for i in idx], dtype=np.int64)
        ends = np.array([episodes[i].end_ms for i in idx], dtype=np.int64)
        out[site] = (starts, ends, idx)
    return out


def analyse(
    episodes: Sequence[Episode],
    complaints: Sequence[Complaint],
    visits: Sequence[Visit],
    coverage: Coverage,
    rules: Rules,
    span_ms: tuple[int, int],
    node_episodes: Sequence[Episode] | None = None,
) -> Findings:
    """Corroborate complaints, classify visits, find silent nuisance, test association.

    ``node_episodes`` are the episodes of single nodes (``site`` = ``"{site}/{node}"``,
    each node analysed on its own), None when nodes were not analysed. A complaint that
    knows its nearest node (:attr:`Complaint.node`) is then corroborated by that node's
    episodes only, else by the site's; silent nuisance is counted on site episodes.
    """
    eps = sorted(episodes, key=lambda e: (e.site, e.start_ms))
    arrays = _site_arrays(eps)
    n_eps = sorted(node_episodes or (), key=lambda e: (e.site, e.start_ms))
    n_arrays = _site_arrays(n_eps)
    empty: tuple[np.ndarray, np.ndarray, list[int]] = (
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        [],
    )
    complained = np.zeros(len(eps), dtype=bool)

    c_by_site: dict[str, list[Complaint]] = defaultdict(list)
    for c in complaints:
        c_by_site[c.site].append(c)
    c_verdicts: dict[str, ComplaintVerdict] = {}
    per_site_test = []
    for site, items in c_by_site.items():
        starts, ends, idx = arrays.get(site, empty)
        wins = np.array([complaint_window(c, rules) for c in items], dtype=np.int64).reshape(-1, 2)
        a, b = wins[:, 0], wins[:, 1]
        measured = coverage.measured(site, a, b)
        i0 = np.searchsorted(ends, a, side="right")  # first episode ending after a
        i1 = np.searchsorted(starts, b, side="right")  # episodes starting at or before b
        for k, c in enumerate(items):
            lo, hi = int(i0[k]), int(i1[k])
            if lo < hi:
                complained[[idx[j] for j in range(lo, hi)]] = True
            key = f"{c.site}/{c.node}"
            if c.node and node_episodes is not None:
                # the nearest node decides (no episode of that node: not corroborated)
                n_starts, n_ends, n_idx = n_arrays.get(key, empty)
                lo = int(np.searchsorted(n_ends, a[k], side="right"))
                hi = int(np.searchsorted(n_starts, b[k], side="right"))
                starts_k, ends_k, eps_k = n_starts, n_ends, [n_eps[j] for j in n_idx]
            else:
                starts_k, ends_k, eps_k = starts, ends, [eps[j] for j in idx]
            if lo < hi:
                best = min(range(lo, hi), key=lambda j: abs(int(starts_k[j]) - c.incident_start_ms))
                c_verdicts[c.id] = ComplaintVerdict(
                    c,
                    "corroborated",
                    int(starts_k[best]),
                    int(ends_k[best]),
                    (c.received_ms - int(starts_k[best])) / 60_000.0,
                    eps_k[best],
                )
            else:
                verdict = "not_corroborated" if measured[k] else "no_data"
                c_verdicts[c.id] = ComplaintVerdict(c, verdict)
        per_site_test.append((starts, ends, a, b))
    c_list = [c_verdicts[c.id] for c in complaints]

    v_list: list[VisitVerdict] = []
    look_ms = rules.visit_lookback_s * 1000
    received = {c.id: c.received_ms for c in complaints}
    for v in visits:
        starts, ends, idx = arrays.get(v.site, empty)
        answers = tuple(x for x in v.complaint_ids if x in received)
        first = min((received[x] for x in answers), default=None)
        response = None if first is None else (v.arrived_ms - first) / 60_000.0
        left = max(v.left_ms, v.arrived_ms)
        i = int(np.searchsorted(ends, v.arrived_ms, side="right"))
        if i < starts.size and starts[i] <= left:
            v_list.append(
                VisitVerdict(
                    v, "during", None, int(starts[i]), int(ends[i]), eps[idx[i]], answers, response
                )
            )
            continue
        if i > 0 and ends[i - 1] >= v.arrived_ms - look_ms:
            v_list.append(
                VisitVerdict(
                    v,
                    "after",
                    (v.arrived_ms - int(ends[i - 1])) / 60_000.0,
                    int(starts[i - 1]),
                    int(ends[i - 1]),
                    eps[idx[i - 1]],
                    answers,
                    response,
                )
            )
            continue
        had = coverage.measured(v.site, np.array([v.arrived_ms - look_ms]), np.array([left]))[0]
        early = None
        if had and i < starts.size and starts[i] - left <= look_ms:
            early = (int(starts[i]) - left) / 60_000.0
        v_list.append(
            VisitVerdict(
                v,
                "nothing" if had else "no_data",
                answers=answers,
                response_min=response,
                minutes_before_start=early,
            )
        )

    association = shift_test(
        per_site_test,
        span_ms[0],
        span_ms[1],
        permutations=rules.permutations,
        seed=rules.seed,
    )
    site_association = {
        site: shift_test(
            [test], span_ms[0], span_ms[1], permutations=rules.permutations, seed=rules.seed
        )
        for site, test in zip(c_by_site, per_site_test, strict=True)
    }
    findings = Findings(
        complaints=c_list,
        visits=v_list,
        episodes=eps,
        episode_complained=complained.tolist(),
        association=association,
        span_ms=span_ms,
        sites=sorted(coverage.sites() | {c.site for c in complaints} | {v.site for v in visits}),
        node_episodes=n_eps,
        site_association=site_association,
        tz=rules.timezone,
    )
    _hour_of_week(findings, rules.timezone)
    return findings


def _hour_of_week(f: Findings, tz: str) -> None:
    if f.episodes:
        t = np.array([e.start_ms for e in f.episodes], dtype=np.int64)
        hour, wd = local_hour_weekday(t, tz)
        silent = ~np.asarray(f.episode_complained, dtype=bool)
        np.add.at(f.hour_of_week_episodes, (wd, hour), 1)
        np.add.at(f.hour_of_week_silent, (wd[silent], hour[silent]), 1)
        # nuisance minutes spread over the hours each episode covers (1-min resolution)
        starts = np.array([e.start_ms for e in f.episodes], dtype=np.int64)
        ends = np.array([e.end_ms for e in f.episodes], dtype=np.int64)
        n_min = np.maximum(1, -(-(ends - starts) // 60_000))
        first = np.repeat(np.cumsum(n_min) - n_min, n_min)
        minutes = np.repeat(starts, n_min) + (np.arange(int(n_min.sum())) - first) * 60_000
        weights = np.minimum(60_000, np.repeat(ends, n_min) - minutes) / 60_000.0
        h, w = local_hour_weekday(minutes, tz)
        np.add.at(f.hour_of_week_minutes, (w, h), weights)
    if f.complaints:
        t = np.array([c.complaint.incident_start_ms for c in f.complaints], dtype=np.int64)
        hour, wd = local_hour_weekday(t, tz)
        np.add.at(f.hour_of_week_complaints, (wd, hour), 1)
