"""Calibrator tone analysis: accepts a steady 1 kHz tone, refuses the rest with the reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from klankkast.sensor.calibrate import analyse_tone, new_offset_db
from klankkast.sensor.errors import CalibrationError

FS = 48000


def tone(f_hz: float = 1000.0, amp: float = 0.1, seconds: float = 5.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return amp * np.sin(2 * np.pi * f_hz * t)


def test_steady_tone_gives_offset_from_its_mean_square() -> None:
    """Sine of amplitude 0.1: mean square 0.1²/2 = 0.005; a 94.0 dB calibrator gives
    offset = 94 - 10 lg 0.005 = 117.01 dB."""
    a = analyse_tone(tone(), FS)
    assert a.frequency_hz == pytest.approx(1000.0, abs=0.5)
    assert a.ms_tone == pytest.approx(0.005, rel=1e-3)
    assert a.spread_db < 0.01
    assert new_offset_db(a, 94.0) == pytest.approx(94 - 10 * math.log10(0.005), abs=0.01)


def test_background_noise_below_the_tone_is_tolerated() -> None:
    rng = np.random.default_rng(1)
    x = tone() + rng.normal(0, 0.002, int(5 * FS))
    offset = new_offset_db(analyse_tone(x, FS), 114.0)
    assert offset == pytest.approx(114 - 10 * math.log10(0.005), abs=0.05)


def test_refuses_a_tone_not_near_1khz() -> None:
    with pytest.raises(CalibrationError, match=r"near 1000 Hz.*250\.0 Hz"):
        new_offset_db(analyse_tone(tone(250.0), FS), 94.0)


def test_refuses_an_unsteady_tone() -> None:
    """Level rising 1 dB over the recording: spread ~1 dB > 0.2 dB."""
    x = tone()
    x *= 10 ** (np.linspace(0, 1, len(x)) / 20)
    with pytest.raises(CalibrationError, match=r"steady within 0\.2 dB"):
        new_offset_db(analyse_tone(x, FS), 94.0)


def test_refuses_noise_and_silence_and_clipping() -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(CalibrationError, match="energy"):
        new_offset_db(analyse_tone(rng.normal(0, 0.1, 5 * FS), FS), 94.0)
    with pytest.raises(CalibrationError, match="no calibrator tone"):
        new_offset_db(analyse_tone(np.zeros(5 * FS), FS), 94.0)
    with pytest.raises(CalibrationError, match="clips"):
        new_offset_db(analyse_tone(np.clip(tone(amp=2.0), -1, 1), FS), 94.0)


def test_calibrated_meter_reads_the_reference_with_a_mic_response_file() -> None:
    """A response file flat at +2 dB (a sensitivity deviation such as a vendor's
    "Sens Factor") must not shift the calibration: the meter takes the response
    relative to 1 kHz, so after calibrating against a 94.0 dB calibrator the meter,
    given the same file, reads 94.0 dB for the calibrator's tone."""
    from klankkast.sensor.calibrate import offset_for_tone
    from klankkast.sensor.dsp import Meter
    from klankkast.sensor.micresponse import parse_mic_response

    resp = parse_mic_response('"Sens Factor =-1.0dB"\n20 2.0\n1000 2.0\n20000 2.0\n')
    x = tone(seconds=4.0)
    offset = offset_for_tone(analyse_tone(x, FS), 94.0, resp)
    meter = Meter(FS, offset_db=offset, mic_response=resp)
    seconds = [r for r in meter.process(x) if r.kind == "second"]
    # Z-weighted level of the steady part (skip the first second's filter settling)
    assert seconds[2].fields["LZeq"] == pytest.approx(94.0, abs=0.05)
