"""Is the association between complaints and measured nuisance real, or chance?

A circular time-shift permutation test. The statistic is the number of complaints
corroborated by an episode (their window overlaps one). Under the null hypothesis
complaint times are unrelated to the episode series; each permutation shifts every
site's complaint windows by its own random whole number of *weeks* (so both the
daily and the weekly cycle of complaints and of nuisance are kept), circularly
within the analysed span. When the span holds too few weeks for enough distinct
shifts, whole *days* are used (the daily cycle is kept, the weekly one only on
average), and the method text says so. p = (1 + #{T* >= T}) / (1 + permutations).

References: Good (2005) *Permutation, Parametric and Bootstrap Tests of Hypotheses*
§3.6 (circular shifts for serially dependent series); Davison & Hinkley (1997) on
the +1 correction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PermutationResult", "overlap_count", "overlaps", "shift_test"]

_DAY_MS = 86_400_000
_WEEK_MS = 7 * _DAY_MS


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`shift_test`."""

    p_value: float | None
    statistic: int
    null_mean: float
    permutations: int
    unit: str
    method: str
    complaints: int

    def as_json(self, tested: str = "complaints_tested") -> dict[str, object]:
        """The ``association`` object of ``summary.json`` (``tested``: the name of the
        count of windows tested, e.g. ``marks_tested``)."""
        return {
            "p_value": self.p_value,
            "method": self.method,
            "statistic": self.statistic,
            "null_mean": None if math.isnan(self.null_mean) else self.null_mean,
            "permutations": self.permutations,
            "shift_unit": self.unit,
            tested: self.complaints,
        }


def overlaps(starts: np.ndarray, ends: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each window ``[a, b]``: does any episode ``[start, end)`` overlap it?

    Episodes of one site are disjoint and sorted, so their ends are sorted too:
    the first episode ending after ``a`` overlaps iff it starts at or before ``b``.
    """
    if starts.size == 0:
        return np.zeros(np.shape(a), dtype=bool)
    i = np.searchsorted(ends, a, side="right")
    inside = i < starts.size
    out = np.zeros(np.shape(a), dtype=bool)
    out[inside] = starts[i[inside]] <= b[inside]
    return out


def overlap_count(starts: np.ndarray, ends: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    """Number of windows that overlap an episode."""
    return int(overlaps(starts, ends, a, b).sum())


def shift_test(
    per_site: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    t0_ms: int,
    t1_ms: int,
    *,
    permutations: int = 999,
    seed: int = 0,
    subject: str = "complaint",
) -> PermutationResult:
    """Circular time-shift permutation test (see the module docstring).

    Parameters
    ----------
    per_site:
        For each site ``(episode_starts, episode_ends, window_a, window_b)`` in UTC ms;
        episodes sorted and disjoint, windows the complaints' corroboration windows
        (or the residents' marks' windows, ``subject="mark"``).
    t0_ms, t1_ms:
        The analysed span; windows whose start lies outside ``[t0, t0 + L)`` are left out,
        L being the span rounded down to whole shift units.
    """
    span = t1_ms - t0_ms
    weeks = span // _WEEK_MS
    n_sites = sum(1 for s in per_site if s[2].size)
    combos_week = float(max(weeks - 1, 0)) ** max(n_sites, 1) if weeks >= 2 else 0.0
    if combos_week >= 10 * permutations:
        unit_ms, unit = _WEEK_MS, "week"
    else:
        unit_ms, unit = _DAY_MS, "day"
    n_units = span // unit_ms
    rng = np.random.default_rng(seed)
    if n_units < 2:
        return PermutationResult(
            None, 0, float("nan"), 0, unit, "not enough data for a shift test (< 2 days)", 0
        )
    length = n_units * unit_ms
    observed = 0
    null = np.zeros(permutations, dtype=np.int64)
    used = 0
    for starts, ends, a, b in per_site:
        keep = (a >= t0_ms) & (a < t0_ms + length)
        a = a[keep].astype(np.int64)
        b = b[keep].astype(np.int64)
        if a.size == 0:
            continue
        used += a.size
        observed += overlap_count(starts, ends, a, b)
        k = rng.integers(1, n_units, size=permutations).astype(np.int64) * unit_ms
        width = b - a
        # (P, n) shifted windows, wrapped circularly within [t0, t0 + L)
        a_shift = t0_ms + (a[None, :] - t0_ms + k[:, None]) % length
        b_shift = a_shift + width[None, :]
        hit = overlaps(starts, ends, a_shift.ravel(), b_shift.ravel()).reshape(a_shift.shape)
        null += hit.sum(axis=1)
    if used == 0:
        return PermutationResult(None, 0, float("nan"), 0, unit, f"no {subject}s to test", 0)
    p = (1 + int((null >= observed).sum())) / (1 + permutations)
    cycles = (
        "whole weeks (keeps daily and weekly cycles)"
        if unit == "week"
        else "whole days (keeps the daily cycle; too few weeks for week shifts)"
    )
    method = (
        f"circular time-shift permutation test: each site's {subject} times shifted by "
        f"random {cycles} within the analysed span, {permutations} permutations, "
        f"statistic = {'corroborated complaints' if subject == 'complaint' else subject + 's matched by an episode'}, one-sided"
    )
    return PermutationResult(p, observed, float(null.mean()), permutations, unit, method, used)
