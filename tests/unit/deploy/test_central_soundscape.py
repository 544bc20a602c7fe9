"""The demo's audio synthesis: calibrated levels, streaming reverberation, WAV output."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from demo import soundscape as ss
from scipy import signal
from scipy.io import wavfile

REPO = Path(__file__).resolve().parents[3]


def _level_db(x: np.ndarray, offset_db: float) -> float:
    """The node's reading: offset_db + 10 log10(mean square) (a signal of mean square 1.0
    reads the calibration offset)."""
    return offset_db + 10 * math.log10(float(np.mean(x * x)))


def test_rms_for_level_is_the_inverse_of_the_calibration() -> None:
    """A 1 kHz sine of amplitude sqrt(2)*rms has mean square rms^2."""
    fs, offset = 16000, 110.0
    t = np.arange(fs) / fs
    x = math.sqrt(2) * ss.rms_for_level(64.0, offset) * np.sin(2 * np.pi * 1000 * t)
    assert abs(_level_db(x, offset) - 64.0) < 0.01


def test_overlap_add_block_by_block_equals_whole_convolution() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal(20_000)
    ir = rng.standard_normal(3_001) * np.exp(-np.arange(3_001) / 500)
    ola = ss.OverlapAdd(ir)
    sizes = [1, 7, 2_999, 3_000, 5_000, 9_000 - 7]  # shorter and longer than the IR
    parts, pos = [], 0
    for n in sizes:
        parts.append(ola.process(x[pos : pos + n]))
        pos += n
    parts.append(ola.process(x[pos:]))
    whole = signal.fftconvolve(x, ir)[: x.size]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-9)


def test_reverb_ir_decays_60_db_in_rt60() -> None:
    """ISO 3382-1: the reverberation time is the time for a 60 dB energy decay."""
    fs, rt60 = 16000, 1.2
    ir = ss.reverb_ir(rt60, fs, np.random.default_rng(1))
    assert abs(float(np.sum(ir * ir)) - 1.0) < 1e-9
    e = ir[1:] ** 2  # without the direct sound
    win = fs // 20
    early = float(np.mean(e[:win]))
    late_t = int(0.5 * fs)
    late = float(np.mean(e[late_t : late_t + win]))
    # energy envelope exp(-t * 6 ln10 / RT60): between t=0.025 s and t=0.525 s -> -25 dB
    expected = -60.0 * 0.5 / rt60
    assert abs(10 * math.log10(late / early) - expected) < 1.5


def test_traffic_only_scene_reads_its_level() -> None:
    """With no activities and no slams, the scene is traffic at traffic_db()."""
    scene = ss.Scene(
        fs_hz=16000, offset_db=110.0, activities=(), traffic_db=lambda t: 50.0, slams_per_h=0.0
    )
    x = ss.render(scene, 120.0, chunk_s=30.0)
    assert x.size == 120 * 16000
    assert abs(_level_db(x, 110.0) - 50.0) < 0.2


def test_party_is_louder_and_bass_heavy() -> None:
    scene = ss.courtyard_scene(21.5, 240.0, (120.0, 241.0), seed=3)
    x = ss.render(scene, 240.0)
    fs = scene.fs_hz
    before, party = x[: 110 * fs], x[130 * fs :]
    assert _level_db(party, 110.0) > _level_db(before, 110.0) + 10
    f, p = signal.welch(party, fs, nperseg=4096)
    low = p[(f >= 30) & (f < 150)].sum()
    high = p[(f >= 1000) & (f < 4000)].sum()
    assert low > 10 * high  # most of the energy below 150 Hz: kick drum and bass line


def test_write_wav_is_float32_and_equals_render(tmp_path: Path) -> None:
    scene = ss.courtyard_scene(22.0, 30.0, None, seed=2)
    path = ss.write_wav(tmp_path / "s.wav", scene, 30.0, chunk_s=10.0)
    fs, data = wavfile.read(path)
    assert fs == 16000 and data.dtype == np.float32 and data.size == 30 * 16000
    np.testing.assert_allclose(data, ss.render(scene, 30.0, chunk_s=10.0).astype(np.float32))
