"""Reference data for the metrology tests: the IEC tables in ``tests/data/reference`` and
independent formulas (written here from the standards, not imported from the code).
"""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np

#: The repository's own copy of the tables, with their provenance (README.md there).
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"


def reference_dir() -> Path:
    return REFERENCE_DIR


def rows(name: str) -> list[dict[str, str]]:
    with open(reference_dir() / name, newline="") as fh:
        return list(csv.DictReader(fh))


def num(text: str) -> float:
    text = text.strip()
    if text in ("+inf", "inf"):
        return math.inf
    if text == "-inf":
        return -math.inf
    return float(text)


# IEC 61672-1:2013 Annex E pole frequencies, exact values from iec61672_annexE_constants.csv
def _annex_e_poles() -> tuple[float, float, float, float]:
    vals = {r["name"]: r["value"] for r in rows("iec61672_annexE_constants.csv")}
    return (
        float(vals["f1 (exact)"]),
        float(vals["f2 (exact)"]),
        float(vals["f3 (exact)"]),
        float(vals["f4 (exact)"]),
    )


def annex_e_db(kind: str, f_hz: float) -> float:
    """A or C weighting by Annex E formulas E.1/E.6, normalised to 0 dB at 1 kHz."""
    f1, f2, f3, f4 = _annex_e_poles()

    def raw(f: float) -> float:
        c = f4**2 * f**2 / ((f**2 + f1**2) * (f**2 + f4**2))
        if kind == "C":
            return 20 * math.log10(c)
        return 20 * math.log10(c * f**2 / math.sqrt((f**2 + f2**2) * (f**2 + f3**2)))

    if kind == "Z":
        return 0.0
    return raw(f_hz) - raw(1000.0)


def _interp(a: float, b: float, t: float) -> float:
    if math.isinf(a) or math.isinf(b):
        return b if math.isinf(b) else a
    return a + t * (b - a)


def mask_limits(omega: float) -> tuple[float, float]:
    """IEC 61260-1 class 1 (min, max) relative attenuation at normalised frequency omega.

    Breakpoints from iec61260_class1_mask.csv (high side; the low side mirrors it,
    formula 10), linear interpolation in lg(omega) between them (formula 11); beyond
    the last breakpoint the last limits hold. At the band edge the pass-band and
    stop-band rows both apply.
    """
    g = omega if omega >= 1 else 1.0 / omega
    pts = [
        (
            float(r["Omega_third_octave_high"]),
            num(r["class1_min_rel_atten_dB"]),
            num(r["class1_max_rel_atten_dB"]),
        )
        for r in rows("iec61260_class1_mask.csv")
    ]
    lg = math.log10(g)
    exact = [(lo, hi) for om, lo, hi in pts if abs(om - g) < 1e-9]
    if exact:
        return max(e[0] for e in exact), min(e[1] for e in exact)
    if g >= pts[-1][0]:
        return pts[-1][1], pts[-1][2]
    for (o1, lo1, hi1), (o2, lo2, hi2) in itertools.pairwise(pts):
        if o1 < g < o2:
            t = (lg - math.log10(o1)) / (math.log10(o2) - math.log10(o1))
            return _interp(lo1, lo2, t), _interp(hi1, hi2, t)
    raise AssertionError(g)


def sine(
    f_hz: float, fs_hz: int, seconds: float, ms: float = 1.0, phase: float = 0.0
) -> np.ndarray:
    """A sine of mean square ``ms`` (amplitude sqrt(2 ms))."""
    t = np.arange(round(seconds * fs_hz)) / fs_hz
    return math.sqrt(2 * ms) * np.sin(2 * np.pi * f_hz * t + phase)
