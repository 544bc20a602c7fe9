"""The headline numbers of an analysis run as InfluxDB points (measurement ``analysis``).

Grafana's *Nuisance versus reports* shows corroborated complaints, the visit hit rate
and silent nuisance per ``$site``. InfluxQL cannot join complaints with episodes, so
the numbers come from the analysis itself: ``klankkast-analyze report --influx URL``
writes one point per site it analysed (tags ``site``, ``scope=site``), timestamped at
the end of the analysed period, so the latest period is what ``last()`` reads; the
patrol plan's back-test is one point with ``scope=plan``. The period limits of the
rules are a series of their own (measurement ``limit``, one point per site and quarter
hour, the field named after the period: ``day``, ``evening`` or ``night``), so the
dashboards draw the limit that applies at each moment, in the rules' time zone, in the
period's colour. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from klankkast.analysis.episodes import period_of
from klankkast.analysis.rules import Rules
from klankkast.influx import M_ANALYSIS, M_LIMIT, line

__all__ = [
    "LIMIT_STEP_MS",
    "M_ANALYSIS",
    "M_LIMIT",
    "PLAN_FIELDS",
    "SITE_FIELDS",
    "dotted",
    "limit_lines",
    "plan_lines",
    "site_lines",
]

LIMIT_STEP_MS: Final = 15 * 60_000
_PERIODS: Final = ("day", "evening", "night")

#: field -> dotted key of a ``summary.json`` section (totals or ``sites.{site}``)
SITE_FIELDS: Final = {
    "complaints_total": "complaints.total",
    "complaints_corroborated": "complaints.corroborated",
    "corroboration_rate": "complaints.corroboration_rate",
    "visits_total": "visits.total",
    "visit_hit_rate": "visits.hit_rate",
    "episodes_count": "episodes.count",
    "episodes_without_complaint": "episodes.without_complaint",
    "episodes_without_complaint_rate": "episodes.without_complaint_rate",
    "association_p_value": "association.p_value",
    "marks_total": "marks.total",
    "marks_matched": "marks.matched",
    "episodes_with_neither": "marks.episodes_with_neither",
}

#: field -> dotted key of ``plan.json``
PLAN_FIELDS: Final = {
    "plan_hit_rate": "backtest.hit_rate_plan",
    "random_plan_hit_rate": "backtest.hit_rate_random",
    "historical_hit_rate": "backtest.hit_rate_historical",
    "plan_windows": "windows",
}


def dotted(doc: Mapping[str, Any], key: str) -> Any:
    """``doc["a"]["b"]`` for ``key`` ``"a.b"``; None where a part is missing."""
    cur: Any = doc
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _fields(doc: Mapping[str, Any], spec: Mapping[str, str]) -> dict[str, float | int | str | bool]:
    out: dict[str, float | int | str | bool] = {}
    for field, key in spec.items():
        v = dotted(doc, key)
        if isinstance(v, list):
            v = len(v)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out[field] = float(v)
    return out


def site_lines(summary: Mapping[str, Any], t_ms: int) -> list[str]:
    """One ``analysis`` point per site of ``summary["sites"]`` (``summary.json``)."""
    out = []
    for site, section in sorted((summary.get("sites") or {}).items()):
        fields = _fields(section, SITE_FIELDS)
        if fields:
            out.append(line(M_ANALYSIS, {"site": site, "scope": "site"}, fields, t_ms))
    return out


def plan_lines(plan: Mapping[str, Any], t_ms: int) -> list[str]:
    """The plan's back-test as one ``analysis`` point (``scope=plan``); none without
    numbers (a plan that could not be back-tested still counts its windows)."""
    fields = _fields(plan, PLAN_FIELDS)
    return [line(M_ANALYSIS, {"scope": "plan"}, fields, t_ms)] if fields else []


def limit_lines(rules: Rules, sites: Sequence[str], start_ms: int, end_ms: int) -> list[str]:
    """The absolute limit in force at every quarter hour of ``[start, end)`` per site
    (measurement ``limit``, field = the period's name, value in dB(A)). The limits apply
    to the specific level (the rules' ``absolute.level``)."""
    t0 = -(-start_ms // LIMIT_STEP_MS) * LIMIT_STEP_MS
    t = np.arange(t0, end_ms, LIMIT_STEP_MS, dtype=np.int64)
    if t.size == 0 or not rules.absolute_enabled:
        return []
    period = period_of(t, rules)
    limits = rules.limits_db()
    return [
        line(M_LIMIT, {"site": site}, {_PERIODS[int(p)]: float(limits[int(p)])}, int(ts))
        for site in sites
        for ts, p in zip(t.tolist(), period.tolist(), strict=True)
    ]
