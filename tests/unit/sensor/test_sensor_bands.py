"""One-third-octave bands against IEC 61260-1:2014 (base-10 bands, class 1 mask).

Expected values: band frequencies from ``iec61260_third_octave_bands.csv``, limits
from ``iec61260_class1_mask.csv`` (interpolated linearly in lg Omega), pink noise
carrying equal power per proportional band (physics).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.refdata import mask_limits, rows, sine

from klankkast.sensor import bands
from klankkast.sensor.dsp import SUPPORTED_RATES, Meter, band_nominals
from klankkast.sensor.wire import BAND_NOMINALS

BANDS = rows("iec61260_third_octave_bands.csv")
MASK = rows("iec61260_class1_mask.csv")


def test_band_table_matches_standard() -> None:
    """Nominals, exact mid-band and edge frequencies as IEC 61260-1 formulas (1)-(5) give."""
    assert tuple(r["nominal_hz"] for r in BANDS) == BAND_NOMINALS
    for r in BANDS:
        x = int(r["band_index_x"])
        assert bands.band_mid_hz(x) == pytest.approx(float(r["exact_mid_hz_derived"]), rel=1e-5)
        lo, hi = bands.band_edges_hz(x)
        assert lo == pytest.approx(float(r["lower_edge_hz_derived"]), rel=1e-5)
        assert hi == pytest.approx(float(r["upper_edge_hz_derived"]), rel=1e-5)


def test_band_nominals_per_rate() -> None:
    assert band_nominals(48000) == BAND_NOMINALS
    for fs in SUPPORTED_RATES:
        noms = band_nominals(fs)
        assert noms == BAND_NOMINALS[: len(noms)]
        x_last = int(BANDS[len(noms) - 1]["band_index_x"])
        assert float(BANDS[len(noms) - 1]["upper_edge_hz_derived"]) < fs / 2
        assert bands.band_edges_hz(x_last + 1)[1] >= fs / 2


@pytest.mark.parametrize("row", MASK, ids=lambda r: f"{r['octave_exponent_x']}-{r['region'][:9]}")
def test_filter_shape_inside_class1_mask(row: dict[str, str]) -> None:
    """|H|^2 at each Table 1 breakpoint (above and below mid-band) is inside the class 1 limits."""
    lo, hi = float(row["class1_min_rel_atten_dB"]), float(row["class1_max_rel_atten_dB"])
    for x in (-17, 0, 13):
        fm = bands.band_mid_hz(x)
        for om in (float(row["Omega_third_octave_high"]), float(row["Omega_third_octave_low"])):
            atten = -10 * math.log10(bands.band_magnitude_sq(x, [fm * om])[0])
            assert lo - 1e-9 <= atten <= hi + 1e-9, (x, om, atten)


def _tone_band_levels(f_hz: float, fs: int = 48000) -> dict[str, float]:
    """Band levels of the second second of a steady tone of mean square 1.0 (offset 100 dB).

    The first second's frames are cut off by the stream start (a rectangular edge
    whose leakage is outside the mask); the second second's frames, which reach
    from 0.75 s to 2.25 s, lie wholly in the tone.
    """
    m = Meter(fs, offset_db=100.0, floor_db=-300.0)
    reps = [r for r in m.process(sine(f_hz, fs, 3.0, phase=0.7)) if r.kind == "second"]
    assert reps[1].start_sample == fs
    return dict(reps[1].fields["bands"])


@pytest.mark.parametrize("nominal", ["20", "25", "100", "1000", "8000", "16000"])
def test_effective_response_of_meter_inside_mask(nominal: str) -> None:
    """Tones swept around a band (also between FFT bins) read inside the class 1 mask.

    The relative attenuation is the band reading minus the tone level (100 dB),
    compared with the mask at Omega = f / fm.
    """
    x = BAND_NOMINALS.index(nominal) - 17
    fm = bands.band_mid_hz(x)
    bad = []
    for om in (1.0, 1.02, 1.05, 1.08, 1.12202, 1.2, 1.3, 1.6, 1.9, 2.5, 3.1, 4.0, 5.4, 8.0):
        for f in (fm * om, fm / om):
            if not 5.0 < f < 23900.0:
                continue
            atten = 100.0 - _tone_band_levels(f)[nominal]
            lo, hi = mask_limits(om)
            if not lo - 0.01 <= atten <= hi + 0.01:
                bad.append((round(f, 2), round(atten, 2), lo, hi))
    assert not bad


@pytest.mark.parametrize("fs", [48000, 16000])
def test_tone_at_mid_band_lands_in_its_band(fs: int) -> None:
    """A tone at each exact mid-band frequency reads its own level in its own band,
    and that band is the largest by more than the adjacent-band attenuation (> 15 dB)."""
    for i, nominal in enumerate(band_nominals(fs)):
        levels = _tone_band_levels(bands.band_mid_hz(i - 17), fs)
        assert max(levels, key=levels.__getitem__) == nominal
        assert levels[nominal] == pytest.approx(100.0, abs=0.1), nominal
        others = [v for k, v in levels.items() if k != nominal]
        assert max(others) < 100.0 - 15.0


def _pink_periodic(fs: int, seconds: int, seed: int = 3) -> np.ndarray:
    """Pink noise with an exact 1/f power spectrum (1-s period, random phases)."""
    rng = np.random.default_rng(seed)
    k = np.arange(fs // 2 + 1)
    mag = np.zeros(len(k))
    mag[1:] = 1.0 / np.sqrt(k[1:])
    spec = mag * np.exp(2j * np.pi * rng.random(len(k)))
    period = np.fft.irfft(spec, n=fs)
    period /= np.sqrt(np.mean(period**2))
    return np.tile(period, seconds)


@pytest.mark.parametrize("fs", [48000, 44100])
def test_pink_noise_gives_flat_bands(fs: int) -> None:
    """Pink noise has equal power in bands of equal relative width: bands flat within +/-0.5 dB,
    and each band carries ln(G^(1/3)) / ln(fs/2 / 1 Hz) of the total (up to the filters' 0.05 dB
    effective-bandwidth excess of a 6th-order Butterworth)."""
    m = Meter(fs, offset_db=100.0)
    reps = [r for r in m.process(_pink_periodic(fs, 3)) if r.kind == "second"]
    levels = np.array(list(reps[-1].fields["bands"].values()))
    assert np.max(np.abs(levels - levels.mean())) <= 0.5
    share_db = 10 * math.log10(math.log(10**0.1) / math.log(fs / 2))
    assert levels.mean() == pytest.approx(100.0 + share_db, abs=0.3)


def test_band_energies_sum_to_broadband() -> None:
    """White noise band-limited to 100-8000 Hz, 3 s: the energy sum of every second's bands,
    energy-averaged over the file, equals the file's LZeq within the sixth-order Butterworth
    effective-bandwidth excess 10 lg((pi/12)/sin(pi/12)) = 0.05 dB (+/- 0.05 dB), so within
    +/- 0.1 dB; a third-order shape would read 0.20 dB high."""
    rng = np.random.default_rng(5)
    spec = np.fft.rfft(rng.standard_normal(48000 * 3))
    f = np.fft.rfftfreq(48000 * 3, 1 / 48000)
    spec[(f < 100) | (f > 8000)] = 0
    x = np.fft.irfft(spec)
    m = Meter(48000, offset_db=100.0)
    seconds = [r.fields for r in m.process(x) + m.flush() if r.kind == "second"]
    assert len(seconds) == 3
    band_ms = np.mean([sum(10 ** (v / 10) for v in s["bands"].values()) for s in seconds])
    lzeq_ms = np.mean([10 ** (s["LZeq"] / 10) for s in seconds])
    excess = 10 * math.log10((math.pi / 12) / math.sin(math.pi / 12))
    assert excess == pytest.approx(0.05, abs=0.005)
    assert 10 * math.log10(band_ms / lzeq_ms) == pytest.approx(excess, abs=0.05)
