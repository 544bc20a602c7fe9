"""The streaming meter: energy averaging, percentiles, block independence, bad samples,
indicators and the report contract. Expected values from physics and the standards."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from support.refdata import annex_e_db, sine

from klankkast.decibel import energy_mean_level
from klankkast.sensor import wire
from klankkast.sensor.dsp import (
    OVERLOAD_THRESHOLD,
    SUPPORTED_RATES,
    IntervalReport,
    Meter,
    band_nominals,
    tonality,
)

FS = 48000
OFFSET = 100.0


def _tone_at(level_db: float, seconds: float, fs: int = FS, f: float = 1000.0) -> np.ndarray:
    """1 kHz tone (A = C = Z = 0 dB) reading ``level_db`` at offset 100: ms = 10^((L-100)/10)."""
    return sine(f, fs, seconds, ms=10 ** ((level_db - OFFSET) / 10))


def test_alternating_40_70_energy_mean_and_percentiles() -> None:
    """30 s at 40 dB + 30 s at 70 dB: LAeq = 10 lg((10^4 + 10^7)/2) = 67.0 dB (not 55),
    LA10 = 70 (exceeded 10 % of the time) and LA90 = 40."""
    m = Meter(FS, offset_db=OFFSET, summary_s=60)
    reps = m.process(np.concatenate([_tone_at(40, 30), _tone_at(70, 30)])) + m.flush()
    summaries = [r for r in reps if r.kind == "summary"]
    assert len(summaries) == 1 and len([r for r in reps if r.kind == "second"]) == 60
    s = summaries[0]
    assert (s.start_sample, s.n_samples) == (0, 60 * FS)
    expected = 10 * math.log10((10**4 + 10**7) / 2)
    assert expected == pytest.approx(66.99, abs=0.01)
    f = s.fields
    assert f["LAeq"] == pytest.approx(expected, abs=0.1)
    assert f["LA10"] == pytest.approx(70.0, abs=0.5)
    assert f["LA90"] == pytest.approx(40.0, abs=0.5)
    assert f["LA95"] == pytest.approx(40.0, abs=0.5)
    assert f["LAFmax"] == pytest.approx(70.0, abs=0.1)
    assert f["LAFmin"] == pytest.approx(40.0, abs=0.1)
    assert f["LA10"] >= f["LA50"] >= f["LA90"] >= f["LA95"]


def test_energy_mean_is_not_arithmetic() -> None:
    assert energy_mean_level([40.0, 70.0]) == pytest.approx(66.99, abs=0.01)
    assert energy_mean_level([60.0, 60.0, 60.0]) == pytest.approx(60.0)


def _mixed_signal(seconds: float = 3.4) -> np.ndarray:
    rng = np.random.default_rng(11)
    x = 0.05 * rng.standard_normal(round(seconds * FS))
    x[30000:30480] += 0.8  # a 10 ms step, an impulse
    x[70000:80000] += sine(63.0, FS, 10000 / FS, ms=0.1)
    x[100000] = np.nan
    x[100001] = np.inf
    x[120000:120010] = 1.0  # clipped
    return x


def _all_reports(x: np.ndarray, block: int | None, summary_s: float = 2) -> list[IntervalReport]:
    m = Meter(FS, offset_db=OFFSET, summary_s=summary_s)
    out: list[IntervalReport] = []
    if block is None:
        out += m.process(x)
    else:
        for i in range(0, len(x), block):
            out += m.process(x[i : i + block])
    return out + m.flush()


@pytest.mark.parametrize("block", [37, 4800, 48000, 100003])
def test_blockwise_equals_whole(block: int) -> None:
    """Reports do not depend on how the stream is cut into blocks."""
    x = _mixed_signal()
    whole = _all_reports(x, None)
    parts = _all_reports(x, block)
    assert [(r.kind, r.start_sample, r.n_samples) for r in whole] == [
        (r.kind, r.start_sample, r.n_samples) for r in parts
    ]
    for a, b in zip(whole, parts, strict=True):
        assert a.fields == b.fields


def test_flush_reports_partial_second_and_summary() -> None:
    reps = _all_reports(_mixed_signal(3.4), 4800, summary_s=2)
    kinds = [(r.kind, r.start_sample, r.n_samples) for r in reps]
    assert kinds == [
        ("second", 0, FS),
        ("second", FS, FS),
        ("summary", 0, 2 * FS),
        ("second", 2 * FS, FS),
        ("second", 3 * FS, round(0.4 * FS)),
        ("summary", 2 * FS, round(1.4 * FS)),
    ]


def test_nonfinite_counted_and_not_propagated() -> None:
    """NaN/inf samples are counted and replaced by 0: levels equal those of the zeroed signal."""
    x = _mixed_signal()
    zeroed = np.where(np.isfinite(x), x, 0.0)
    a = _all_reports(x, 4800)
    b = _all_reports(zeroed, 4800)
    seconds = [r for r in a if r.kind == "second"]
    assert seconds[2].fields["nonfinite"] == 2  # both in the third second (100000, 100001)
    assert sum(r.fields["nonfinite"] for r in a if r.kind == "second") == 2
    for ra, rb in zip(a, b, strict=True):
        fa = {k: v for k, v in ra.fields.items() if k != "nonfinite"}
        fb = {k: v for k, v in rb.fields.items() if k != "nonfinite"}
        assert fa == fb
    assert all(math.isfinite(r.fields["LAeq"]) for r in a)


def test_overload_counts_full_scale_samples() -> None:
    x = np.zeros(FS)
    x[:10] = 1.0
    x[10:15] = -1.0
    x[15:18] = 32767 / 32768  # positive full scale of 16-bit PCM
    x[18:20] = 0.999  # below full scale
    m = Meter(FS)
    fields = (m.process(x) + m.flush())[0].fields
    assert fields["overload"] == 18
    assert OVERLOAD_THRESHOLD <= 32767 / 32768


def test_silence_is_finite_and_floored() -> None:
    m = Meter(FS, offset_db=30.0)
    fields = m.process(np.zeros(2 * FS))[0].fields
    levels = [fields[k] for k in ("LAeq", "LCeq", "LZeq", "LAFmax", "LAFmin", "LASmax", "LCpeak")]
    assert levels == [-20.0] * 7
    assert set(fields["bands"].values()) == {-20.0}
    json.dumps(fields, allow_nan=False)


@pytest.mark.parametrize("fs", SUPPORTED_RATES)
def test_reports_follow_the_wire_contract(fs: int) -> None:
    """Second and summary fields, plus the envelope, pass the wire contract's validation."""
    m = Meter(fs, offset_db=OFFSET, summary_s=2)
    reps = m.process(0.1 * np.random.default_rng(1).standard_normal(2 * fs)) + m.flush()
    assert [r.kind for r in reps] == ["second", "second", "summary"]
    for i, r in enumerate(reps):
        kind = "second" if r.kind == "second" else "minute"
        env = {"site": "yard1", "node": "n1", "t": 1_700_000_000_000, "seq": i, "dur_ms": 1000}
        wire.encode(kind, {**env, **r.fields})
        assert tuple(r.fields["bands"]) == band_nominals(fs)
        for v in r.fields["bands"].values():
            assert round(v, 2) == v
    assert set(wire.SECOND_REQUIRED) - set(reps[0].fields) == {
        "schema", "site", "node", "t", "seq", "dur_ms"
    }  # fmt: skip
    assert set(wire.MINUTE_REQUIRED) - set(reps[2].fields) == {
        "schema", "site", "node", "t", "seq", "dur_ms"
    }  # fmt: skip


def test_bass_indicator_is_lc_minus_la() -> None:
    """A 50 Hz tone: LCeq - LAeq = C(50) - A(50) from Annex E (28.9 dB)."""
    m = Meter(FS, offset_db=OFFSET)
    fields = m.process(sine(50.0, FS, 3.0, ms=0.01))[-1].fields
    assert fields["bass"] == pytest.approx(annex_e_db("C", 50.0) - annex_e_db("A", 50.0), abs=0.1)


def test_impulse_adjustment_taktmaximal() -> None:
    """DIN 45645-1: a 10 ms 4 kHz burst every second: LAFmax = LA - 11.1 dB (Table 4, 10 ms)
    and LAeq = LA + 10 lg(0.01) = LA - 20 dB, so KI = 8.9 dB; a steady tone has KI = 0."""
    burst = np.zeros(FS)
    burst[1000:1480] = sine(4000.0, FS, 0.01, ms=0.1)
    m = Meter(FS, offset_db=OFFSET, summary_s=10)
    reps = m.process(np.tile(burst, 10))
    summary = reps[-1].fields
    assert summary["impulsive"] == pytest.approx(8.9, abs=0.5)
    assert reps[5].fields["impulsive"] == pytest.approx(8.9, abs=0.5)
    steady = Meter(FS, offset_db=OFFSET, summary_s=5).process(sine(1000.0, FS, 5.0, ms=0.1))
    assert abs(steady[-1].fields["impulsive"]) < 0.1


def test_tonality_iso_1996_2() -> None:
    """A 1 kHz tone 20 dB above pink-ish broadband noise is tonal in the 1000 Hz band;
    the noise alone is not."""
    rng = np.random.default_rng(2)
    noise = 0.05 * rng.standard_normal(3 * FS)
    tone = sine(1000.0, FS, 3.0, ms=0.05**2 * 10)
    with_tone = Meter(FS, offset_db=OFFSET).process(noise + tone)[-1].fields
    assert with_tone["tonal_band"] == "1000" and with_tone["tonality"] > 0
    only_noise = Meter(FS, offset_db=OFFSET).process(noise)[-1].fields
    assert only_noise["tonal_band"] is None and only_noise["tonality"] < 0


def test_tonality_criteria_by_range() -> None:
    """Criteria 15 dB (25-125 Hz), 8 dB (160-400 Hz), 5 dB (500 Hz-10 kHz)."""
    base = dict.fromkeys(wire.BAND_NOMINALS, 50.0)
    for nominal, excess, crit in (("63", 16.0, 15.0), ("250", 9.0, 8.0), ("2000", 6.0, 5.0)):
        levels = dict(base)
        levels[nominal] = 50.0 + excess
        margin, band = tonality(levels)
        assert band == nominal and margin == pytest.approx(excess - crit)
        levels[nominal] = 50.0 + crit - 0.5
        margin, band = tonality(levels)
        assert band is None and margin == pytest.approx(-0.5)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="samplerate must be one of"):
        Meter(22050)
    with pytest.raises(ValueError, match="summary_s"):
        Meter(FS, summary_s=2.5)
    with pytest.raises(ValueError, match="floating point"):
        Meter(FS).process(np.zeros(100, dtype=np.int16))


def test_float32_and_two_channel_blocks() -> None:
    """The node feeds float32 frames x channels: the first channel is measured."""
    x = sine(1000.0, FS, 2.0, ms=0.01)
    stereo = np.stack([x, np.zeros_like(x)], axis=1).astype(np.float32)
    got = Meter(FS, offset_db=OFFSET).process(stereo)[-1].fields
    assert got["LAeq"] == pytest.approx(80.0, abs=0.01)
