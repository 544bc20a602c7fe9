"""Episodes of nuisance per site: one rule set, a batch and a streaming detector.

The rules (:class:`~klankkast.analysis.rules.Rules`, defaults in
``rules.default.toml``) are applied to a regular per-site grid of steps (1-s or
1-min rows; the nodes of a site already combined by energy mean, see
:mod:`klankkast.analysis.levels`):

1. **Period** of each step from its local clock hour (day 07-19, evening 19-23,
   night 23-07 Europe/Amsterdam by default), :func:`period_of`.
2. **Trailing LAeq** over ``window_s`` (5 min): the energy mean
   ``10·log10(mean(10^(L/10)))`` of the steps in ``(t - window, t]``, ISO 1996-1
   §3.1.7 / IEC 61672-1 §3.9, :func:`rolling_energy_mean`.
3. **Residual level** (``residual = "quiet_laeq"``, the default): the LAeq of the
   preceding ``background_window_s`` (10 min) taken over the trailing ``window_s``
   LAeqs of those steps (current step excluded; those up to their
   ``residual_quantile``, default all), :func:`residual_db`. An LAeq, as the French
   émergence (CSP R.1336-6) and ISO 1996-2's residual correction require, not LA90.
   While a run of flags is open the residual is **held** at its value at the run's
   first flag (at most ``residual_hold_max_s``), so the noise assessed never becomes
   its own residual. ``residual = "la90"`` is the rule before issue 15: a quantile of
   the preceding hour's per-step LA90 (median) or LAeq (10 %), :func:`background_db`.
4. A step is **flagged** when the **specific level** of the trailing LAeq (the total
   with the residual subtracted by energy, ISO 1996-2, :func:`specific_db`;
   indeterminate, so no flag, under ``specific_min_db`` = 3 dB above the residual)
   exceeds the period's absolute limit (rule ``absolute``; ``absolute_level =
   "total"`` applies it to the total as before issue 15), or when the trailing LAeq
   exceeds the residual by more than the period's emergence (rule ``emergence``; only
   when the trailing LAeq reaches ``emergence_min_laeq_db``; optionally with the French
   duration correction of Code de la santé publique R.1336-7,
   :func:`duration_correction_db`, applied to the time the emergence has lasted).
5. Flagged steps separated by at most ``gap_merge_s`` of unflagged steps form one
   run. A run's episode starts at the first step whose **own** level exceeds (the
   same tests on the step's own LAeq; at 1-s steps the trailing 10-s LAeq) of the
   stretch of such steps, at most 1 min apart, that leads up to the run's first flag
   within the trailing window before it, and ends with the last such step of the run
   (taken back by the own level's 9 s at 1-s steps), so that the 5-min smoothing does
   not stretch an episode past the noise. Episodes shorter than ``min_duration_s``
   are dropped.

Each :class:`Episode` carries start, end (UTC ms, end exclusive), LAeq (energy mean
over the episode), LAFmax (maximum), bass = LCeq − LAeq, the period at its start,
the rule(s) that fired, the residual it was judged against and its specific level. The analysis reports measurements and which rule fired;
it does not pronounce legal violations.

:func:`detect` is vectorised for the big analysis; :class:`StreamingDetector`
consumes the same grid one step at a time and yields identical episodes. Both use
the same period, limit, emergence, duration-correction, rule-test and
episode-assembly functions; the window statistics (trailing energy mean, residual,
background quantile) have single-step forms with the same arithmetic, the batch
detector holds the residual exactly where the streaming one does (it walks the runs
in vectorised chunks), and unit tests check batch and streaming give bit-identical
episodes. ``klankkast-alerts`` adds
confirmation time, hysteresis and flood control on top of the streaming detector.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from klankkast.analysis.rules import PERIODS, Rules
from klankkast.decibel import (
    energies_to_levels,
    energy_subtract_level,
    finite_energy_mean_level,
    levels_to_energies,
)

__all__ = [
    "DAY",
    "EVENING",
    "NIGHT",
    "Episode",
    "EpisodeEvent",
    "SiteGrid",
    "StreamingDetector",
    "background_db",
    "background_source",
    "detect",
    "detect_many",
    "duration_correction_db",
    "emergence_for",
    "limit_for",
    "local_hour_weekday",
    "period_of",
    "residual_db",
    "rolling_energy_mean",
    "specific_db",
    "utc_offset_ms",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]
Bool = NDArray[np.bool_]

DAY: Final = 0
EVENING: Final = 1
NIGHT: Final = 2
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Background = Literal["la90", "laeq"]


# --------------------------------------------------------------------------- time
@lru_cache(maxsize=200_000)
def _offset_of_hour(hour: int, tz: str) -> int:
    when = _EPOCH + dt.timedelta(hours=hour)
    offset = when.astimezone(ZoneInfo(tz)).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() * 1000)


def utc_offset_ms(t_ms: I64, tz: str) -> I64:
    """UTC offset of ``tz`` in ms at each UTC time.

    Looked up once per UTC hour of the covered range (offset changes of
    Europe/Amsterdam happen at 01:00 UTC), then indexed, so 26 M rows cost one array
    lookup.
    """
    t = np.asarray(t_ms, dtype=np.int64)
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    hours = t // _HOUR_MS
    h0 = int(hours.min())
    h1 = int(hours.max())
    table = np.fromiter(
        (_offset_of_hour(h, tz) for h in range(h0, h1 + 1)), dtype=np.int64, count=h1 - h0 + 1
    )
    out: I64 = table[hours - h0]
    return out


def local_hour_weekday(t_ms: I64, tz: str) -> tuple[I64, I64]:
    """Local clock hour (0-23) and weekday (Monday = 0) of UTC milliseconds."""
    t = np.asarray(t_ms, dtype=np.int64)
    local = t + utc_offset_ms(t, tz)
    hour: I64 = (local // _HOUR_MS) % 24
    weekday: I64 = (local // _DAY_MS + 3) % 7  # 1970-01-01 was a Thursday
    return hour, weekday


def period_of(t_ms: I64, rules: Rules) -> I8:
    """Period index of each time: :data:`DAY`, :data:`EVENING` or :data:`NIGHT`.

    Day is ``[day_start_h, evening_start_h)``, evening ``[evening_start_h,
    night_start_h)``, night the rest, in local time of ``rules.timezone``.
    """
    hour, _ = local_hour_weekday(t_ms, rules.timezone)
    period = np.full(hour.shape, NIGHT, dtype=np.int8)
    period[(hour >= rules.day_start_h) & (hour < rules.evening_start_h)] = DAY
    period[(hour >= rules.evening_start_h) & (hour < rules.night_start_h)] = EVENING
    return period


def limit_for(period: I8, rules: Rules) -> F64:
    """Absolute LAeq limit (dB) of each period index."""
    out: F64 = np.asarray(rules.limits_db(), dtype=np.float64)[period]
    return out


def emergence_for(period: I8, rules: Rules) -> F64:
    """Allowed emergence above the background (dB) of each period index."""
    out: F64 = np.asarray(rules.emergences_db(), dtype=np.float64)[period]
    return out


# ------------------------------------------------------------------------ levels
def rolling_energy_mean(level_db: F64, window_n: int, min_n: int) -> F64:
    """Energy mean over the trailing ``window_n`` steps, the current one included.

    ``out[i] = 10·log10(mean(10^(L[j]/10)))`` over the finite ``L[j]``,
    ``i - window_n < j <= i``; NaN where fewer than ``min_n`` are finite. The sum runs
    in the same order for every ``i`` whatever the array length, so a streaming
    caller that passes its last ``window_n`` values gets bit-identical results.
    """
    x = np.asarray(level_db, dtype=np.float64)
    n = x.size
    finite = np.isfinite(x)
    energy = levels_to_energies(np.where(finite, x, -np.inf))  # 0 where not finite
    pad = window_n - 1
    e = np.concatenate((np.zeros(pad), energy))
    c = np.concatenate((np.zeros(pad, dtype=np.int64), finite.astype(np.int64)))
    acc = np.zeros(n)
    cnt = np.zeros(n, dtype=np.int64)
    for j in range(window_n):
        acc += e[j : j + n]
        cnt += c[j : j + n]
    out = np.full(n, np.nan)
    ok = cnt >= max(1, min_n)
    out[ok] = energies_to_levels(acc[ok] / cnt[ok])
    return out


def background_db(source_db: F64, window_n: int, quantile: float, min_n: int) -> F64:
    """Background: ``quantile`` of the preceding ``window_n`` steps (current excluded).

    NaN steps are ignored; NaN where fewer than ``min_n`` values are finite. Linear
    interpolation between order statistics (Hyndman & Fan type 7, numpy's default).
    """
    s = pd.Series(np.asarray(source_db, dtype=np.float64))
    q = s.rolling(window_n, min_periods=max(1, min_n)).quantile(quantile, interpolation="linear")
    out: F64 = q.shift(1).to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _preceding_windows(source_db: F64, window_n: int) -> NDArray[np.float64]:
    """View ``(n, window_n)``: row ``i`` holds steps ``i - window_n .. i - 1`` (NaN before 0)."""
    x = np.asarray(source_db, dtype=np.float64)
    padded = np.concatenate((np.full(window_n, np.nan), x))
    view: NDArray[np.float64] = np.lib.stride_tricks.sliding_window_view(padded, window_n)[:-1]
    return view


def _trailing_min(x: F64, window_n: int) -> F64:
    """``out[i] = min(x[i - window_n + 1 .. i])`` (fewer at the start), by doubling."""
    cur = np.asarray(x, dtype=np.float64).copy()
    p = 1
    while 2 * p <= window_n:
        nxt = cur.copy()
        nxt[p:] = np.minimum(cur[p:], cur[:-p])
        cur = nxt
        p *= 2
    rest = window_n - p
    if rest == 0:
        return cur
    out = cur.copy()
    out[rest:] = np.minimum(cur[rest:], cur[:-rest])
    return out


def _background_where_needed(
    source_db: F64, window_n: int, quantile: float, min_n: int, need_above: F64
) -> F64:
    """:func:`background_db`, evaluated only where it can matter.

    The quantile of a window is at least the window's minimum, so where
    ``need_above - min <= 0`` no emergence test can pass and the background is left NaN.
    Elsewhere it is computed exactly as :func:`background_db` (and the streaming
    detector) compute it: sorted finite values, linear interpolation.
    """
    n = int(np.asarray(source_db).size)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    windows, counts, lows = _preceding_stats(np.asarray(source_db, dtype=np.float64), window_n)
    with np.errstate(invalid="ignore"):
        cand = np.flatnonzero((counts >= max(1, min_n)) & (need_above - lows > 0))
    if cand.size == 0:
        return out
    for k in range(0, cand.size, 65536):
        rows = cand[k : k + 65536]
        srt = np.sort(windows[rows], axis=1)  # NaN sort last
        cnt = counts[rows]
        r = np.arange(rows.size)
        if quantile == 1.0:
            out[rows] = srt[r, cnt - 1]
            continue
        if quantile == 0.0:
            out[rows] = srt[r, 0]
            continue
        out[rows] = _rows_quantile(srt, cnt, quantile)
    return out


def _preceding_stats(x: F64, window_n: int) -> tuple[F64, I64, F64]:
    """The preceding windows of each step (current excluded, see
    :func:`_preceding_windows`), how many of their values are finite, and their minimum
    (``inf`` where none): steps ``i - window_n .. i - 1``."""
    n = int(x.size)
    windows = _preceding_windows(x, window_n)
    finite = np.isfinite(x)
    cum = np.concatenate(([0], np.cumsum(finite.astype(np.int64))))
    idx = np.arange(n)
    counts: I64 = cum[idx] - cum[np.maximum(idx - window_n, 0)]
    trailing = _trailing_min(np.where(finite, x, np.inf), window_n)
    lows: F64 = np.concatenate(([np.inf], trailing[:-1]))
    return windows, counts, lows


def _rows_quantile(srt: F64, cnt: I64, quantile: float) -> F64:
    """The ``quantile`` of the ``cnt`` finite values at the front of each sorted row
    (linear interpolation between order statistics)."""
    r = np.arange(srt.shape[0])
    pos = quantile * (cnt - 1).astype(np.float64)
    lo = pos.astype(np.int64)
    v_lo = srt[r, lo]
    v_hi = srt[r, np.minimum(lo + 1, cnt - 1)]
    out: F64 = np.where(pos == lo, v_lo, v_lo + (v_hi - v_lo) * (pos - lo))
    return out


def _quiet_laeq_rows(srt: F64, cnt: I64, quantile: float) -> F64:
    """Quiet-part LAeq of sorted window rows (finite values first, NaN after).

    Per row: ``q`` = the ``quantile`` of the ``cnt`` finite values (linear
    interpolation, as :func:`background_db`), ``k`` = how many are ``<= q`` and the
    result ``10·log10(Σ_{j<k} 10^(v_j/10) / k)`` summed in sorted order (a sequential
    ``cumsum``, so the streaming detector's single-row form is bit-identical).
    """
    r = np.arange(srt.shape[0])
    q = _rows_quantile(srt, cnt, quantile)
    with np.errstate(invalid="ignore"):
        below = srt <= q[:, None]  # NaN compares False
    k = below.sum(axis=1)
    energy = levels_to_energies(np.where(below, srt, -np.inf))  # 0 above q and for NaN
    total = np.cumsum(energy, axis=1)[r, k - 1]
    return energies_to_levels(total / k)


def residual_db(laeq_db: F64, window_n: int, quantile: float, min_n: int) -> F64:
    """Residual level: LAeq of the quiet part of the preceding ``window_n`` steps.

    ``out[i]`` is the energy mean (ISO 1996-1 §3.1.7) of the step LAeq values among
    ``i - window_n .. i - 1`` (current step excluded) that are at or below their own
    ``quantile``; NaN where fewer than ``min_n`` are finite. This is a residual LAeq
    (ISO 1996-1 §3.4.5, "residual sound"), not LA90: in fluctuating city sound the
    LA90 lies 3-10 dB below it. The detectors hold it while an episode is open.
    """
    return _residual_where_needed(laeq_db, window_n, quantile, min_n, np.full(len(laeq_db), np.inf))


def _residual_where_needed(
    laeq_db: F64, window_n: int, quantile: float, min_n: int, need_above: F64
) -> F64:
    """:func:`residual_db`, evaluated only where it can matter (NaN elsewhere).

    The residual is at least the window's minimum, so where ``need_above`` does not
    exceed that minimum (by 0.01 dB, against rounding) no test can pass.
    """
    x = np.asarray(laeq_db, dtype=np.float64)
    n = int(x.size)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    windows, counts, lows = _preceding_stats(x, window_n)
    with np.errstate(invalid="ignore"):
        cand = np.flatnonzero((counts >= max(1, min_n)) & (need_above - lows > -0.01))
    chunk = max(1, 4_000_000 // max(1, window_n))
    for k in range(0, cand.size, chunk):
        rows = cand[k : k + chunk]
        srt = np.sort(windows[rows], axis=1)
        out[rows] = _quiet_laeq_rows(srt, counts[rows], quantile)
    return out


def specific_db(total_db: F64, residual_db_: F64, min_diff_db: float) -> F64:
    """Specific level: the total with the residual subtracted by energy (ISO 1996-2).

    ``10·log10(10^(L_tot/10) − 10^(L_res/10))`` where ``L_tot − L_res >= min_diff_db``
    (3 dB: ISO 1996-2's residual sound correction is not applied below that, the
    specific sound cannot be determined); NaN there and where either is NaN.
    70 dB total on a 67 dB residual: 67.0 dB; 60 on 50: 59.54 dB.
    """
    t = np.asarray(total_db, dtype=np.float64)
    r = np.asarray(residual_db_, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = (t - r) >= min_diff_db
    out: F64 = np.where(ok, energy_subtract_level(t, r), np.nan)
    return out


def duration_correction_db(duration_s: F64) -> F64:
    """French duration correction of the allowed emergence (CSP R.1336-7).

    +6 dB up to 1 min, +5 up to 5 min, +4 up to 20 min, +3 up to 2 h, +2 up to 4 h,
    +1 up to 8 h, 0 beyond.
    """
    d = np.asarray(duration_s, dtype=np.float64)
    bounds = np.array([60.0, 300.0, 1200.0, 7200.0, 14400.0, 28800.0])
    values = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    out: F64 = values[np.searchsorted(bounds, d, side="left")]
    return out


def background_source(la90_db: F64) -> Background:
    """``"la90"`` when the grid carries any LA90, else ``"laeq"``."""
    return "la90" if bool(np.isfinite(np.asarray(la90_db, dtype=np.float64)).any()) else "laeq"


def _run_lengths(mask: Bool) -> I64:
    """Length of the run of True ending at each index (0 where False)."""
    n = mask.size
    idx = np.arange(1, n + 1, dtype=np.int64)
    last_false = np.where(mask, 0, idx)
    np.maximum.accumulate(last_false, out=last_false)
    out: I64 = np.where(mask, idx - last_false, 0)
    return out


def _emergence_base(l5: F64, bg: F64, period: I8, rules: Rules) -> Bool:
    with np.errstate(invalid="ignore"):
        out: Bool = (l5 - bg > emergence_for(period, rules)) & (l5 >= rules.emergence_min_laeq_db)
    return out


def _tests(
    l5: F64,
    own_db: F64,
    bg: F64,
    period: I8,
    em_base: Bool,
    em_run: I64,
    rules: Rules,
    step_s: int,
) -> tuple[Bool, Bool, Bool]:
    """Per-step rule tests: (absolute flag, emergence flag, own level exceeds).

    ``bg`` is the residual (or, with ``residual = "la90"``, the LA90 background) each
    step is judged against; the absolute rule uses it for the specific level.
    """
    limit = limit_for(period, rules)
    emergence = emergence_for(period, rules)
    with np.errstate(invalid="ignore"):
        if rules.absolute_enabled and rules.absolute_level == "specific":
            f_abs = specific_db(l5, bg, rules.specific_min_db) > limit
            own_abs = specific_db(own_db, bg, rules.specific_min_db) > limit
        elif rules.absolute_enabled:
            f_abs = l5 > limit
            own_abs = own_db > limit
        else:
            f_abs = np.zeros(l5.shape, dtype=np.bool_)
            own_abs = f_abs
        if rules.emergence_enabled:
            if rules.duration_correction:
                corr = duration_correction_db(em_run.astype(np.float64) * step_s)
                f_em = em_base & (l5 - bg > emergence + corr)
            else:
                f_em = em_base.copy()
            own_em = (own_db - bg > emergence) & (own_db >= rules.emergence_min_laeq_db)
        else:
            f_em = np.zeros(l5.shape, dtype=np.bool_)
            own_em = f_em
    return f_abs, f_em, own_abs | own_em


# ---------------------------------------------------------------------- episodes
@dataclass(frozen=True, slots=True)
class SiteGrid:
    """Levels of one site on a regular grid: step ``i`` covers
    ``[t0_ms + i·step_s·1000, t0_ms + (i+1)·step_s·1000)``; NaN = not measured.

    Levels of the site's nodes are already combined (energy mean, or sum for the legacy rules, for
    LAeq/LCeq/LA90, maximum for LAFmax); ``nodes`` counts the nodes per step.
    """

    site: str
    t0_ms: int
    step_s: int
    laeq_db: F64
    lceq_db: F64
    lafmax_db: F64
    la90_db: F64
    nodes: I64 | None = None

    def __len__(self) -> int:
        return int(self.laeq_db.size)

    @property
    def t_ms(self) -> I64:
        """Start time of every step (UTC ms)."""
        out: I64 = self.t0_ms + np.arange(len(self), dtype=np.int64) * (self.step_s * 1000)
        return out

    @property
    def end_ms(self) -> int:
        """End of the last step (UTC ms)."""
        return self.t0_ms + len(self) * self.step_s * 1000


@dataclass(frozen=True, slots=True)
class Episode:
    """One episode of measured nuisance at one site (times UTC ms, end exclusive)."""

    site: str
    start_ms: int
    end_ms: int
    laeq_db: float
    lafmax_db: float
    bass_db: float
    period: str
    rule: str
    residual_db: float = math.nan
    specific_db: float = math.nan

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return (self.end_ms - self.start_ms) / 1000.0

    def as_dict(self) -> dict[str, Any]:
        """Fields under the names of the output files: site, start, end, LAeq, LAFmax, bass,
        period, rule, residual (the residual LAeq the episode was judged against, dB(A))
        and specific (its LAeq with the residual subtracted, ISO 1996-2; NaN when the
        difference is under ``specific_min_db``)."""
        return {
            "site": self.site,
            "start": self.start_ms,
            "end": self.end_ms,
            "LAeq": self.laeq_db,
            "LAFmax": self.lafmax_db,
            "bass": self.bass_db,
            "period": self.period,
            "rule": self.rule,
            "residual": self.residual_db,
            "specific": self.specific_db,
        }


@dataclass(frozen=True, slots=True)
class EpisodeEvent:
    """What a :class:`StreamingDetector` reports.

    ``kind`` is ``"start"`` (the episode has reached ``min_duration_s``; ``episode``
    holds the statistics so far) or ``"end"`` (final statistics). ``t_ms`` is the
    stream time of the step that decided it. ``kept`` is False only for the rare end
    of a started episode whose final trimmed length fell below the minimum (the
    batch detector drops that one).
    """

    kind: Literal["start", "end"]
    t_ms: int
    episode: Episode
    kept: bool = True


def _episode_of_region(
    site: str,
    t_region0_ms: int,
    step_s: int,
    a_rel: int,
    b_rel: int,
    laeq: F64,
    lceq: F64,
    lafmax: F64,
    own: Bool,
    f_abs: Bool,
    f_em: Bool,
    period: I8,
    rules: Rules,
    residual: float = math.nan,
    end_back: int = 0,
) -> tuple[Episode, bool]:
    """The episode of one merged run, shared by batch and streaming.

    The region starts with the look-back steps (after the previous run, at most
    ``window - 1`` before the first flag ``a_rel``) and ends at the last flag
    ``b_rel``. Returns the episode and whether it is long enough to keep.
    """
    before = np.flatnonzero(own[: a_rel + 1])
    # the start is the first own-exceeding step of the stretch that leads up to the
    # first flag (own-exceeding steps at most 1 min apart), so an isolated loud second
    # of background earlier in the look-back does not date it
    join = max(1, 60 // step_s)
    if before.size and a_rel - int(before[-1]) <= join:
        cuts = np.flatnonzero(np.diff(before) > join)
        s = int(before[cuts[-1] + 1]) if cuts.size else int(before[0])
    else:
        s = a_rel
    after = np.flatnonzero(own[s : b_rel + 1])
    e = s + int(after[-1]) if after.size else b_rel
    # a trailing own level of n steps exceeds until n - 1 steps after the noise stopped
    e = max(s, e - end_back)
    seg = slice(s, e + 1)
    la = laeq[seg]
    lc = lceq[seg]
    both = np.isfinite(la) & np.isfinite(lc)
    bass = (
        finite_energy_mean_level(lc[both]) - finite_energy_mean_level(la[both])
        if both.any()
        else math.nan
    )
    fmax = lafmax[seg]
    lafmax_db = float(np.nanmax(fmax)) if np.isfinite(fmax).any() else math.nan
    fired: list[str] = []
    if f_abs[a_rel : b_rel + 1].any():
        fired.append("absolute")
    if f_em[a_rel : b_rel + 1].any():
        fired.append("emergence")
    step_ms = step_s * 1000
    laeq_db = finite_energy_mean_level(la)
    spec = float(specific_db(np.array([laeq_db]), np.array([residual]), rules.specific_min_db)[0])
    episode = Episode(
        site=site,
        start_ms=t_region0_ms + s * step_ms,
        end_ms=t_region0_ms + (e + 1) * step_ms,
        laeq_db=laeq_db,
        lafmax_db=lafmax_db,
        bass_db=bass,
        period=PERIODS[int(period[s])],
        rule="+".join(fired),
        residual_db=_nan1(residual),
        specific_db=_nan1(spec),
    )
    return episode, (e - s + 1) * step_s >= rules.min_duration_s


def _window_steps(rules: Rules, step_s: int) -> tuple[int, int, int, int, int]:
    """(window n, its minimum, background n, its minimum, gap steps) for a step size."""
    w = max(1, rules.window_s // step_s)
    wb = max(1, rules.background_window_s // step_s)
    return (
        w,
        max(1, math.ceil(rules.min_coverage * w)),
        wb,
        max(1, math.ceil(rules.min_coverage * wb)),
        rules.gap_merge_s // step_s,
    )


def detect(grid: SiteGrid, rules: Rules, background: Background | None = None) -> list[Episode]:
    """Episodes of one site's grid (vectorised; see the module docstring).

    ``background`` chooses the background source; by default LA90 when the grid has
    any, else LAeq (:func:`background_source`).
    """
    n = len(grid)
    if n == 0:
        return []
    step_s = grid.step_s
    w, w_min, wb, wb_min, gap_steps = _window_steps(rules, step_s)
    source: Background = background or background_source(grid.la90_db)
    laeq = np.asarray(grid.laeq_db, dtype=np.float64)
    period = period_of(grid.t_ms, rules)
    l5 = rolling_energy_mean(laeq, w, w_min)
    if rules.residual == "quiet_laeq":
        need = np.fmax(l5, laeq) - _residual_margin_db(period, rules)
        if rules.absolute_enabled and rules.absolute_level == "total":
            need = np.full(n, np.inf)  # an episode may start on the total: report its residual
        bn, bn_min = _block_steps(rules, step_s)
        blocks = laeq if bn == 1 else rolling_energy_mean(laeq, bn, bn_min)
        # the residual's 5-min LAeqs end at the previous step, so they overlap the judged
        # window: measured in bench_detection, residual windows that end where the judged
        # window begins add the noise of both and made 1 false episode a week in the
        # LAeq - LA90 = 10 dB class; the price is that a source rising by only ~3 dB
        # over minutes can enter its own residual before it is judged
        raw = _residual_where_needed(blocks, wb, rules.residual_quantile, wb_min, need)
        on, on_min = _own_steps(step_s)
        own_db = laeq if on == 1 else rolling_energy_mean(laeq, on, on_min)
        bg, f_abs, f_em, own = _held_pass(l5, own_db, raw, period, rules, step_s, gap_steps)
    else:
        bg, f_abs, f_em, own = _la90_pass(grid, laeq, l5, period, rules, source, step_s)
    return _assemble(grid, laeq, bg, f_abs, f_em, own, period, rules, w, gap_steps)


def _block_steps(rules: Rules, step_s: int) -> tuple[int, int]:
    """Steps per residual block (1 min) and its minimum coverage.

    Below 1-min steps the residual is taken over trailing 1-min LAeqs (one per step),
    so 1-s data are judged like 1-min data: the 25 % quietest seconds of an hour lie
    far below its quietest minutes (fluctuating traffic), which would make emergence
    fire on the background itself.
    """
    bn = max(1, rules.window_s // step_s)
    return bn, max(1, math.ceil(rules.min_coverage * bn))


def _own_steps(step_s: int) -> tuple[int, int]:
    """Steps of the "own level" that dates an episode's start and end (10 s), and its
    minimum coverage: single loud seconds of traffic would otherwise date a 1-s
    episode up to ``window_s`` early. One step at 1-min resolution."""
    on = max(1, 10 // step_s)
    return on, max(1, math.ceil(on / 2))


def _residual_margin_db(period: I8, rules: Rules) -> F64:
    """How far below a level the residual must lie for any rule to pass at a step."""
    em = emergence_for(period, rules) if rules.emergence_enabled else np.full(period.shape, np.inf)
    spec = (
        rules.specific_min_db
        if rules.absolute_enabled and rules.absolute_level == "specific"
        else math.inf
    )
    out: F64 = np.minimum(em, spec)
    return out


def _evaluate(
    l5: F64, own_db: F64, res: F64, period: I8, carry: int, rules: Rules, step_s: int
) -> tuple[Bool, Bool, Bool, I64]:
    """Rule tests of consecutive steps given the emergence run length before them."""
    em_base = _emergence_base(l5, res, period, rules)
    em_run = _run_lengths(em_base)
    lead = em_run == np.arange(1, em_run.size + 1)
    em_run = np.where(lead, em_run + carry, em_run)
    f_abs, f_em, own = _tests(l5, own_db, res, period, em_base, em_run, rules, step_s)
    return f_abs, f_em, own, em_run


def _held_pass(
    l5: F64, laeq: F64, raw: F64, period: I8, rules: Rules, step_s: int, gap_steps: int
) -> tuple[F64, Bool, Bool, Bool]:
    """Rule tests with the residual held while an episode is open.

    Idle, step ``i`` is judged against ``raw[i]``; the first flagged step ``a`` opens
    a run, and until it closes (at the first step more than ``gap_steps`` after its
    last flag, exactly where :class:`StreamingDetector` closes it) every step is
    judged against ``raw[a]`` (for at most ``residual_hold_max_s``, then against
    ``raw`` again). Evaluated in growing chunks, vectorised within each.
    Returns the residual used and the three test arrays.
    """
    n = int(l5.size)
    res = np.full(n, np.nan)
    f_abs = np.zeros(n, dtype=np.bool_)
    f_em = np.zeros(n, dtype=np.bool_)
    own = np.zeros(n, dtype=np.bool_)

    def run(lo: int, hi: int, r: F64, carry: int) -> tuple[Bool, I64]:
        sl = slice(lo, hi)
        fa, fe, ow, em_run = _evaluate(l5[sl], laeq[sl], r, period[sl], carry, rules, step_s)
        res[sl] = r
        f_abs[sl] = fa
        f_em[sl] = fe
        own[sl] = ow
        return fa | fe, em_run

    hold_n = rules.residual_hold_max_s // step_s
    pos = 0
    carry = 0
    first = 4096
    while pos < n:
        # idle: raw residual up to the first flag
        size = first
        a = -1
        while pos < n:
            end = min(n, pos + size)
            flags, em_run = run(pos, end, raw[pos:end], carry)
            hits = np.flatnonzero(flags)
            if hits.size:
                a = pos + int(hits[0])
                carry = int(em_run[hits[0]])
                pos = a + 1
                break
            carry = int(em_run[-1])
            pos = end
            size *= 2
        if a < 0:
            break
        held = raw[a]
        b = a
        size = first
        while pos < n:
            end = min(n, pos + size)
            idx = np.arange(pos, end)
            flags, em_run = run(pos, end, np.where(idx - a > hold_n, raw[pos:end], held), carry)
            seq = np.concatenate(([b], pos + np.flatnonzero(flags)))
            gaps = np.flatnonzero(np.diff(seq) > gap_steps + 1)
            c = int(seq[gaps[0]] if gaps.size else seq[-1]) + gap_steps + 1
            if c < end:
                carry = int(em_run[c - pos])
                pos = c + 1  # steps after c were evaluated with `held`: redo them idle
                break
            b = int(seq[-1])
            carry = int(em_run[-1])
            pos = end
            size *= 2
    return res, f_abs, f_em, own


def _la90_pass(
    grid: SiteGrid,
    laeq: F64,
    l5: F64,
    period: I8,
    rules: Rules,
    source: Background,
    step_s: int,
) -> tuple[F64, Bool, Bool, Bool]:
    """Rule tests against the pre-issue-15 LA90 background (``residual = "la90"``)."""
    n = int(l5.size)
    _, _, wb, wb_min, _ = _window_steps(rules, step_s)
    if rules.emergence_enabled:
        # the background matters only where a step's trailing or own level could emerge
        need = np.fmax(l5, laeq) - emergence_for(period, rules)
        if source == "la90":
            bg = _background_where_needed(
                grid.la90_db, wb, rules.background_quantile_la90, wb_min, need
            )
        else:
            bg = _background_where_needed(laeq, wb, rules.background_quantile_laeq, wb_min, need)
    else:
        bg = np.full(n, np.nan)
    em_base = _emergence_base(l5, bg, period, rules)
    em_run = _run_lengths(em_base)
    f_abs, f_em, own = _tests(l5, laeq, bg, period, em_base, em_run, rules, step_s)
    return bg, f_abs, f_em, own


def _assemble(
    grid: SiteGrid,
    laeq: F64,
    bg: F64,
    f_abs: Bool,
    f_em: Bool,
    own: Bool,
    period: I8,
    rules: Rules,
    w: int,
    gap_steps: int,
) -> list[Episode]:
    """Merged runs of flagged steps -> episodes (see the module docstring, step 5)."""
    step_s = grid.step_s
    flagged = np.flatnonzero(f_abs | f_em)
    if flagged.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(flagged) > gap_steps + 1)
    starts = np.concatenate(([flagged[0]], flagged[breaks + 1]))
    ends = np.concatenate((flagged[breaks], [flagged[-1]]))
    episodes: list[Episode] = []
    prev_b = -1
    step_ms = step_s * 1000
    for a_np, b_np in zip(starts, ends, strict=True):
        a = int(a_np)
        b = int(b_np)
        r0 = max(prev_b + 1, a - (w - 1))
        seg = slice(r0, b + 1)
        episode, keep = _episode_of_region(
            grid.site,
            grid.t0_ms + r0 * step_ms,
            step_s,
            a - r0,
            b - r0,
            laeq[seg],
            grid.lceq_db[seg],
            grid.lafmax_db[seg],
            own[seg],
            f_abs[seg],
            f_em[seg],
            period[seg],
            rules,
            float(bg[a]) if rules.residual == "quiet_laeq" else math.nan,
            _own_steps(step_s)[0] - 1 if rules.residual == "quiet_laeq" else 0,
        )
        if keep:
            episodes.append(episode)
        prev_b = b
    return episodes


def detect_many(grids: list[SiteGrid], rules: Rules) -> list[Episode]:
    """Episodes of several sites, sorted by site then start."""
    out: list[Episode] = []
    for grid in grids:
        out.extend(detect(grid, rules))
    out.sort(key=lambda e: (e.site, e.start_ms))
    return out


# --------------------------------------------------------------------- streaming
class StreamingDetector:
    """The episode rules applied one grid step at a time (for live alerts).

    Feed every step of one site in time order with :meth:`update`; steps that were
    skipped are filled as not measured, a step at or before the last one is ignored
    (counted in ``ignored``). The rule functions are the batch ones (the window
    statistics in single-step form with the same arithmetic), so on the same grid
    the ``end`` events carry exactly the episodes of :func:`detect` (with the same
    ``background``). Cost: about 0.3 ms per step.

    Parameters
    ----------
    rules:
        The episode rules.
    step_s:
        Grid step in seconds (1 for 1-s frames, 60 for minute summaries).
    site:
        Site id written into the episodes.
    background:
        ``"la90"`` (per-minute LA90) or ``"laeq"``; default ``"la90"`` when
        ``step_s >= 60`` else ``"laeq"``.
    t0_ms:
        Grid origin; default the first step's time.
    """

    def __init__(
        self,
        rules: Rules,
        step_s: int,
        site: str = "",
        background: Background | None = None,
        t0_ms: int | None = None,
    ) -> None:
        if step_s < 1:
            raise ValueError(f"step_s must be a whole number of seconds >= 1; got {step_s}")
        self.rules = rules
        self.step_s = step_s
        self.site = site
        self.background: Background = background or ("la90" if step_s >= 60 else "laeq")
        self.t0_ms = t0_ms
        self.ignored = 0
        w, w_min, wb, wb_min, gap = _window_steps(rules, step_s)
        self._w, self._w_min, self._wb, self._wb_min, self._gap = w, w_min, wb, wb_min, gap
        self._quantile = (
            rules.background_quantile_la90
            if self.background == "la90"
            else rules.background_quantile_laeq
        )
        self._quiet = rules.residual == "quiet_laeq"
        if self._quiet:
            self.background = "laeq"
        self._held = math.nan
        self._bn, self._bn_min = _block_steps(rules, step_s)
        self._block_buf: deque[float] = deque(maxlen=self._bn)
        self._on, self._on_min = _own_steps(step_s)
        self._own_buf: deque[float] = deque(maxlen=self._on)
        self._laeq_buf: deque[float] = deque(maxlen=w)
        self._bg_buf: deque[float] = deque()
        self._bg_sorted: list[float] = []
        self._em_run = 0
        self._next = 0  # index of the next expected step
        self._prev_b = -1
        self._a: int | None = None
        self._b = -1
        self._started = False
        self._r0 = 0
        self._reg: dict[str, list[float]] = {k: [] for k in ("laeq", "lceq", "lafmax")}
        self._reg_flags: dict[str, list[bool]] = {k: [] for k in ("own", "abs", "em")}
        self._reg_period: list[int] = []

    # -- public -------------------------------------------------------------------
    def update(
        self,
        t_ms: int,
        laeq_db: float | None,
        lafmax_db: float | None,
        lceq_db: float | None,
        la90_db: float | None = None,
    ) -> list[EpisodeEvent]:
        """Consume the step starting at ``t_ms``; return the events it decides."""
        step_ms = self.step_s * 1000
        if self.t0_ms is None:
            self.t0_ms = int(t_ms)
        idx = (int(t_ms) - self.t0_ms) // step_ms
        if idx < self._next:
            self.ignored += 1
            return []
        events: list[EpisodeEvent] = []
        missing = idx - self._next
        # After this many unmeasured steps every buffer is empty and any run is closed,
        # so a longer gap changes nothing more: skip the rest.
        enough = max(self._w, self._wb + self._bn + 1, self._gap + 2)
        if missing > enough:
            for _ in range(enough):
                events.extend(self._step(math.nan, math.nan, math.nan, math.nan))
            self._jump(idx)
        else:
            for _ in range(missing):
                events.extend(self._step(math.nan, math.nan, math.nan, math.nan))
        events.extend(self._step(_f(laeq_db), _f(lafmax_db), _f(lceq_db), _f(la90_db)))
        return events

    def flush(self) -> list[EpisodeEvent]:
        """End of data: close the open run (as the batch detector does at the end)."""
        if self._a is None:
            return []
        return self._finalize(self._next - 1)

    def current(self) -> Episode | None:
        """The open episode with its statistics so far, once it has started."""
        if self._a is None or not self._started:
            return None
        # the noise is still going on: its own level is not yet trailing behind it
        episode, _ = self._region_episode(end_back=0)
        return episode

    # -- internals ----------------------------------------------------------------
    def _jump(self, idx: int) -> None:
        skipped = idx - self._next
        self._next = idx
        # region/buffers hold only unmeasured steps now; shift the region origin
        self._r0 += skipped

    def _t(self, i: int) -> int:
        assert self.t0_ms is not None
        return self.t0_ms + i * self.step_s * 1000

    def _step(self, laeq: float, lafmax: float, lceq: float, la90: float) -> list[EpisodeEvent]:
        i = self._next
        self._next += 1
        rules = self.rules
        self._laeq_buf.append(laeq)
        l5 = np.array([_last_energy_mean(self._laeq_buf, self._w_min)])
        if not self._quiet:
            bg = np.array([_sorted_quantile(self._bg_sorted, self._quantile, self._wb_min)])
        elif self._a is not None and i - self._a <= self.rules.residual_hold_max_s // self.step_s:
            bg = np.array([self._held])  # an open episode is judged against its start's residual
        else:
            bg = np.array(
                [_sorted_quiet_laeq(self._bg_sorted, rules.residual_quantile, self._wb_min)]
            )
        src = la90 if self.background == "la90" else laeq
        if self._quiet and self._bn > 1:
            self._block_buf.append(laeq)
            src = _last_energy_mean(self._block_buf, self._bn_min)
        if len(self._bg_buf) == self._wb:
            old = self._bg_buf.popleft()
            if math.isfinite(old):
                del self._bg_sorted[bisect.bisect_left(self._bg_sorted, old)]
        self._bg_buf.append(src)
        if math.isfinite(src):
            bisect.insort(self._bg_sorted, src)
        period = period_of(np.array([self._t(i)], dtype=np.int64), rules)
        em_base = _emergence_base(l5, bg, period, rules)
        self._em_run = self._em_run + 1 if bool(em_base[0]) else 0
        own_db = laeq
        if self._quiet and self._on > 1:
            self._own_buf.append(laeq)
            own_db = _last_energy_mean(self._own_buf, self._on_min)
        f_abs, f_em, own = _tests(
            l5,
            np.array([own_db]),
            bg,
            period,
            em_base,
            np.array([self._em_run], dtype=np.int64),
            rules,
            self.step_s,
        )
        flag = bool(f_abs[0] or f_em[0])
        events: list[EpisodeEvent] = []
        if self._a is None:
            # idle: the region keeps the look-back (at most window-1 steps after prev_b)
            if flag:
                self._append(laeq, lceq, lafmax, bool(own[0]), bool(f_abs[0]), bool(f_em[0]))
                self._append_period(int(period[0]))
                self._held = float(bg[0]) if self._quiet else math.nan
                self._a = i
                self._b = i
                self._trim_lookback(i)
            else:
                self._append(laeq, lceq, lafmax, bool(own[0]), False, False)
                self._append_period(int(period[0]))
                self._trim_idle(i)
                return events
        else:
            self._append(laeq, lceq, lafmax, bool(own[0]), bool(f_abs[0]), bool(f_em[0]))
            self._append_period(int(period[0]))
            if flag:
                self._b = i
            elif i - self._b > self._gap:
                return self._finalize(i)
        if not self._started and self._a is not None:
            episode, keep = self._region_episode()
            if keep:
                self._started = True
                events.append(EpisodeEvent("start", self._t(i), episode))
        return events

    def _append(
        self, laeq: float, lceq: float, lafmax: float, own: bool, f_abs: bool, f_em: bool
    ) -> None:
        self._reg["laeq"].append(laeq)
        self._reg["lceq"].append(lceq)
        self._reg["lafmax"].append(lafmax)
        self._reg_flags["own"].append(own)
        self._reg_flags["abs"].append(f_abs)
        self._reg_flags["em"].append(f_em)

    def _append_period(self, period: int) -> None:
        self._reg_period.append(period)

    def _drop_front(self, k: int) -> None:
        if k <= 0:
            return
        for lst in self._reg.values():
            del lst[:k]
        for flags in self._reg_flags.values():
            del flags[:k]
        del self._reg_period[:k]
        self._r0 += k

    def _trim_idle(self, i: int) -> None:
        # keep steps max(prev_b + 1, i - (w - 2)) .. i: the look-back of a flag at i + 1
        keep_from = max(self._prev_b + 1, i + 1 - (self._w - 1))
        self._drop_front(keep_from - self._r0)

    def _trim_lookback(self, a: int) -> None:
        keep_from = max(self._prev_b + 1, a - (self._w - 1))
        self._drop_front(keep_from - self._r0)

    def _region_episode(
        self, upto: int | None = None, end_back: int | None = None
    ) -> tuple[Episode, bool]:
        assert self._a is not None
        b = self._b if upto is None else upto
        n = b - self._r0 + 1
        return _episode_of_region(
            self.site,
            self._t(self._r0),
            self.step_s,
            self._a - self._r0,
            b - self._r0,
            np.asarray(self._reg["laeq"][:n], dtype=np.float64),
            np.asarray(self._reg["lceq"][:n], dtype=np.float64),
            np.asarray(self._reg["lafmax"][:n], dtype=np.float64),
            np.asarray(self._reg_flags["own"][:n], dtype=np.bool_),
            np.asarray(self._reg_flags["abs"][:n], dtype=np.bool_),
            np.asarray(self._reg_flags["em"][:n], dtype=np.bool_),
            np.asarray(self._reg_period[:n], dtype=np.int8),
            self.rules,
            self._held,
            (self._on - 1 if self._quiet else 0) if end_back is None else end_back,
        )

    def _finalize(self, i: int) -> list[EpisodeEvent]:
        episode, keep = self._region_episode()
        events: list[EpisodeEvent] = []
        if keep:
            if not self._started:
                events.append(EpisodeEvent("start", self._t(i), episode))
            events.append(EpisodeEvent("end", self._t(i), episode))
        elif self._started:
            events.append(EpisodeEvent("end", self._t(i), episode, kept=False))
        # steps after b stay as the look-back of the next run
        self._prev_b = self._b
        self._a = None
        self._started = False
        self._drop_front(self._b + 1 - self._r0)
        last = self._r0 + len(self._reg_period) - 1
        if last >= self._r0:
            self._trim_idle(last)
        return events


def _last_energy_mean(window_db: deque[float], min_n: int) -> float:
    """Last value of :func:`rolling_energy_mean` over exactly these steps (same summation order)."""
    x = np.fromiter(window_db, dtype=np.float64, count=len(window_db))
    finite = np.isfinite(x)
    count = int(finite.sum())
    if count < max(1, min_n):
        return math.nan
    energy = levels_to_energies(np.where(finite, x, -np.inf))
    total = float(np.cumsum(energy)[-1])  # sequential, as the batch accumulation
    return float(energies_to_levels(total / count))  # numpy's log10, as the batch


def _sorted_quiet_laeq(values: list[float], quantile: float, min_n: int) -> float:
    """Last value of :func:`residual_db` over exactly these sorted finite values."""
    n = len(values)
    if n < max(1, min_n):
        return math.nan
    row = np.asarray(values, dtype=np.float64)[None, :]
    return float(_quiet_laeq_rows(row, np.array([n], dtype=np.int64), quantile)[0])


def _sorted_quantile(values: list[float], quantile: float, min_n: int) -> float:
    """Quantile of sorted finite values, interpolated as pandas' rolling quantile does."""
    n = len(values)
    if n < max(1, min_n):
        return math.nan
    if quantile == 1.0:
        return values[-1]
    if quantile == 0.0:
        return values[0]
    pos = quantile * (n - 1)
    lo = int(pos)
    if pos == lo:
        return values[lo]
    v_lo = values[lo]
    v_hi = values[lo + 1]
    return v_lo + (v_hi - v_lo) * (pos - lo)


def _nan1(value: float) -> float:
    """The value, or the one :data:`math.nan` object (so equal episodes compare equal)."""
    return float(value) if math.isfinite(value) else math.nan


def _f(value: float | None) -> float:
    return math.nan if value is None else float(value)
