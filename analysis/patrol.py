"""Patrol plan: when is nuisance going on, and which weekly windows should officers take?

Pure model over arrays; no files, no clock. The ``plan`` subcommand
(:mod:`klankkast.analysis.plan`) loads levels, derives episodes with the shared
episode rules and calls :func:`build_plan`.

Model
-----
Time is folded onto the *local* week (the wall clock of the rules' ``timezone``,
Europe/Amsterdam by default; Monday 00:00 = minute 0), because nightlife, closing times and patrol rosters follow the wall
clock, not UTC. The history is a grid of whole local weeks at one-minute
resolution: ``occupied`` (an episode is going on in that minute) and ``covered``
(levels were measured in that minute).

A *candidate window* is a weekly visit of ``duration_min`` minutes starting at a
multiple of ``step_min`` after Monday 00:00 (windows may run over the week's end
into the next Monday). For week ``w`` and candidate ``c`` a visit *would have found
nuisance* (a hit) when episodes fill more than half of the window (an officer who
only catches the last minutes of an episode, or leaves as one starts, has little to
act on); the window counts as *observed* that week when levels cover at least half
of it. Among windows of equal probability the plan prefers the one most filled with
nuisance (a small tie-breaker on the mean filled share).

For each site and candidate the hit probability is a Beta-Binomial posterior
(Gelman et al., *Bayesian Data Analysis*, 3rd ed., §2.4 and §5.3) with ``k`` hits in
``n`` observed weeks::

    p_c | k, n  ~  Beta(k + m * q_tod, n - k + m * (1 - q_tod))

The prior mean ``q_tod`` is the site's *daily profile*: the hit rate of the same
time of day pooled over all seven weekdays (itself shrunk with strength ``m0``
towards the site's overall rate), so a slot with few observed weeks borrows from the
site's daily rhythm while a slot with many weeks speaks for itself. ``m`` is the
prior's weight in pseudo-weeks. The hour-of-week table reported beside the plan
is the same model with one-hour windows on the hour.

Plan
----
With ``K`` visits a week the expected number of visits that find nuisance is the sum
of the chosen windows' probabilities, **a courtyard-night counted once**: a night runs
from noon to noon, and a second window at the same courtyard in the same night would
visit the same party again (Friday 22-00 and Saturday 00-02 are one party), so it adds
nothing and spare capacity goes to the next best courtyard-night, usually another
courtyard's (:func:`choose_windows_per_night`). Windows of one site must not overlap;
different sites may be visited at the same time (several teams). Windows of one site
that touch are merged into one (:func:`merge_windows`). :func:`choose_windows` keeps
the previous exact optimum without the night rule (a dynamic programme per site over
the circular week, then a max-plus combination over sites), for comparison.

Back-test
---------
For each of the last ``W`` weeks: fit on the weeks before it, plan, and score the
plan on that week (hits / observed visits). Compared with the hit rate of the real
historical visits in those weeks (a visit counts as a hit when an episode overlaps
its stay, as in the report) and with random plans of the same capacity (uniform over
all observed candidate windows of all sites). Intervals: Wilson score 95 % for
the plan and the historical visits (Wilson 1927, Brown, Cai & DasGupta 2001); the
2.5-97.5 percentiles of 1000 random plans for the random baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy import stats

from klankkast.analysis.errors import PlanError

__all__ = [
    "DAY_MIN",
    "TZ",
    "WEEKDAYS",
    "WEEK_MIN",
    "Backtest",
    "History",
    "Plan",
    "PlanSpec",
    "SlotModel",
    "Window",
    "backtest",
    "build_history",
    "build_plan",
    "choose_windows",
    "choose_windows_per_night",
    "fit",
    "local_minutes",
    "merge_windows",
    "night_of",
    "wilson_interval",
    "window_hits",
]

TZ: Final = "Europe/Amsterdam"
DAY_MIN: Final = 24 * 60
WEEK_MIN: Final = 7 * DAY_MIN
WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Minutes from 1970-01-01 00:00 (a Thursday) to Monday 1970-01-05 00:00.
_MONDAY0_MIN: Final = 4 * DAY_MIN


def local_minutes(t_ms: np.ndarray | Sequence[int], tz: str = TZ) -> np.ndarray:
    """UTC epoch milliseconds -> minutes since 1970-01-01 00:00 on the local wall clock.

    The repeated autumn hour folds onto itself and the spring gap stays empty:
    this is the wall-clock time an officer reads.
    """
    t = np.asarray(t_ms, dtype=np.int64)
    if t.size == 0:
        return np.zeros(0, dtype=np.float64)
    idx = pd.to_datetime(t, unit="ms", utc=True).tz_convert(tz).tz_localize(None)
    ms = np.asarray(idx.as_unit("ms").asi8, dtype=np.int64)
    return ms / 60_000.0


#: a week is held out in the back-test only when levels cover at least this share of it
MIN_WEEK_COVERAGE = 0.5
#: ... and only when it is over: the levels reach to within this many minutes of its end.
#: A week still running has its evening windows in the future, unmeasured, so a plan
#: scored on it gets no rate at all (the demo's plan failed from Thursday noon to
#: Friday night).
COMPLETE_WEEK_SLACK_MIN = 60


@dataclass(frozen=True)
class History:
    """Per-site minute grids over whole local weeks.

    ``occupied[s]`` and ``covered[s]`` are boolean arrays of shape
    ``(n_weeks, WEEK_MIN)``; week 0 starts at local minute ``week0_min``.
    """

    sites: tuple[str, ...]
    week0_min: int
    occupied: np.ndarray  # (S, W, WEEK_MIN) bool
    covered: np.ndarray  # (S, W, WEEK_MIN) bool
    #: the IANA zone whose wall clock the weeks follow (the rules' ``timezone``)
    tz: str = TZ

    @property
    def n_weeks(self) -> int:
        return int(self.occupied.shape[1])

    def week_start_min(self, w: int) -> int:
        """Local minute (since 1970-01-01 wall clock) at which week ``w`` starts."""
        return self.week0_min + w * WEEK_MIN

    @property
    def end_min(self) -> int:
        """Minutes from the start of week 0 to the end of the last covered minute."""
        covered = self.covered.reshape(len(self.sites), -1).any(axis=0)
        idx = np.flatnonzero(covered)
        return int(idx[-1]) + 1 if idx.size else 0

    def complete_weeks(self) -> np.ndarray:
        """Weeks whose end the levels reach (within :data:`COMPLETE_WEEK_SLACK_MIN`)."""
        ends = (np.arange(self.n_weeks) + 1) * WEEK_MIN
        return np.flatnonzero(ends <= self.end_min + COMPLETE_WEEK_SLACK_MIN)

    def heldout_candidates(self) -> np.ndarray:
        """Weeks a back-test can score: complete (:meth:`complete_weeks`), with levels
        covering at least :data:`MIN_WEEK_COVERAGE` of the week (all sites together),
        and with at least one earlier week to fit on.

        The week still running when the history ends is never held out, whatever the
        weekday: its remaining windows lie in the future. A history that starts on a
        Sunday has a nearly empty first week, which can still be fitted on.
        """
        share = self.covered.mean(axis=(0, 2)) if self.covered.size else np.zeros(0)
        weeks = np.intersect1d(np.flatnonzero(share >= MIN_WEEK_COVERAGE), self.complete_weeks())
        return weeks[weeks >= 1]

    def no_backtest_code(self) -> str:
        """``too_few_weeks`` when no week can be held out, else ""."""
        return "" if self.heldout_candidates().size else "too_few_weeks"

    def no_backtest_reason(self) -> str:
        """Why no week can be held out (empty when some week can)."""
        if self.heldout_candidates().size:
            return ""
        complete = self.complete_weeks()
        return (
            f"the levels span {self.n_weeks} local week(s) (Monday-Sunday), "
            f"{complete.size} of them complete; a back-test needs a complete week that is at "
            f"least {MIN_WEEK_COVERAGE:.0%} measured, after an earlier week to fit on"
        )


def _week_index(minute: np.ndarray) -> np.ndarray:
    return np.floor((minute - _MONDAY0_MIN) / WEEK_MIN).astype(np.int64)


def build_history(
    sites: Sequence[str],
    level_times_ms: Mapping[str, np.ndarray],
    episodes: Mapping[str, Sequence[tuple[int, int]]],
    *,
    level_step_s: Mapping[str, float] | None = None,
    tz: str = TZ,
) -> History:
    """Fold level timestamps and episodes onto whole local weeks at minute resolution.

    Parameters
    ----------
    sites
        Site ids, in the order of the result.
    level_times_ms
        Per site, UTC ms of the level rows (interval starts); they define coverage.
    episodes
        Per site, ``(start_ms, end_ms)`` of each episode (UTC, end exclusive).
    level_step_s
        Per site, the duration a level row covers (60 for minute rows, 1 for
        seconds). Estimated from the median spacing when absent.
    """
    if not sites:
        raise PlanError("levels", "no sites", "at least one site with levels")
    all_min = [local_minutes(level_times_ms.get(s, np.zeros(0)), tz) for s in sites]
    non_empty = [m for m in all_min if m.size]
    if not non_empty:
        raise PlanError("levels", "no rows", "level rows for at least one site")
    lo = min(float(m.min()) for m in non_empty)
    hi = max(float(m.max()) for m in non_empty)
    w_lo = int(_week_index(np.array([lo]))[0])
    w_hi = int(_week_index(np.array([hi]))[0])
    n_weeks = w_hi - w_lo + 1
    week0 = _MONDAY0_MIN + w_lo * WEEK_MIN
    total = n_weeks * WEEK_MIN
    occupied = np.zeros((len(sites), total), dtype=bool)
    covered = np.zeros((len(sites), total), dtype=bool)
    for i, site in enumerate(sites):
        mins = all_min[i]
        if mins.size:
            step_s = (level_step_s or {}).get(site)
            if step_s is None:
                step_s = _median_step_s(np.asarray(level_times_ms[site]))
            span = max(1, math.ceil(step_s / 60.0))
            start = np.floor(mins - week0).astype(np.int64)
            _mark(covered[i], start, start + span)
        eps = list(episodes.get(site, ()))
        if eps:
            arr = np.asarray(eps, dtype=np.int64).reshape(-1, 2)
            s_min = local_minutes(arr[:, 0], tz) - week0
            # the end is exclusive: the last occupied minute holds end - 1 ms
            e_min = local_minutes(np.maximum(arr[:, 1] - 1, arr[:, 0]), tz) - week0
            a = np.floor(s_min).astype(np.int64)
            # in the repeated autumn hour a local end can precede the local start: such
            # an episode keeps its duration from its local start
            dur = np.ceil((arr[:, 1] - arr[:, 0]) / 60_000).astype(np.int64)
            b = np.maximum(np.floor(e_min).astype(np.int64) + 1, a + np.maximum(dur, 1))
            _mark(occupied[i], a, b)
    shape = (len(sites), n_weeks, WEEK_MIN)
    return History(
        sites=tuple(sites),
        week0_min=week0,
        occupied=occupied.reshape(shape),
        covered=covered.reshape(shape),
        tz=tz,
    )


def _median_step_s(t_ms: np.ndarray) -> float:
    if t_ms.size < 2:
        return 60.0
    t = t_ms if bool(np.all(t_ms[1:] >= t_ms[:-1])) else np.sort(t_ms)
    d = np.diff(t)
    d = d[d > 0]
    return float(np.median(d)) / 1000.0 if d.size else 60.0


def _mark(row: np.ndarray, start: np.ndarray, stop: np.ndarray) -> None:
    """Set ``row[start:stop] = True`` for many intervals (difference array)."""
    n = row.size
    start = np.clip(start, 0, n)
    stop = np.clip(stop, 0, n)
    keep = stop > start
    diff = np.zeros(n + 1, dtype=np.int64)
    np.add.at(diff, start[keep], 1)
    np.add.at(diff, stop[keep], -1)
    row |= np.cumsum(diff[:-1]) > 0


def _check_grid(step_min: int, duration_min: int) -> None:
    if step_min <= 0 or DAY_MIN % step_min:
        raise PlanError("step", step_min, "a positive number of minutes that divides 1440")
    if not 1 <= duration_min <= DAY_MIN:
        raise PlanError("duration", duration_min, "1 to 1440 minutes")


def window_hits(
    history: History, step_min: int, duration_min: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits, observation mask and occupied fraction per site, week and candidate window.

    Returns three arrays of shape ``(S, W, N)`` with ``N = WEEK_MIN // step_min``:
    ``hit`` (episodes fill more than half of the window), ``observed`` (levels cover
    at least half of it) and ``frac`` (the share of the window's minutes with an episode).
    A window running past the week's end continues into the next week's minutes
    (unobserved after the last week).
    """
    _check_grid(step_min, duration_min)
    s_n, w_n, _ = history.occupied.shape
    n = WEEK_MIN // step_min
    flat_occ = history.occupied.reshape(s_n, -1)
    flat_cov = history.covered.reshape(s_n, -1)
    pad = np.zeros((s_n, duration_min), dtype=bool)
    occ = np.concatenate([flat_occ, pad], axis=1)
    cov = np.concatenate([flat_cov, pad], axis=1)
    cs_occ = np.concatenate(
        [np.zeros((s_n, 1), np.int32), np.cumsum(occ, axis=1, dtype=np.int32)], 1
    )
    cs_cov = np.concatenate(
        [np.zeros((s_n, 1), np.int32), np.cumsum(cov, axis=1, dtype=np.int32)], 1
    )
    starts = (np.arange(w_n)[:, None] * WEEK_MIN + np.arange(n)[None, :] * step_min).ravel()
    n_occ = (cs_occ[:, starts + duration_min] - cs_occ[:, starts]).reshape(s_n, w_n, n)
    n_cov = (cs_cov[:, starts + duration_min] - cs_cov[:, starts]).reshape(s_n, w_n, n)
    observed = 2 * n_cov >= duration_min
    hit = (2 * n_occ > duration_min) & observed
    frac = np.where(observed, n_occ / float(duration_min), 0.0)
    return hit, observed, frac


@dataclass(frozen=True)
class SlotModel:
    """Posterior hit probability per site and candidate window (shape ``(S, N)``)."""

    sites: tuple[str, ...]
    step_min: int
    duration_min: int
    k: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    profile: np.ndarray  # (S, N_per_day): pooled daily profile (prior means)
    frac: np.ndarray  # (S, N): mean occupied share of the window (tie-breaker)
    site_observed: np.ndarray  # (S,) bool: the site has any observed window


def fit(
    hit: np.ndarray,
    observed: np.ndarray,
    frac: np.ndarray,
    sites: Sequence[str],
    step_min: int,
    duration_min: int,
    *,
    prior_weeks: float = 4.0,
    profile_prior_weeks: float = 2.0,
    credibility: float = 0.9,
) -> SlotModel:
    """Beta-Binomial posterior per site and window, pooled towards the daily profile.

    ``hit``, ``observed`` and ``frac`` have shape ``(S, W, N)`` (see
    :func:`window_hits`); only the weeks given are used, so a back-test passes the
    weeks before the held-out one.
    """
    s_n = hit.shape[0]
    per_day = DAY_MIN // step_min
    k = (hit & observed).sum(axis=1).astype(np.float64)
    nn = observed.sum(axis=1).astype(np.float64)
    k_site = k.sum(axis=1)
    n_site = nn.sum(axis=1)
    p_site = (k_site + 1.0) / (n_site + 2.0)  # Beta(1, 1) prior on the site's overall rate
    k_tod = k.reshape(s_n, 7, per_day).sum(axis=1)
    n_tod = nn.reshape(s_n, 7, per_day).sum(axis=1)
    m0 = profile_prior_weeks
    profile = (k_tod + m0 * p_site[:, None]) / (n_tod + m0)
    q = np.tile(profile, (1, 7))
    m = prior_weeks
    alpha = k + m * q
    beta = nn - k + m * (1.0 - q)
    mean = alpha / (alpha + beta)
    tail = (1.0 - credibility) / 2.0
    low = stats.beta.ppf(tail, alpha, beta)
    high = stats.beta.ppf(1.0 - tail, alpha, beta)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(nn > 0, (frac * observed).sum(axis=1) / np.maximum(nn, 1), 0.0)
    return SlotModel(
        sites=tuple(sites),
        step_min=step_min,
        duration_min=duration_min,
        k=k,
        n=nn,
        mean=mean,
        low=low,
        high=high,
        profile=profile,
        frac=f,
        site_observed=n_site > 0,
    )


# -- plan optimisation --------------------------------------------------------------


def _linear_dp(
    w: np.ndarray, a: int, b: int, k_max: int, span: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best sum of at most k non-overlapping windows among candidates ``a..b``.

    ``w`` is ``(S, N)``; windows ``i < j`` overlap when ``j - i < span``.
    Returns ``F`` of shape ``(len+1, S, k_max+1)`` (``F[0]`` is the answer) and the
    take-table for the traceback.
    """
    s_n = w.shape[0]
    length = max(0, b - a + 1)
    f = np.zeros((length + 1, s_n, k_max + 1))
    take = np.zeros((length, s_n, k_max + 1), dtype=bool)
    neg = np.full((s_n, 1), -np.inf)
    for idx in range(length - 1, -1, -1):
        skip = f[idx + 1]
        nxt = f[min(idx + span, length)]
        tk = np.concatenate([neg, w[:, a + idx : a + idx + 1] + nxt[:, :-1]], axis=1)
        t = tk > skip
        take[idx] = t
        f[idx] = np.where(t, tk, skip)
    return f, take


def _traceback(take: np.ndarray, a: int, s: int, k: int, span: int) -> list[int]:
    out: list[int] = []
    idx = 0
    length = take.shape[0]
    while idx < length and k > 0:
        if take[idx, s, k]:
            out.append(a + idx)
            k -= 1
            idx += span
        else:
            idx += 1
    return out


def choose_windows(
    score: np.ndarray, capacity: int, step_min: int, duration_min: int
) -> list[tuple[int, int]]:
    """Choose at most ``capacity`` windows maximising the summed score, exactly.

    ``score`` is ``(S, N)`` (non-negative). Windows of one site do not overlap on the
    circular week. Returns ``(site_index, candidate_index)`` pairs, sorted.
    """
    if capacity < 1:
        raise PlanError("capacity", capacity, "a positive number of visits per week")
    s_n, n = score.shape
    span = max(1, math.ceil(duration_min / step_min))
    if span > n:
        span = n
    k_max = min(capacity, n // span if n >= span else 1)
    # case A: no chosen window straddles Monday 00:00 -> candidates 0..N-span
    f_a, t_a = _linear_dp(score, 0, n - span, k_max, span)
    best = f_a[0].copy()  # (S, k_max+1)
    how: list[list[tuple[int, int]]] = [[(-1, -1)] * (k_max + 1) for _ in range(s_n)]
    tables: dict[int, tuple[np.ndarray, int]] = {-1: (t_a, 0)}
    # case B: window r straddles the boundary; the others lie in (r+span-N) .. (r-span)
    for r in range(n - span + 1, n):
        a, b = r + span - n, r - span
        f_b, t_b = _linear_dp(score, a, b, k_max, span)
        tables[r] = (t_b, a)
        val = np.full((s_n, k_max + 1), -np.inf)
        val[:, 1:] = score[:, r : r + 1] + f_b[0][:, :-1]
        better = val > best
        best = np.where(better, val, best)
        for s, kk in zip(*np.nonzero(better), strict=True):
            how[int(s)][int(kk)] = (r, 0)
    # max-plus combination over sites: how many visits each site gets
    g = best[0].copy()
    alloc = [[int(kk)] for kk in range(k_max + 1)]
    for s in range(1, s_n):
        g_new = np.full(k_max + 1, -np.inf)
        alloc_new: list[list[int]] = [[] for _ in range(k_max + 1)]
        for total in range(k_max + 1):
            for j in range(total + 1):
                v = g[total - j] + best[s, j]
                if v > g_new[total] + 1e-12:
                    g_new[total] = v
                    alloc_new[total] = [*alloc[total - j], j]
        g, alloc = g_new, alloc_new
    counts = alloc[int(np.argmax(g))]
    chosen: list[tuple[int, int]] = []
    for s, kk in enumerate(counts):
        if kk == 0:
            continue
        r, _ = how[s][kk]
        if r == -1:
            t, a = tables[-1]
            idxs = _traceback(t, a, s, kk, span)
        else:
            t, a = tables[r]
            idxs = [r, *_traceback(t, a, s, kk - 1, span)]
        chosen.extend((s, i) for i in idxs)
    return sorted(chosen)


#: a patrol night runs from noon to noon: Friday 22:00-00:00 and Saturday 00:00-02:00
#: are both Friday's night (one party)
NIGHT_START_MIN: Final = 12 * 60


def night_of(start_min: np.ndarray | int) -> np.ndarray:
    """Night index (0 = Monday's night, from Monday 12:00 to Tuesday 12:00; Monday
    before noon belongs to Sunday's night, 6) of window starts in minutes of the week."""
    out: np.ndarray = ((np.asarray(start_min) - NIGHT_START_MIN) // DAY_MIN) % 7
    return out


def choose_windows_per_night(
    score: np.ndarray, capacity: int, step_min: int, duration_min: int
) -> list[tuple[int, int]]:
    """Choose at most ``capacity`` windows, counting a courtyard-night once.

    A second window at the same site in the same night (noon to noon,
    :func:`night_of`) would visit the same party again: it adds nothing to the
    objective, so it is never chosen, and spare capacity goes to the next best
    site-night — another courtyard's, or another night of the same courtyard.
    The objective (the sum of the chosen windows' scores, at most one per site-night,
    windows of one site not overlapping) is maximised greedily: the best window of
    every site-night, best first. This is exact unless two of a site's best windows
    meet at noon (then the later one is skipped for an overlap). Returns
    ``(site_index, candidate_index)`` pairs, sorted.
    """
    if capacity < 1:
        raise PlanError("capacity", capacity, "a positive number of visits per week")
    s_n, n = score.shape
    starts = np.arange(n) * step_min
    nights = night_of(starts)
    order = np.lexsort((np.tile(np.arange(n), s_n), -score.ravel()))
    used: set[tuple[int, int]] = set()
    chosen: list[tuple[int, int]] = []
    taken: dict[int, list[int]] = {}
    for flat in order:
        if len(chosen) >= capacity:
            break
        s, c = divmod(int(flat), n)
        key = (s, int(nights[c]))
        if key in used:
            continue
        a = int(starts[c])
        clash = any(
            (a - b) % WEEK_MIN < duration_min or (b - a) % WEEK_MIN < duration_min
            for b in taken.get(s, [])
        )
        if clash:
            continue
        used.add(key)
        taken.setdefault(s, []).append(a)
        chosen.append((s, c))
    return sorted(chosen)


# -- results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One weekly patrol window (local wall-clock time, Europe/Amsterdam)."""

    site: str
    weekday: int  # 0 = Monday
    start_min: int  # minutes after local midnight of ``weekday``
    duration_min: int
    probability: float
    probability_low: float
    probability_high: float
    observed_weeks: int
    hit_weeks: int

    @property
    def end_weekday(self) -> int:
        return (self.weekday + (self.start_min + self.duration_min) // DAY_MIN) % 7

    @property
    def end_min(self) -> int:
        return (self.start_min + self.duration_min) % DAY_MIN

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "weekday": WEEKDAYS[self.weekday],
            "weekday_iso": self.weekday + 1,
            "start": _hhmm(self.start_min),
            "end": _hhmm(self.end_min),
            "end_weekday": WEEKDAYS[self.end_weekday],
            "duration_min": self.duration_min,
            "probability": round(self.probability, 4),
            "probability_low": round(self.probability_low, 4),
            "probability_high": round(self.probability_high, 4),
            "observed_weeks": self.observed_weeks,
            "hit_weeks": self.hit_weeks,
        }


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _plan_from_model(model: SlotModel, capacity: int) -> list[tuple[int, int]]:
    score = np.where(model.site_observed[:, None], model.mean + 0.05 * model.frac, 0.0)
    return choose_windows_per_night(score, capacity, model.step_min, model.duration_min)


def _windows(model: SlotModel, chosen: Sequence[tuple[int, int]]) -> list[Window]:
    """The chosen windows; back-to-back (or overlapping) windows of one site are merged
    into one longer window with the larger probability and the smaller week counts."""
    out = []
    for s, c in chosen:
        start = c * model.step_min
        out.append(
            Window(
                site=model.sites[s],
                weekday=start // DAY_MIN,
                start_min=start % DAY_MIN,
                duration_min=model.duration_min,
                probability=float(model.mean[s, c]),
                probability_low=float(model.low[s, c]),
                probability_high=float(model.high[s, c]),
                observed_weeks=int(model.n[s, c]),
                hit_weeks=int(model.k[s, c]),
            )
        )
    return merge_windows(out)


def merge_windows(windows: Sequence[Window]) -> list[Window]:
    """Merge windows of one site that touch or overlap on the circular week.

    Fri 22:00-00:00 and Sat 00:00-02:00 become Fri 22:00-02:00: one visit, not two.
    The merged window keeps the larger probability (with its interval) and the
    smaller observed/hit week counts.
    """
    by_site: dict[str, list[Window]] = {}
    for w in windows:
        by_site.setdefault(w.site, []).append(w)
    out: list[Window] = []
    for ws in by_site.values():
        ws = sorted(ws, key=lambda w: w.weekday * DAY_MIN + w.start_min)
        merged: list[Window] = []
        for w in ws:
            if merged:
                last = merged[-1]
                a = last.weekday * DAY_MIN + last.start_min
                b = w.weekday * DAY_MIN + w.start_min
                if b <= a + last.duration_min:
                    merged[-1] = _join(last, w, max(last.duration_min, b - a + w.duration_min))
                    continue
            merged.append(w)
        # the last window may run past Sunday into the first one
        if len(merged) > 1:
            last, first = merged[-1], merged[0]
            a = last.weekday * DAY_MIN + last.start_min
            b = first.weekday * DAY_MIN + first.start_min + WEEK_MIN
            if b <= a + last.duration_min:
                merged[-1] = _join(last, first, max(last.duration_min, b - a + first.duration_min))
                merged.pop(0)
        out.extend(merged)
    out.sort(key=lambda x: (x.weekday, x.start_min, x.site))
    return out


def _join(a: Window, b: Window, duration_min: int) -> Window:
    best = a if a.probability >= b.probability else b
    return Window(
        site=a.site,
        weekday=a.weekday,
        start_min=a.start_min,
        duration_min=min(duration_min, WEEK_MIN),
        probability=best.probability,
        probability_low=best.probability_low,
        probability_high=best.probability_high,
        observed_weeks=min(a.observed_weeks, b.observed_weeks),
        hit_weeks=min(a.hit_weeks, b.hit_weeks),
    )


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion (Wilson 1927); None when n == 0."""
    if n <= 0:
        return None
    p = hits / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Backtest:
    weeks: int
    plan_hits: int
    plan_visits: int
    historical_hits: int
    historical_visits: int
    random_rate: float | None
    random_interval: tuple[float, float] | None
    per_week: list[dict[str, Any]] = field(default_factory=list)
    #: why there is no plan hit rate, in words (empty when there is one)
    reason: str = ""
    #: the same as a code for translations: ``too_few_weeks``, ``not_asked``
    reason_code: str = ""
    #: local weeks the history spans, and how many of them are complete
    history_weeks: int = 0
    complete_weeks: int = 0

    @staticmethod
    def _rate(h: int, n: int) -> float | None:
        return h / n if n else None

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        def ci(x: tuple[float, float] | None) -> list[float] | None:
            return None if x is None else [round(x[0], 4), round(x[1], 4)]

        rp = self._rate(self.plan_hits, self.plan_visits)
        rh = self._rate(self.historical_hits, self.historical_visits)
        ratio = None
        if rp is not None and self.random_rate:
            ratio = round(rp / self.random_rate, 3)
        return {
            "weeks": self.weeks,
            "hit_rate_plan": r(rp),
            "hit_rate_plan_ci": ci(wilson_interval(self.plan_hits, self.plan_visits)),
            "plan_visits": self.plan_visits,
            "plan_hits": self.plan_hits,
            "hit_rate_historical": r(rh),
            "hit_rate_historical_ci": ci(
                wilson_interval(self.historical_hits, self.historical_visits)
            ),
            "historical_visits": self.historical_visits,
            "historical_hits": self.historical_hits,
            "hit_rate_random": r(self.random_rate),
            "hit_rate_random_ci": ci(self.random_interval),
            "plan_vs_random": ratio,
            "ci_method": "Wilson score 95% (plan, historical); 2.5-97.5 percentiles of 1000 random plans",
            "per_week": self.per_week,
            "reason": self._reason(rp),
            "reason_code": self._reason_code(rp),
            "history_weeks": self.history_weeks,
            "complete_weeks": self.complete_weeks,
        }

    def _reason_code(self, rate: float | None) -> str | None:
        if rate is not None:
            return None
        if self.reason:
            return self.reason_code or "too_few_weeks"
        return "no_levels_in_windows"

    def _reason(self, rate: float | None) -> str | None:
        if rate is not None:
            return None
        if self.reason:
            return self.reason
        return (
            f"in the {self.weeks} held-out week(s) none of the plan's windows had levels "
            "(the node was off or not yet installed then)"
        )


@dataclass(frozen=True)
class Plan:
    windows: list[Window]
    capacity: int
    duration_min: int
    step_min: int
    backtest: Backtest
    hour_of_week: dict[str, list[float]]
    weeks_of_history: int
    first_week: str
    prior_weeks: float = 4.0
    timezone: str = TZ

    def to_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "capacity": self.capacity,
            "duration_min": self.duration_min,
            "step_min": self.step_min,
            "weeks_of_history": self.weeks_of_history,
            "first_week": self.first_week,
            "expected_hits_per_week": round(sum(w.probability for w in self.windows), 3),
            "windows": [w.to_json() for w in self.windows],
            "backtest": self.backtest.to_json(),
            "hour_of_week": {s: [round(p, 4) for p in v] for s, v in self.hour_of_week.items()},
            "model": (
                "Beta-Binomial per site and window, pooled towards the site's daily profile; "
                f"windows on the {self.timezone} wall clock, Monday 00:00 = start of week"
            ),
            "objective": (
                "expected visits finding nuisance, a courtyard-night (noon to noon) counted "
                "once; back-to-back windows of one courtyard merged"
            ),
            "hit_definition": (
                "a planned window finds nuisance when episodes fill more than half of it; "
                "a historical visit when an episode overlaps its stay"
            ),
            "prior_weeks": self.prior_weeks,
        }


def _visit_hits(
    history: History, visits: Sequence[tuple[str, int, int]], duration_min: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Week index, hit flag and observed flag of each historical visit."""
    site_idx = {s: i for i, s in enumerate(history.sites)}
    rows = [(site_idx[s], a, b) for s, a, b in visits if s in site_idx]
    if not rows:
        z = np.zeros(0, dtype=np.int64)
        return z, z.astype(bool), z.astype(bool)
    arr = np.asarray(rows, dtype=np.int64)
    start = np.floor(local_minutes(arr[:, 1], history.tz) - history.week0_min).astype(np.int64)
    left = arr[:, 2]
    left = np.where(left > arr[:, 1], left, arr[:, 1] + duration_min * 60_000)
    stop = np.floor(local_minutes(left - 1, history.tz) - history.week0_min).astype(np.int64) + 1
    total = history.n_weeks * WEEK_MIN
    occ = history.occupied.reshape(len(history.sites), -1)
    cov = history.covered.reshape(len(history.sites), -1)
    hit = np.zeros(len(rows), dtype=bool)
    obs = np.zeros(len(rows), dtype=bool)
    for j, (s, a, b) in enumerate(zip(arr[:, 0], start, stop, strict=True)):
        a0, b0 = max(0, int(a)), min(total, int(b))
        if b0 <= a0:
            continue
        obs[j] = bool(cov[s, a0:b0].any())
        hit[j] = bool(occ[s, a0:b0].any())
    week = np.floor_divide(start, WEEK_MIN)
    return week, hit, obs


@dataclass(frozen=True, slots=True)
class PlanSpec:
    """What a plan is asked for: ``capacity`` visits a week of ``duration_min`` minutes,
    windows starting every ``step_min`` minutes, back-tested on the last ``weeks`` weeks.

    ``visits`` are ``(site, arrived_ms, left_ms)`` of the real historical visits
    (``left_ms <= arrived_ms`` means unknown: ``duration_min`` is assumed);
    ``prior_weeks`` is the weight of the pooled daily profile in weeks of data, and
    ``seed`` makes the random plans of the back-test repeatable.
    """

    capacity: int
    duration_min: int
    weeks: int
    step_min: int = 30
    visits: Sequence[tuple[str, int, int]] = ()
    prior_weeks: float = 4.0
    seed: int = 0


def backtest(
    history: History,
    spec: PlanSpec,
    *,
    random_plans: int = 1000,
    hits: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Backtest:
    """Score plans fitted on the weeks before each of the last ``weeks`` weeks.

    ``weeks = 0`` scores nothing: the result has no rates and says why in ``reason``.
    """
    capacity, duration_min, weeks, step_min = (
        spec.capacity, spec.duration_min, spec.weeks, spec.step_min
    )  # fmt: skip
    if weeks < 0:
        raise PlanError("weeks", weeks, "0 (no back-test) or more held-out weeks")
    n_complete = int(history.complete_weeks().size)
    if weeks == 0:
        return Backtest(
            weeks=0, plan_hits=0, plan_visits=0, historical_hits=0, historical_visits=0,
            random_rate=None, random_interval=None,
            reason=history.no_backtest_reason() or "no back-test was asked for",
            reason_code=history.no_backtest_code() or "not_asked",
            history_weeks=history.n_weeks, complete_weeks=n_complete,
        )  # fmt: skip
    candidates = history.heldout_candidates()
    if weeks > candidates.size:
        raise PlanError(
            "weeks",
            weeks,
            f"at most {candidates.size} held-out week(s): the history has {history.n_weeks} "
            f"week(s), of which {candidates.size} are at least {MIN_WEEK_COVERAGE:.0%} measured "
            "and have an earlier week to fit on",
        )
    hit, observed, frac = hits or window_hits(history, step_min, duration_min)
    rng = np.random.default_rng(spec.seed)
    v_week, v_hit, v_obs = _visit_hits(history, spec.visits, duration_min)
    plan_hits = plan_visits = hist_hits = hist_visits = 0
    rand_hits = np.zeros(random_plans)
    rand_visits = 0
    per_week = []
    for t in (int(w) for w in candidates[-weeks:]):
        model = fit(
            hit[:, :t], observed[:, :t], frac[:, :t], history.sites, step_min, duration_min,
            prior_weeks=spec.prior_weeks,
        )  # fmt: skip
        chosen = _plan_from_model(model, capacity)
        ph = sum(int(hit[s, t, c]) for s, c in chosen)
        pv = sum(int(observed[s, t, c]) for s, c in chosen)
        sel = v_obs & (v_week == t)
        hh, hv = int((v_hit & sel).sum()), int(sel.sum())
        obs_flat = np.flatnonzero(observed[:, t].ravel())
        if obs_flat.size:
            picks = rng.integers(0, obs_flat.size, size=(random_plans, capacity))
            rand_hits += hit[:, t].ravel()[obs_flat[picks]].sum(axis=1)
            rand_visits += capacity
        plan_hits += ph
        plan_visits += pv
        hist_hits += hh
        hist_visits += hv
        per_week.append(
            {
                "week_start": _week_label(history, t),
                "plan_visits": pv,
                "plan_hits": ph,
                "historical_visits": hv,
                "historical_hits": hh,
            }
        )
    rand_rate = rand_int = None
    if rand_visits:
        rates = rand_hits / rand_visits
        rand_rate = float(rates.mean())
        rand_int = (float(np.percentile(rates, 2.5)), float(np.percentile(rates, 97.5)))
    return Backtest(
        weeks=weeks,
        plan_hits=plan_hits,
        plan_visits=plan_visits,
        historical_hits=hist_hits,
        historical_visits=hist_visits,
        random_rate=rand_rate,
        random_interval=rand_int,
        per_week=per_week,
        history_weeks=history.n_weeks,
        complete_weeks=n_complete,
    )


def _week_label(history: History, w: int) -> str:
    minute = history.week_start_min(w)
    return str(pd.Timestamp(minute * 60_000, unit="ms").date())


def build_plan(history: History, spec: PlanSpec) -> Plan:
    """Fit on the whole history, choose the weekly windows and back-test them."""
    _check_grid(spec.step_min, spec.duration_min)
    hits = window_hits(history, spec.step_min, spec.duration_min)
    bt = backtest(history, spec, hits=hits)
    prior = spec.prior_weeks
    model = fit(*hits, history.sites, spec.step_min, spec.duration_min, prior_weeks=prior)
    windows = _windows(model, _plan_from_model(model, spec.capacity))
    hours = fit(*window_hits(history, 60, 60), history.sites, 60, 60, prior_weeks=prior)
    return Plan(
        windows=windows,
        capacity=spec.capacity,
        duration_min=spec.duration_min,
        step_min=spec.step_min,
        backtest=bt,
        hour_of_week={s: [float(x) for x in hours.mean[i]] for i, s in enumerate(history.sites)},
        weeks_of_history=history.n_weeks,
        first_week=_week_label(history, 0),
        prior_weeks=prior,
        timezone=history.tz,
    )
