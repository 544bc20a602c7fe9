"""A/C/Z frequency weightings against IEC 61672-1:2013 Table 3 and Annex E.

Expected values are the Table 3 design goals and class 1 acceptance limits
(``tests/data/reference/iec61672_weighting.csv``), evaluated at the exact frequencies
f = 1000 x 10^((n - 30)/10) Hz, and the Annex E formulas written out in
``support.refdata``.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.refdata import annex_e_db, num, rows, sine

from klankkast.sensor import weighting
from klankkast.sensor.dsp import SUPPORTED_RATES, Meter

TABLE3 = rows("iec61672_weighting.csv")


def _cases(max_hz: float) -> list[tuple[str, dict[str, str]]]:
    return [(k, r) for r in TABLE3 for k in ("A", "C") if float(r["exact_hz_derived"]) <= max_hz]


@pytest.mark.parametrize(
    ("kind", "row"), _cases(16500.0), ids=lambda v: v if isinstance(v, str) else v["nominal_hz"]
)
def test_design_goal_within_0p1_db_at_48k(kind: str, row: dict[str, str]) -> None:
    """At 48 kHz the digital response is within 0.1 dB of the Table 3 design goal, 10 Hz-16 kHz."""
    f = float(row["exact_hz_derived"])
    got = float(weighting.response_db(kind, 48000, [f])[0])  # type: ignore[arg-type]
    assert got == pytest.approx(num(row[f"{kind}_dB"]), abs=0.1)


@pytest.mark.parametrize("fs", SUPPORTED_RATES)
@pytest.mark.parametrize("kind", ["A", "C"])
def test_inside_class1_limits_at_every_rate(fs: int, kind: str) -> None:
    """Every Table 3 frequency below Nyquist is inside the class 1 acceptance limits."""
    bad = []
    for row in TABLE3:
        f = float(row["exact_hz_derived"])
        if f >= fs / 2:
            continue
        got = float(weighting.response_db(kind, fs, [f])[0])  # type: ignore[arg-type]
        goal = num(row[f"{kind}_dB"])
        lo, hi = goal + num(row["class1_lower_dB"]), goal + num(row["class1_upper_dB"])
        if not lo <= got <= hi:
            bad.append((row["nominal_hz"], round(got, 3), lo, hi))
    assert not bad


@pytest.mark.parametrize("kind", ["A", "C"])
def test_tracks_annex_e_closely_at_48k(kind: str) -> None:
    """Designed at the sample rate: within 0.02 dB of Annex E from 10 Hz to 16 kHz at 48 kHz."""
    f = np.geomspace(10, 16000, 200)
    got = weighting.response_db(kind, 48000, f)  # type: ignore[arg-type]
    want = np.array([annex_e_db(kind, x) for x in f])
    assert np.max(np.abs(got - want)) < 0.02


@pytest.mark.parametrize(
    ("f_hz", "fs"),
    [(31.5, 48000), (1000.0, 48000), (4000.0, 48000), (8000.0, 48000), (12500.0, 48000),
     (16000.0, 48000), (100.0, 16000), (1000.0, 44100), (10000.0, 32000)],
)  # fmt: skip
def test_meter_reads_weighted_sine(f_hz: float, fs: int) -> None:
    """A sine of mean square 1.0 reads C + A(f), C + C(f) and C (Z) dB through the streaming meter."""
    offset = 94.0
    m = Meter(fs, offset_db=offset)
    reps = [r for r in m.process(sine(f_hz, fs, 3.0)) if r.kind == "second"]
    fields = reps[-1].fields
    assert fields["LAeq"] == pytest.approx(offset + annex_e_db("A", f_hz), abs=0.1)
    assert fields["LCeq"] == pytest.approx(offset + annex_e_db("C", f_hz), abs=0.1)
    assert fields["LZeq"] == pytest.approx(offset, abs=0.01)


@pytest.mark.parametrize("fs", SUPPORTED_RATES)
def test_calibration_offset_at_1k(fs: int) -> None:
    """Calibration: a 1 kHz sine of mean square 1.0 reads exactly the offset C in A, C and Z."""
    for offset in (0.0, 93.98, 120.0):
        m = Meter(fs, offset_db=offset, floor_db=-300.0)
        fields = m.process(sine(1000.0, fs, 2.0))[-1].fields
        for key in ("LAeq", "LCeq", "LZeq", "LAFmax", "LASmax"):
            assert fields[key] == pytest.approx(offset, abs=0.02), key
        # the time-weighted levels of a steady tone equal its Leq (ripple well below 0.05 dB)
        assert fields["LAFmin"] == pytest.approx(offset, abs=0.05)


def test_mean_square_scaling_is_10_lg() -> None:
    """Halving the amplitude lowers every level by 20 lg 2 = 6.02 dB."""
    m1, m2 = Meter(48000, offset_db=100.0), Meter(48000, offset_db=100.0)
    a = m1.process(sine(500.0, 48000, 2.0))[-1].fields
    b = m2.process(0.5 * sine(500.0, 48000, 2.0))[-1].fields
    for key in ("LAeq", "LCeq", "LZeq", "LAFmax", "LCpeak"):
        assert a[key] - b[key] == pytest.approx(20 * np.log10(2), abs=0.02)


def test_broadband_laeq_matches_independent_spectral_computation() -> None:
    """LAeq/LCeq of 4 s of noise (15 Hz-16 kHz, where Table 3 sets design goals) equal an
    independent computation: the noise's periodic spectrum (1-s period) weighted bin by
    bin with the Annex E formulas (Parseval)."""
    fs = 48000
    rng = np.random.default_rng(8)
    spec = rng.standard_normal(fs // 2 + 1) + 1j * rng.standard_normal(fs // 2 + 1)
    spec[0] = 0
    f = np.arange(fs // 2 + 1, dtype=float)
    spec[(f < 15) | (f > 16000)] = 0  # no start-up transient below 15 Hz
    period = np.fft.irfft(spec, n=fs)
    period *= 0.1 / np.sqrt(np.mean(period**2))
    power = np.abs(np.fft.rfft(period)) ** 2
    power[1:-1] *= 2
    expected = {}
    for kind in ("A", "C"):
        w = np.zeros_like(f)
        w[1:] = [10 ** (annex_e_db(kind, x) / 10) for x in f[1:]]
        ms = np.sum(power * w) / fs**2
        expected[kind] = 100.0 + 10 * np.log10(ms)
    fields = Meter(fs, offset_db=100.0).process(np.tile(period, 4))[-1].fields
    assert fields["LAeq"] == pytest.approx(expected["A"], abs=0.02)
    assert fields["LCeq"] == pytest.approx(expected["C"], abs=0.02)
    assert fields["LZeq"] == pytest.approx(100.0 + 10 * np.log10(0.01), abs=0.01)
