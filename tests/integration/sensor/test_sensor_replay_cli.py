"""``klankkast-sensor replay`` as a user runs it: a subprocess on real WAV files.

Expected levels come from physics: a 1 kHz sine of mean square ms reads
offset + 10 lg(ms) dB in A, C and Z (A(1 kHz) = C(1 kHz) = 0 dB, IEC 61672-1 Table 3).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.wavwrite import write_wav

from klankkast.sensor.wire import BAND_NOMINALS

KEYS_1S = ["t", "LAeq", "LCeq", "LZeq", "LAFmax", "LAFmin", "LASmax", "LCpeak", "bands"]
MS = 0.01  # -20 dB re a full-scale mean square


def _sine(
    fs: int, seconds: float, f: float = 1000.0, ms: float = MS, channels: int = 1
) -> np.ndarray:
    t = np.arange(round(seconds * fs)) / fs
    x = math.sqrt(2 * ms) * np.sin(2 * np.pi * f * t)
    return x if channels == 1 else np.stack([x] + [0.5 * x] * (channels - 1), axis=1)


def replay(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "klankkast.sensor.cli", "replay", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize(
    ("bits", "is_float", "ext", "channels"),
    [(16, False, False, 1), (24, False, False, 1), (32, False, False, 2), (32, True, False, 1),
     (64, True, False, 1), (24, False, True, 2), (32, True, True, 1)],
)  # fmt: skip
def test_formats_read_the_physical_level(
    tmp_path: Path, bits: int, is_float: bool, ext: bool, channels: int
) -> None:
    p = write_wav(
        tmp_path / "s.wav", _sine(48000, 2.5, channels=channels), 48000, bits, is_float, ext
    )
    out = _lines(replay(p, "--offset-db", "94"))
    assert [o["t"] for o in out] == [0, 1000]  # the trailing half second is not complete
    want = 94 + 10 * math.log10(MS)
    for o in out:
        assert list(o)[: len(KEYS_1S)] == KEYS_1S
        assert list(o["bands"]) == list(BAND_NOMINALS)  # type: ignore[arg-type]
        for key in ("LAeq", "LCeq", "LZeq"):
            assert o[key] == pytest.approx(want, abs=0.02)
        assert o["bands"]["1000"] == pytest.approx(want, abs=0.05)  # type: ignore[index]
        for v in [o[k] for k in KEYS_1S[1:-1]] + list(o["bands"].values()):  # type: ignore[union-attr]
            assert round(float(v), 2) == v  # type: ignore[arg-type]
    # a steady sine's peak is 3.01 dB above its level (the first second holds the onset)
    assert out[-1]["LCpeak"] == pytest.approx(want + 3.01, abs=0.1)


@pytest.mark.parametrize("fs", [16000, 32000, 44100])
def test_other_rates(tmp_path: Path, fs: int) -> None:
    out = _lines(replay(write_wav(tmp_path / "r.wav", _sine(fs, 2.0), fs), "--offset-db", "100"))
    assert [o["t"] for o in out] == [0, 1000]
    bands = list(out[-1]["bands"])  # type: ignore[arg-type]
    assert bands == list(BAND_NOMINALS[: len(bands)]) and "1000" in bands
    assert out[-1]["LAeq"] == pytest.approx(80.0, abs=0.02)


def test_interval_summaries_with_percentiles(tmp_path: Path) -> None:
    """5-s summaries of 2.5 s at 70 dB + 2.5 s at 40 dB (x2): LAeq = 10 lg((10^7 + 10^4)/2),
    LA10 = 70, LA90 = 40; the 2 s after the last complete interval are not printed."""
    loud = _sine(16000, 2.5, ms=10 ** ((70 - 100) / 10))
    quiet = _sine(16000, 2.5, ms=10 ** ((40 - 100) / 10))
    x = np.concatenate([loud, quiet, loud, quiet, loud[:32000]])
    out = _lines(
        replay(write_wav(tmp_path / "i.wav", x, 16000), "--offset-db", "100", "--interval", "5")
    )
    assert [o["t"] for o in out] == [0, 5000]
    for o in out:
        assert {"LA10", "LA50", "LA90", "LA95"} <= set(o)
        assert o["LAeq"] == pytest.approx(10 * math.log10((10**7 + 10**4) / 2), abs=0.1)
        assert o["LA10"] == pytest.approx(70, abs=0.5)
        assert o["LA90"] == pytest.approx(40, abs=0.5)


def test_bands_of_a_burst_stay_in_its_second(tmp_path: Path) -> None:
    """Issue 14: a 100 ms noise burst (30 Hz-18 kHz) at 1.60-1.70 s of a silent 3-s file,
    late in second 1 but 0.3 s from its end. Second 1's band power sum is its LZeq
    + 0.05 dB (the sixth-order filters' effective bandwidth; +/- 0.3 dB); seconds 0 and 2,
    more than the 0.25-s crossfade away from the burst, have no band energy (mean square
    floor 1e-20: -100 dB at offset 100). The file's last second is printed (flushed)."""
    rng = np.random.default_rng(6)
    n = 4800
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / 48000)
    spec[(f < 30) | (f > 18000)] = 0
    burst = np.fft.irfft(spec, n)
    burst *= 0.3 / np.sqrt(np.mean(burst**2))
    x = np.zeros(3 * 48000)
    x[76800 : 76800 + n] = burst
    p = write_wav(tmp_path / "b.wav", x, 48000, bits=32, is_float=True)
    out = _lines(replay(p, "--offset-db", "100"))
    assert [o["t"] for o in out] == [0, 1000, 2000]
    bands = [list(o["bands"].values()) for o in out]  # type: ignore[union-attr]
    band_sum = 10 * math.log10(sum(10 ** (v / 10) for v in bands[1]))
    assert band_sum - float(out[1]["LZeq"]) == pytest.approx(0.05, abs=0.3)  # type: ignore[arg-type]
    assert max(bands[0]) <= -99.9 and max(bands[2]) <= -99.9


def test_block_size_does_not_change_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x = 0.1 * rng.standard_normal(16000 * 3)
    x[20000:20100] += 0.7
    p = write_wav(tmp_path / "n.wav", x, 16000, bits=32, is_float=True)
    outs = [replay(p, "--block-ms", b).stdout for b in ("3", "100", "1000", "2500")]
    assert outs[0] and all(o == outs[0] for o in outs)


def test_nonfinite_samples_are_counted(tmp_path: Path) -> None:
    x = _sine(16000, 2.0)
    x[100] = np.nan
    x[17000:17003] = np.inf
    out = _lines(replay(write_wav(tmp_path / "nan.wav", x, 16000, bits=32, is_float=True)))
    assert [o["nonfinite"] for o in out] == [1, 3]
    assert all(math.isfinite(float(o["LAeq"])) for o in out)  # type: ignore[arg-type]
    assert out[0]["LAeq"] == pytest.approx(-20.0, abs=0.02)


def test_mic_response_file(tmp_path: Path) -> None:
    resp = tmp_path / "umik.txt"
    resp.write_text('"Sens Factor =-.7dB, SERNO: 700"\n20 0\n1000 0\n2000 6\n20000 6\n')
    p = write_wav(tmp_path / "m.wav", _sine(48000, 2.0, f=4000.0), 48000, bits=24)
    plain = _lines(replay(p, "--offset-db", "100"))
    corr = _lines(replay(p, "--offset-db", "100", "--mic-response", resp))
    assert corr[-1]["LZeq"] == pytest.approx(float(plain[-1]["LZeq"]) - 6.0, abs=0.05)  # type: ignore[arg-type]
    bad = replay(p, "--mic-response", tmp_path / "missing.txt")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def _bad(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"{kind}.wav"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not audio\n" * 10)
    elif kind == "u8":
        write_wav(p, np.zeros(1000), 16000, bits=8)
    elif kind == "rate":
        write_wav(p, np.zeros(22050), 22050)
    elif kind == "nodata":
        write_wav(p, np.zeros(0), 16000)
    elif kind == "truncated":
        p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    elif kind == "missing":
        pass
    return p


@pytest.mark.parametrize("kind", ["empty", "text", "u8", "rate", "nodata", "truncated", "missing"])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, kind: str) -> None:
    proc = replay(_bad(tmp_path, kind))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--interval", "0.5"],
        ["--interval", "2.5"],
        ["--block-ms", "0"],
        ["--offset-db", "loud"],
        [],
    ],
)
def test_bad_options_exit_2(tmp_path: Path, args: list[str]) -> None:
    if args:
        proc = replay(write_wav(tmp_path / "ok.wav", _sine(16000, 1.0), 16000), *args)
    else:  # no FILE at all
        proc = replay()
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_replay_rates_match_core() -> None:
    from klankkast.sensor import replay as replay_mod
    from klankkast.sensor.dsp import SUPPORTED_RATES

    assert replay_mod._RATES == SUPPORTED_RATES


def test_help_explains_output() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "klankkast.sensor.cli", "replay", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0
    for word in ("--offset-db", "--interval", "--block-ms", "--mic-response", "JSON"):
        assert word in proc.stdout
