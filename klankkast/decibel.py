"""Decibel arithmetic: levels and energies, and the ways to combine levels by energy.

A sound level ``L`` in dB stands for a (relative) energy ``10^(L/10)``; levels are
combined through their energies, never arithmetically (IEC 61672-1 §3.9, ISO 1996-1
§3.1.7). This module is the one place where that is written out; every part (sensor,
ingest, analysis, alerts, courtyard) uses it and it imports none of them.

Three distinct combinations, with distinct names:

- :func:`energy_mean_level` — the equivalent continuous level of parts: mean of the
  energies, weighted by the parts' durations when they differ. Use it for the LAeq of
  several intervals and for co-located microphones measuring the same sound field
  (never their sum). 30 s at 40 dB + 30 s at 70 dB: 67.0 dB, not 55. A NaN level
  gives NaN. :func:`finite_energy_mean_level` is the same mean over the finite levels
  only (missing data left out), NaN when there is none.
- :func:`energy_sum_level` — the level of independent sources together (the band levels
  of one spectrum summed to the broadband level). Two equal sources: +3.01 dB.
- :func:`energy_subtract_level` — the specific level: the residual's energy taken from
  the total (ISO 1996-2, the residual sound correction). 70 dB total on a 67 dB
  residual: 66.98 dB.

The scalar functions use only :mod:`math` (the courtyard's model and the ingest's line
writer stay free of numpy); the functions on arrays import numpy when first called.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]

__all__ = [
    "energies_to_levels",
    "energy_mean_level",
    "energy_subtract_level",
    "energy_sum_level",
    "energy_to_level",
    "finite_energy_mean_level",
    "level_to_energy",
    "levels_to_energies",
]


def level_to_energy(level_db: float) -> float:
    """Relative energy ``10^(L/10)`` of a level in dB (60 dB -> 1e6)."""
    return math.pow(10.0, level_db / 10.0)


def energy_to_level(energy: float) -> float:
    """Level ``10·log10(E)`` in dB of a relative energy (1e6 -> 60 dB); energy > 0."""
    return 10.0 * math.log10(energy)


def levels_to_energies(levels_db: npt.ArrayLike) -> F64:
    """:func:`level_to_energy` element-wise on an array (NaN stays NaN)."""
    import numpy as np

    return np.power(10.0, np.asarray(levels_db, dtype=np.float64) / 10.0)


def energies_to_levels(energies: npt.ArrayLike) -> F64:
    """:func:`energy_to_level` element-wise on an array (0 gives -inf, no warning here)."""
    import numpy as np

    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(energies, dtype=np.float64))


def energy_mean_level(levels_db: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> float:
    """Equivalent continuous level of parts: ``10·log10(Σ wᵢ 10^(Lᵢ/10) / Σ wᵢ)``.

    ISO 1996-1 §3.1.7 / IEC 61672-1 §3.9. ``weights`` are the parts' durations (any
    unit; equal when omitted). 30 s at 40 dB + 30 s at 70 dB: ``10·log10((10^4 + 10^7)/2)
    = 67.0 dB``. A NaN level makes the result NaN: use :func:`finite_energy_mean_level`
    to leave missing values out.
    """
    import numpy as np

    lv = np.asarray(levels_db, dtype=np.float64)
    w = np.ones_like(lv) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(10.0 * np.log10(np.sum(w * levels_to_energies(lv)) / np.sum(w)))


def finite_energy_mean_level(levels_db: Iterable[float]) -> float:
    """Energy mean of the finite levels (equal durations); NaN when there is none.

    As :func:`energy_mean_level` with missing data (NaN, ±inf) left out; the energies are
    summed with :func:`math.fsum`. Two nodes at 50 and 60 dB: ``10·log10((10^5 + 10^6)/2)
    = 57.4 dB``.
    """
    energies = [level_to_energy(x) for x in map(float, levels_db) if math.isfinite(x)]
    if not energies:
        return math.nan
    return 10.0 * math.log10(math.fsum(energies) / len(energies))


def energy_sum_level(levels_db: npt.ArrayLike, axis: int | None = None) -> F64:
    """Level of independent sources together: ``10·log10(Σ 10^(Lᵢ/10))`` along ``axis``.

    Two equal levels: ``+10·log10(2) = +3.01 dB``; ten equal levels: +10 dB. Returns a
    0-d array for ``axis=None`` (``float()`` it).
    """
    import numpy as np

    return energies_to_levels(np.sum(levels_to_energies(levels_db), axis=axis))


def energy_subtract_level(total_db: npt.ArrayLike, residual_db: npt.ArrayLike) -> F64:
    """Specific level: ``10·log10(10^(L_tot/10) − 10^(L_res/10))`` element-wise.

    ISO 1996-2's residual sound correction. 60 dB total on a 57 dB residual: 56.98 dB
    (half of 60 dB's energy is ``60 − 10·log10(2) = 56.99 dB``, and 57 dB is within 0.01 dB
    of that half); 70 on 60: 69.54 dB. Equal levels leave no energy: -inf. NaN where the
    residual exceeds the total or either is NaN.
    """
    import numpy as np

    t = np.asarray(total_db, dtype=np.float64)
    r = np.asarray(residual_db, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = t >= r
    diff = levels_to_energies(np.where(ok, t, 0.0)) - levels_to_energies(np.where(ok, r, 0.0))
    return np.where(ok, energies_to_levels(np.where(ok, diff, 1.0)), np.nan)
