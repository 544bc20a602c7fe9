"""Time weightings F and S, sound exposure and C-weighted peak (IEC 61672-1:2013 Tables 4, 5).

Tonebursts: 4 kHz tone bursts of duration T cut from a steady sine whose A-weighted
level LA is known from physics (mean square -> 10 lg ms + C, plus Annex E A(4 kHz));
Table 4 gives LAFmax - LA, LASmax - LA and LAE - LA, tested here within +/-0.3 dB.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.refdata import annex_e_db, num, rows, sine

from klankkast.sensor.dsp import Meter

FS = 48000
OFFSET = 100.0
TONE_MS = 0.1  # mean square of the steady tone: LA = 100 + 10 lg 0.1 + A(4k)
TONEBURST = rows("iec61672_toneburst.csv")


def _burst(duration_ms: float, total_s: float = 4.0, start_s: float = 1.25) -> np.ndarray:
    """A 4 kHz burst of ``duration_ms`` (whole samples, starting at a zero crossing)."""
    x = np.zeros(round(total_s * FS))
    n0 = round(start_s * FS)
    nb = round(duration_ms * FS / 1000)
    x[n0 : n0 + nb] = sine(4000.0, FS, nb / FS, ms=TONE_MS)
    return x


def _la_steady() -> float:
    return OFFSET + 10 * math.log10(TONE_MS) + annex_e_db("A", 4000.0)


def _run(x: np.ndarray) -> list[dict[str, object]]:
    m = Meter(FS, offset_db=OFFSET, floor_db=-300.0)
    reps = m.process(x) + m.flush()
    return [r.fields for r in reps if r.kind == "second"]


def test_steady_tone_la_from_physics() -> None:
    fields = _run(sine(4000.0, FS, 3.0, ms=TONE_MS))
    assert fields[-1]["LAeq"] == pytest.approx(_la_steady(), abs=0.05)


@pytest.mark.parametrize("row", TONEBURST, ids=lambda r: f"{r['quantity'][:4]}-{r['burst_ms']}ms")
def test_toneburst_response_table4(row: dict[str, str]) -> None:
    duration_ms = float(row["burst_ms"])
    fields = _run(_burst(duration_ms))
    la = _la_steady()
    q = row["quantity"]
    if q.startswith("LAFmax"):
        got = max(float(f["LAFmax"]) for f in fields) - la  # type: ignore[arg-type]
    elif q.startswith("LASmax"):
        got = max(float(f["LASmax"]) for f in fields) - la  # type: ignore[arg-type]
    else:  # LAE = 10 lg(sum of 1-s interval energies / 1 s)
        energy = sum(10 ** (float(f["LAeq"]) / 10) for f in fields)  # type: ignore[arg-type]
        got = 10 * math.log10(energy) - la
    assert got == pytest.approx(num(row["reference_dB"]), abs=0.3)


def test_f_decay_rate() -> None:
    """After a tone stops, LAF decays at 10 lg(e)/0.125 s = 34.7 dB/s (exponential, tau = 0.125 s)."""
    x = np.concatenate([sine(1000.0, FS, 2.0, ms=1.0), np.zeros(FS)])
    fields = _run(x)
    # the LAF minimum of the silent third second is reached at its end: 1 s of decay
    drop = float(fields[1]["LAFmax"]) - float(fields[2]["LAFmin"])  # type: ignore[arg-type]
    assert drop == pytest.approx(10 * math.log10(math.e) / 0.125, abs=0.3)


CPEAK = rows("iec61672_cpeak.csv")


@pytest.mark.parametrize("row", CPEAK, ids=lambda r: f"{r['signal']}-{r['nominal_hz']}")
def test_cpeak_table5(row: dict[str, str]) -> None:
    """LCpeak - LC of one cycle / half cycles (Table 5), LC the steady sine's C level."""
    f = float(row["nominal_hz"])
    ms = 0.1
    period = round(FS / f) if FS % f == 0 else FS / f
    n = round(period) if row["signal"] == "one cycle" else round(period / 2)
    t = np.arange(n) / FS
    cyc = math.sqrt(2 * ms) * np.sin(2 * np.pi * f * t)
    if row["signal"].startswith("negative"):
        cyc = -cyc
    x = np.zeros(2 * FS)
    x[FS // 2 : FS // 2 + n] = cyc
    lc = OFFSET + 10 * math.log10(ms) + annex_e_db("C", f)
    fields = _run(x)
    got = max(float(fld["LCpeak"]) for fld in fields) - lc  # type: ignore[arg-type]
    tol = float(row["class1_tol_dB"].replace("+/-", ""))
    assert got == pytest.approx(float(row["LCpeak_minus_LC_dB"]), abs=tol)


def test_cpeak_of_steady_sine_is_crest_factor() -> None:
    """A steady 1 kHz sine: LCpeak - LCeq = 20 lg sqrt(2) = 3.01 dB (peak between samples found)."""
    for f in (1000.0, 3150.0, 7000.0):
        fields = _run(sine(f, FS, 2.0, ms=0.1, phase=0.3))
        assert float(fields[-1]["LCpeak"]) - float(fields[-1]["LCeq"]) == pytest.approx(  # type: ignore[arg-type]
            3.01, abs=0.1
        )
