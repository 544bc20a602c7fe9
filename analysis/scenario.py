"""Synthetic courtyards with known truth, for the detection benchmark and its tests.

:func:`generate` builds per-node level rows (the columns of a level export, see
:mod:`klankkast.analysis.levels`) for one **background class** with planted sources
and, for the ``rain_wind`` class, weather steps; :func:`score` compares detected
episodes with the planted truth. Pure numpy/pandas, seeded, no clock: the same
arguments give the same rows.

Background (per site, common to its nodes, each node adding 0.5 dB of its own):

* ``courtyard``: the issue's case, 46 dB(A) by day and evening, 36 at night, per-minute
  LA90 4 dB below LAeq;
* ``quiet``: 40 / 38 / 35 dB(A) day / evening / night;
* ``busy``: a street, 48-55 dB(A) by day (drawn per day), 47 evening, 41 night;
* ``fluct3``, ``fluct6``, ``fluct10``: 46 / 46 / 36 dB(A) (the issue's courtyard) with
  per-minute LAeq − LA90 of 3, 6 and 10 dB; the minute-to-minute spread of LAeq
  grows with it (σ = 0.6, 1.0, 1.5 dB);
* ``evening_rise``: 44 dB(A) by day, rising linearly by 6 dB from 17:00 to 22:00
  (terraces filling up), 38 at night;
* ``rain_wind``: ``fluct6`` with two one-hour steps of +8 dB per site and week, half
  rain (broadband: LCeq rises as LAeq), half wind (below 100 Hz: LCeq +20 dB).

Every class also has a slow drift (white noise smoothed over 2 h, σ 0.7 dB, within ±2 dB).
Minute LA90 = LAeq − the class' fluctuation; LCeq = LAeq + 6; LAFmax = LA90 + d + 8.

Planted sources (``per_week`` per site and week, default two, at least 3 h apart, a third each by day
09-16, evening 19-21 and night 23-01 local time, 20 min to 4 h):

* ``music``: 55-70 dB(A) at the nearest node, steady (σ 1 dB per minute), bass
  (LCeq − LAeq = 12 dB);
* ``voices``: 52-62 dB(A), σ 2.5 dB per minute;
* ``bangs``: intermittent impulsive, 60 % of the minutes at 58-68 dB(A), the rest
  12 dB lower, LAFmax 25 dB above.

The level is drawn at least 8 dB above the period's background base (so that the
specific level can be measured: ISO 1996-2 needs the total 3 dB over the residual).
Node ``j`` of a site hears the source ``2·j`` dB weaker (node 0 is the nearest).
Sites have 1, 2, 3, 1, 2, 3 … nodes.

At 1-s resolution (``step_s=1``) the background fluctuates within the minute
(σ = d/2.5 per second around the minute's level), sources start on the exact second,
and LA90 is not sent (as on the wire).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from klankkast.analysis.correlate import Coverage, analyse
from klankkast.analysis.episodes import Episode, detect_many, local_hour_weekday
from klankkast.analysis.importer import Complaint, Visit
from klankkast.analysis.levels import build_grids
from klankkast.analysis.marks import Mark
from klankkast.analysis.rules import Rules
from klankkast.decibel import energies_to_levels, levels_to_energies

__all__ = [
    "CLASSES",
    "MarksTruth",
    "Planted",
    "Reports",
    "Scenario",
    "Score",
    "evaluate",
    "evaluate_reports",
    "generate",
    "reports",
    "resident_marks",
    "score",
]

CLASSES: Final = (
    "courtyard",
    "quiet",
    "busy",
    "fluct3",
    "fluct6",
    "fluct10",
    "evening_rise",
    "rain_wind",
)
MIN_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
WEEK_MS: Final = 7 * 86_400_000
#: Monday 2026-03-02 00:00 Europe/Amsterdam (CET, UTC+1), a fixed origin.
T0_MS: Final = 1_772_406_000_000
_FLUCT: Final = {"fluct3": (3.0, 0.6), "fluct6": (6.0, 1.0), "fluct10": (10.0, 1.5)}


@dataclass(frozen=True, slots=True)
class Planted:
    """A planted source (``music``/``voices``/``bangs``) or weather step (``rain``/``wind``)."""

    site: str
    kind: str
    start_ms: int
    end_ms: int
    level_db: float


@dataclass
class Scenario:
    """Level rows (``t_ms, site, node, LAeq, LCeq, LAFmax, LA90``) and their truth."""

    name: str
    step_s: int
    weeks: float
    sites: list[str]
    rows: pd.DataFrame
    planted: list[Planted] = field(default_factory=list)
    weather: list[Planted] = field(default_factory=list)


def _background(
    cls: str, t_ms: np.ndarray, rng: np.random.Generator, tz: str
) -> tuple[np.ndarray, float, float]:
    """Per-minute background LAeq base of one site, its LAeq − LA90 and minute σ."""
    hour, _ = local_hour_weekday(t_ms, tz)
    h = hour + ((t_ms // MIN_MS) % 60) / 60.0
    day = (hour >= 7) & (hour < 19)
    evening = (hour >= 19) & (hour < 23)
    d, sigma = 4.0, 0.8
    # the city wakes up from 05:00 to 08:00 and quietens from 22:00 to 01:00
    x = (h - 22.0) % 24.0  # hours since 22:00
    awake = np.where(x < 3, 1 - x / 3, np.where(x < 7, 0.0, np.where(x < 10, (x - 7) / 3, 1.0)))
    del day, evening
    if cls == "quiet":
        base = 35.0 + 5.0 * awake - 2.0 * np.clip(h - 19.0, 0.0, 1.0) * (h >= 19)
        d, sigma = 3.0, 0.6
    elif cls == "busy":
        days = (t_ms - t_ms[0]) // 86_400_000
        per_day = rng.uniform(48.0, 55.0, int(days.max()) + 1)[days]
        fall = np.where(h < 5.0, 1.0, np.where(h >= 12.0, np.clip((h - 19.0) / 2.0, 0.0, 1.0), 0.0))
        level_awake = per_day - fall * (per_day - 47.0)  # down to 47 from 19:00 to 21:00
        base = 41.0 + (level_awake - 41.0) * awake
    elif cls == "courtyard":
        d, sigma = 4.0, 0.8
        base = 36.0 + 10.0 * awake
    elif cls in _FLUCT or cls == "rain_wind":
        d, sigma = _FLUCT.get(cls, _FLUCT["fluct6"])
        base = 36.0 + 10.0 * awake
    elif cls == "evening_rise":
        rise = np.clip((h - 17.0) / 5.0, 0.0, 1.0) * 6.0 * (h >= 12)
        base = 38.0 + (6.0 + rise) * awake
    else:
        raise ValueError(f"background class must be one of {', '.join(CLASSES)}; got {cls!r}")
    n = t_ms.size
    steps_per_hour = max(1, int(HOUR_MS // max(1, int(t_ms[1] - t_ms[0]) if n > 1 else MIN_MS)))
    k = 2 * steps_per_hour
    drift = np.convolve(rng.normal(0.0, 0.7, n), np.ones(k) / k, "same") * math.sqrt(k)
    return base + np.clip(drift, -2.0, 2.0), d, sigma


def _plant(
    site: str,
    weeks: float,
    rng: np.random.Generator,
    base_at: dict[str, float],
    per_week: int,
) -> list[Planted]:
    out: list[Planted] = []
    kinds = ("music", "voices", "bangs")
    periods = (("day", 9, 16), ("evening", 19, 21), ("night", 23, 25))
    n_weeks = math.ceil(weeks)
    for w in range(n_weeks):
        days = rng.choice(7, size=per_week, replace=False)
        for dday in sorted(int(x) for x in days):
            pname, h0, h1 = periods[int(rng.integers(0, 3))]
            kind = kinds[int(rng.integers(0, 3))]
            start_h = float(rng.uniform(h0, h1))
            dur_min = int(rng.uniform(20, 240))
            if pname == "night":
                dur_min = min(dur_min, int((30 - start_h) * 60))  # ends by 06:00
            # T0_MS is local midnight (CET); after the change to summer time (29 March)
            # these local times lie an hour later
            start = T0_MS + w * WEEK_MS + dday * 86_400_000 + int(start_h * HOUR_MS)
            start = (start // MIN_MS) * MIN_MS + int(rng.integers(0, 60)) * 1000
            lo = {"music": 55.0, "voices": 52.0, "bangs": 58.0}[kind]
            hi = {"music": 70.0, "voices": 62.0, "bangs": 68.0}[kind]
            lo = max(lo, base_at[pname] + 8.0)
            level = float(rng.uniform(lo, max(lo, hi)))
            end = start + dur_min * MIN_MS
            if start < T0_MS + weeks * WEEK_MS and (
                not out or start - out[-1].end_ms > 3 * HOUR_MS
            ):
                out.append(Planted(site, kind, start, end, level))
    return out


def generate(
    cls: str,
    *,
    weeks: float = 8.0,
    sites: int = 3,
    step_s: int = 60,
    seed: int = 1,
    tz: str = "Europe/Amsterdam",
    per_week: int = 2,
) -> Scenario:
    """Rows and truth of one background class (see the module docstring)."""
    rng = np.random.default_rng([seed, CLASSES.index(cls) if cls in CLASSES else 99, step_s])
    step_ms = step_s * 1000
    n = int(weeks * WEEK_MS // step_ms)
    t = T0_MS + np.arange(n, dtype=np.int64) * step_ms
    names = [f"yard{i + 1}" for i in range(sites)]
    frames: list[pd.DataFrame] = []
    planted: list[Planted] = []
    weather: list[Planted] = []
    for s, site in enumerate(names):
        base, d, sigma = _background(cls, t, rng, tz)
        # minute-to-minute spread, constant within a minute
        minute = (t - T0_MS) // MIN_MS
        per_min = rng.normal(0.0, sigma, int(minute.max()) + 1)[minute]
        field_db = base + per_min
        if cls == "busy":
            base_at = {"day": 55.0, "evening": 47.0, "night": 41.0}
        elif cls == "quiet":
            base_at = {"day": 40.0, "evening": 38.0, "night": 35.0}
        elif cls == "evening_rise":
            base_at = {"day": 50.0, "evening": 50.0, "night": 38.0}
        else:
            base_at = {"day": 46.0, "evening": 46.0, "night": 36.0}
        site_planted = _plant(site, weeks, rng, base_at, per_week=per_week)
        planted.extend(site_planted)
        lc_extra = np.full(n, 6.0)
        if cls == "rain_wind":
            for w in range(math.ceil(weeks)):
                for j in range(2):
                    for _ in range(50):
                        a = T0_MS + w * WEEK_MS + int(rng.integers(0, 7 * 24)) * HOUR_MS
                        b = a + HOUR_MS
                        clear = all(
                            b + HOUR_MS < p.start_ms or a - HOUR_MS > p.end_ms
                            for p in site_planted + weather
                            if p.site == site
                        )
                        if clear and b <= t[-1]:
                            kind = "rain" if j == 0 else "wind"
                            weather.append(Planted(site, kind, a, b, 8.0))
                            sel = (t >= a) & (t < b)
                            field_db = np.where(sel, field_db + 8.0, field_db)
                            if kind == "wind":
                                lc_extra = np.where(sel, 20.0, lc_extra)
                            break
        n_nodes = 1 + s % 3
        for j in range(n_nodes):
            bg = field_db + rng.normal(0.0, 0.5, n)
            if step_s < 60:
                bg = bg + rng.normal(0.0, d / 2.5, n) - (d / 2.5) ** 2 * math.log(10) / 20
            src_e = np.zeros(n)
            src_c = np.zeros(n)
            src_max = np.full(n, -np.inf)
            src_90 = np.zeros(n)
            for p in site_planted:
                sel = (t >= p.start_ms) & (t < p.end_ms)
                m = int(sel.sum())
                if m == 0:
                    continue
                lvl = p.level_db - 2.0 * j
                mins = (t[sel] - p.start_ms) // MIN_MS
                nm = int(mins.max()) + 1
                if p.kind == "music":
                    lev = lvl + rng.normal(0.0, 1.0, nm)[mins]
                    bass, fmax, l90 = 12.0, 8.0, -3.0
                elif p.kind == "voices":
                    lev = lvl + rng.normal(0.0, 2.5, nm)[mins]
                    bass, fmax, l90 = 3.0, 12.0, -10.0
                else:
                    on = rng.random(nm) < 0.6
                    lev = np.where(on, lvl + rng.normal(0.0, 2.0, nm), lvl - 12.0)[mins]
                    bass, fmax, l90 = 5.0, 25.0, -20.0
                src_e[sel] += levels_to_energies(lev)
                src_c[sel] += levels_to_energies(lev + bass)
                src_max[sel] = np.maximum(src_max[sel], lev + fmax)
                src_90[sel] += levels_to_energies(lev + l90)
            laeq = energies_to_levels(levels_to_energies(bg) + src_e)
            lceq = energies_to_levels(levels_to_energies(bg + lc_extra) + src_c)
            la90 = energies_to_levels(levels_to_energies(bg - d) + src_90)
            lafmax = np.maximum(bg + d + 8.0, src_max)
            frames.append(
                pd.DataFrame(
                    {
                        "t_ms": t,
                        "site": site,
                        "node": f"{site}-n{j + 1}",
                        "LAeq": np.round(laeq, 2),
                        "LCeq": np.round(lceq, 2),
                        "LAFmax": np.round(lafmax, 2),
                        "LA90": np.round(la90, 2) if step_s >= 60 else np.nan,
                    }
                )
            )
    rows = pd.concat(frames, ignore_index=True)
    rows = rows.sort_values(["site", "t_ms"], kind="stable").reset_index(drop=True)
    return Scenario(cls, step_s, weeks, names, rows, planted, weather)


@dataclass(frozen=True, slots=True)
class Score:
    """Detection figures of one scenario (errors in seconds, detected minus planted)."""

    detected: int
    planted: int
    precision: float
    recall: float
    start_error_s: list[float]
    end_error_s: list[float]
    false_per_week_site: float
    weather_false_per_week_site: float

    @property
    def median_abs_start_s(self) -> float:
        """Median |start error| in seconds (NaN without matches)."""
        if not self.start_error_s:
            return math.nan
        return float(np.median(np.abs(self.start_error_s)))

    @property
    def median_abs_end_s(self) -> float:
        """Median |end error| in seconds (NaN without matches)."""
        if not self.end_error_s:
            return math.nan
        return float(np.median(np.abs(self.end_error_s)))


def _overlaps(e: Episode, p: Planted) -> bool:
    return bool(e.site == p.site and e.start_ms < p.end_ms and p.start_ms < e.end_ms)


def score(sc: Scenario, episodes: list[Episode]) -> Score:
    """Compare detected episodes with the truth.

    An episode is *true* when it overlaps a planted source of its site, and a planted
    source is *found* when an episode overlaps it. Start error = start of the first
    overlapping episode − planted start; end error = end of the last − planted end.
    False episodes (overlapping no planted source) are counted per week and site; those
    overlapping a weather step are also counted on their own.
    """
    true_eps = [e for e in episodes if any(_overlaps(e, p) for p in sc.planted)]
    false_eps = [e for e in episodes if not any(_overlaps(e, p) for p in sc.planted)]
    weather_false = [e for e in false_eps if any(_overlaps(e, p) for p in sc.weather)]
    found = 0
    starts: list[float] = []
    ends: list[float] = []
    for p in sc.planted:
        hits = sorted((e for e in episodes if _overlaps(e, p)), key=lambda e: e.start_ms)
        if hits:
            found += 1
            starts.append((hits[0].start_ms - p.start_ms) / 1000.0)
            ends.append((max(e.end_ms for e in hits) - p.end_ms) / 1000.0)
    site_weeks = sc.weeks * len(sc.sites)
    return Score(
        detected=len(episodes),
        planted=len(sc.planted),
        precision=len(true_eps) / len(episodes) if episodes else 1.0,
        recall=found / len(sc.planted) if sc.planted else 1.0,
        start_error_s=starts,
        end_error_s=ends,
        false_per_week_site=len(false_eps) / site_weeks,
        weather_false_per_week_site=len(weather_false) / site_weeks,
    )


def evaluate(sc: Scenario, rules: Rules) -> Score:
    """Detect episodes on the scenario's rows with ``rules`` (nodes combined as the
    rules say, exactly as ``klankkast-analyze`` loads a level export) and score them."""
    grids = build_grids(sc.rows, step_s=sc.step_s, node_combine=rules.node_combine)
    return score(sc, detect_many(grids, rules))


@dataclass(frozen=True, slots=True)
class Reports:
    """Complaints and visits drawn around the planted truth, and the true figures."""

    complaints: list[Complaint]
    visits: list[Visit]
    founded: int
    true_hit_rate: float
    true_silent_rate: float


def reports(sc: Scenario, seed: int = 2, complained_share: float = 0.64) -> Reports:
    """Complaints and visits with known truth.

    A planted source draws a founded complaint with probability ``complained_share``
    (incident 2-20 min after its start, received 5-30 min later); one unfounded
    complaint per site and fortnight lies at least 4 h from any planted source (and
    from weather steps). One visit in four comes while a planted source is on, the
    others at least 4 h after any, so the true hit rate is 0.25.
    """
    rng = np.random.default_rng([seed, len(sc.planted)])
    complaints: list[Complaint] = []
    visits: list[Visit] = []
    loud = sc.planted + sc.weather
    t_end = T0_MS + int(sc.weeks * WEEK_MS)

    def far(t: int, site: str) -> bool:
        return all(
            t < p.start_ms - 4 * HOUR_MS or t > p.end_ms + 4 * HOUR_MS
            for p in loud
            if p.site == site
        )

    founded = 0
    complained_sources = 0
    for k, p in enumerate(sc.planted):
        if rng.random() < complained_share:
            start = p.start_ms + int(rng.uniform(2, 20)) * MIN_MS
            received = start + int(rng.uniform(5, 30)) * MIN_MS
            complaints.append(Complaint(f"F{k}", received, start, None, p.site))
            founded += 1
            complained_sources += 1
    n_unfounded = max(1, int(len(sc.sites) * sc.weeks / 2))
    for k in range(n_unfounded):
        site = sc.sites[k % len(sc.sites)]
        for _ in range(1000):
            t = int(rng.integers(T0_MS + 2 * HOUR_MS, t_end - 2 * HOUR_MS))
            if far(t, site):
                complaints.append(Complaint(f"U{k}", t + 15 * MIN_MS, t, None, site))
                break
    n_visits = max(4, len(sc.planted) // 2)
    during = n_visits // 4
    for k in range(n_visits):
        if k < during:
            p = sc.planted[int(rng.integers(0, len(sc.planted)))]
            t = p.start_ms + (p.end_ms - p.start_ms) // 2
            visits.append(Visit(f"V{k}", t, t + 15 * MIN_MS, p.site, "warning"))
            continue
        site = sc.sites[k % len(sc.sites)]
        for _ in range(1000):
            t = int(rng.integers(T0_MS + 2 * HOUR_MS, t_end - 2 * HOUR_MS))
            if far(t, site):
                visits.append(Visit(f"V{k}", t, t + 15 * MIN_MS, site, "nothing_found"))
                break
    silent = 1.0 - complained_sources / len(sc.planted) if sc.planted else 0.0
    return Reports(complaints, visits, founded, during / len(visits), silent)


def evaluate_reports(sc: Scenario, rep: Reports, rules: Rules) -> dict[str, float]:
    """The officer's figures under ``rules``: corroborated complaints, visit hit rate and
    the share of episodes without a complaint (``klankkast-analyze report``'s numbers)."""
    grids = build_grids(sc.rows, step_s=sc.step_s, node_combine=rules.node_combine)
    eps = detect_many(grids, rules)
    span = (T0_MS, T0_MS + int(sc.weeks * WEEK_MS))
    s = analyse(eps, rep.complaints, rep.visits, Coverage(grids), rules, span).summary()
    return {
        "episodes": float(s["episodes"]["count"]),
        "corroborated": float(s["complaints"]["corroborated"]),
        "hit_rate": float(s["visits"]["hit_rate"] or 0.0),
        "silent_rate": float(s["episodes"]["without_complaint_rate"] or 0.0),
    }


@dataclass(frozen=True, slots=True)
class MarksTruth:
    """Residents' marks drawn around the planted truth.

    ``per_source[k]`` = (marks, distinct households) that planted source ``k`` drew, after
    counting each household once per 10 minutes; ``followers`` mark only while a planted
    source is on, ``random`` households mark at any hour and never near one.
    """

    followers: list[Mark]
    random: list[Mark]
    per_source: list[tuple[int, int]]


def resident_marks(
    sc: Scenario,
    *,
    seed: int = 3,
    households: int = 6,
    random_households: int = 4,
    random_per_week: float = 1.5,
) -> MarksTruth:
    """Marks with known truth. For each planted source, every one of a site's
    ``households`` follower households marks with probability 0.5 (at a random minute
    from 5 min after the start to the end), and a third of those mark once more 3-8
    min later (within 10 min: counted once) and, when the source lasts, 25-40 min later
    (counted). ``random_households`` per site mark ``random_per_week`` times a week at
    uniformly random times at least 4 h from any planted source or weather step."""
    rng = np.random.default_rng([seed, len(sc.planted)])
    loud = sc.planted + sc.weather
    t_end = T0_MS + int(sc.weeks * WEEK_MS)
    followers: list[Mark] = []
    per_source: list[tuple[int, int]] = []
    for p in sc.planted:
        counted = 0
        who: set[str] = set()
        for h in range(households):
            if rng.random() >= 0.5:
                continue
            hh = f"{p.site}-f{h}"
            latest = max(p.start_ms + 5 * MIN_MS, p.end_ms - MIN_MS)
            t = int(rng.integers(p.start_ms + 5 * MIN_MS, latest + 1)) // MIN_MS * MIN_MS
            followers.append(Mark(p.site, t, hh, "music" if p.kind == "music" else "voices", 3))
            counted += 1
            who.add(hh)
            if rng.random() < 1 / 3:
                followers.append(Mark(p.site, t + int(rng.integers(3, 9)) * MIN_MS, hh))
                later = t + int(rng.integers(25, 41)) * MIN_MS
                if later < p.end_ms - MIN_MS:
                    followers.append(Mark(p.site, later, hh))
                    counted += 1
        per_source.append((counted, len(who)))
    randoms: list[Mark] = []
    n_random = round(random_per_week * sc.weeks)
    for site in sc.sites:
        for h in range(random_households):
            placed = 0
            for _ in range(100 * max(1, n_random)):
                if placed == n_random:
                    break
                t = int(rng.integers(T0_MS + 2 * HOUR_MS, t_end - 2 * HOUR_MS))
                t = t // MIN_MS * MIN_MS
                if all(
                    t < q.start_ms - 4 * HOUR_MS or t > q.end_ms + 4 * HOUR_MS
                    for q in loud
                    if q.site == site
                ):
                    randoms.append(Mark(site, t, f"{site}-r{h}"))
                    placed += 1
    return MarksTruth(followers, randoms, per_source)
