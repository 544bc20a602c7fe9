"""The running core's light import path: shipped weighting sections and direct scipy routines.

A node must stay under 120 MB resident (issue 4), so the core runs on weighting
sections designed ahead of time and calls scipy's sections loop and real FFT without
importing scipy.signal / scipy.fft (which pull in sparse, linalg, special and
optimize). These tests check that nothing changes: the shipped sections are a fresh
Annex E design, and the direct routines give the public functions' results bit for
bit.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import fft as sp_fft
from scipy import signal

from klankkast.sensor import _fastpaths, dsp, weighting

SOSFILT_INPLACE, R2C = _fastpaths.scipy_routines()


@pytest.mark.parametrize("fs_hz", [16000, 32000, 44100, 48000])
def test_shipped_sections_equal_a_fresh_design(fs_hz: int) -> None:
    """The shipped sections respond like a fresh Annex E design, within 0.001 dB.

    Compared by what a meter reads, the magnitude response from 10 Hz to 20 kHz
    (or to just below Nyquist), not by coefficients: the fitted design moves by
    parts per million between scipy/numpy releases, which changes no reading.
    """
    assert fs_hz in weighting.shipped_rates()
    shipped = weighting.design(fs_hz)
    fresh = weighting.design_fresh(fs_hz)
    f = np.geomspace(10.0, min(20000.0, 0.49 * fs_hz), 400)
    w = 2.0 * np.pi * f / fs_hz
    pairs = {
        "C": (shipped.sos_c, fresh.sos_c),
        "A": (shipped.sos_a, fresh.sos_a),
        "C->A": (shipped.sos_c_to_a, fresh.sos_c_to_a),
    }
    for name, (a, b) in pairs.items():
        _, ha = signal.sosfreqz(a, worN=w)
        _, hb = signal.sosfreqz(b, worN=w)
        diff_db = np.abs(20 * np.log10(np.abs(ha) / np.abs(hb)))
        worst = int(np.argmax(diff_db))
        assert diff_db[worst] <= 0.001, f"{name} at {f[worst]:.0f} Hz: {diff_db[worst]:.4f} dB"


def test_unshipped_rate_is_designed_fresh() -> None:
    d = weighting.design(24000)
    f = np.array([31.5, 1000.0, 8000.0])
    got = weighting.response_db("A", 24000, f)
    want = weighting.analogue_weighting_db("A", f)
    assert d.fs_hz == 24000
    np.testing.assert_allclose(got, want, atol=0.3)


def test_direct_sections_loop_equals_sosfilt() -> None:
    assert SOSFILT_INPLACE is not None, "scipy layout changed: fast path lost"
    sos = weighting.design(48000).sos_a
    x = np.random.default_rng(7).normal(size=(2, 48000))
    zi = np.zeros((1, sos.shape[0], 2))
    want = []
    for half in x:
        y, zi[0] = signal.sosfilt(sos, half, zi=zi[0])
        want.append(y)
    buf = np.empty((1, 48000))
    state = np.zeros((1, sos.shape[0], 2))
    for half, y in zip(x, want, strict=True):
        buf[0] = half
        SOSFILT_INPLACE(sos, buf, state)
        assert np.array_equal(buf[0], y)


def test_direct_rfft_equals_scipy_fft() -> None:
    assert R2C is not None, "scipy layout changed: fast path lost"
    x = np.random.default_rng(8).normal(size=49152).astype(np.float32)
    got = dsp._rfft_f32(x.copy(), R2C)
    want = sp_fft.rfft(x, workers=1)
    assert got.dtype == want.dtype == np.complex64
    assert np.array_equal(got, want)


def test_running_core_does_not_import_heavy_scipy() -> None:
    code = (
        "import sys, numpy as np\n"
        "from klankkast.sensor.dsp import Meter\n"
        "m = Meter(48000, offset_db=100.0)\n"
        "x = np.random.default_rng(1).normal(0, 0.1, 3 * 48000)\n"
        "assert len(m.process(x)) == 2  # the third second waits 0.25 s for its bands\n"
        "heavy = sorted(k for k in sys.modules if k in {'scipy.signal', 'scipy.fft',\n"
        "    'scipy.optimize', 'scipy.special', 'scipy.sparse', 'scipy.linalg'})\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("fs_hz", [16000, 48000])
def test_meter_reads_the_same_with_the_fast_paths_on_and_off(fs_hz: int) -> None:
    """[node] fast_paths: scipy's routines called directly or through the public API give
    the same reports, to the bit (the same compiled code runs either way)."""
    x = np.random.default_rng(3).normal(0, 0.1, int(2.5 * fs_hz))
    reports = []
    for fast in (True, False):
        m = dsp.Meter(fs_hz, offset_db=100.0, summary_s=2, fast_paths=fast)
        reports.append(m.process(x) + m.flush())
    kinds = [r.kind for r in reports[0]]
    assert kinds.count("second") == 3 and "summary" in kinds
    assert reports[0] == reports[1]
