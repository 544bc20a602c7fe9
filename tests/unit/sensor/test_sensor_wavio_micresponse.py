"""Streaming WAV reader and microphone response files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.refdata import sine
from support.wavwrite import write_wav

from klankkast.sensor.dsp import Meter
from klankkast.sensor.errors import MicResponseError, WavError
from klankkast.sensor.micresponse import load_mic_response, parse_mic_response
from klankkast.sensor.wavio import WavReader

FORMATS = [(16, False, False), (24, False, False), (32, False, False), (32, True, False),
           (64, True, False), (24, False, True), (32, True, True)]  # fmt: skip


@pytest.mark.parametrize(("bits", "is_float", "ext"), FORMATS)
def test_reader_formats_first_channel(tmp_path: Path, bits: int, is_float: bool, ext: bool) -> None:
    rng = np.random.default_rng(bits)
    x = np.clip(0.3 * rng.standard_normal((5000, 2)), -1, 0.999)
    x[0, 0] = -1.0
    p = write_wav(tmp_path / "a.wav", x, 48000, bits, is_float, ext, extra_chunk=True)
    with WavReader(p) as r:
        assert (r.info.fs_hz, r.info.channels, r.info.bits, r.info.n_frames) == (
            48000,
            2,
            bits,
            5000,
        )
        got = np.concatenate(list(r.blocks(777)))
    lsb = 0.0 if is_float and bits == 64 else (1e-7 if is_float else 2.0 ** -(bits - 1))
    assert np.max(np.abs(got - x[:, 0])) <= lsb
    assert got[0] == -1.0


def test_reader_streams_blocks(tmp_path: Path) -> None:
    p = write_wav(tmp_path / "b.wav", np.zeros(10_000), 16000)
    with WavReader(p) as r:
        sizes = [len(b) for b in r.blocks(3000)]
    assert sizes == [3000, 3000, 3000, 1000]


def test_reader_data_size_overrun_reads_to_eof(tmp_path: Path) -> None:
    p = write_wav(tmp_path / "c.wav", 0.1 * np.ones(4001), 16000, data_size=0xFFFFFFFF)
    with WavReader(p) as r:
        assert r.info.n_frames == 4001
        assert sum(len(b) for b in r.blocks(1000)) == 4001


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello, this is text and not a wav file at all", "not a WAV"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no 'fmt ' chunk"),
    ],
)
def test_reader_rejects_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(WavError, match=message):
        WavReader(p)


def test_reader_rejects_8bit(tmp_path: Path) -> None:
    p = write_wav(tmp_path / "u8.wav", np.zeros(100), 16000, bits=8)
    with pytest.raises(WavError, match="unsupported WAV format 8-bit PCM"):
        WavReader(p)


UMIK = """"Sens Factor =-1.378dB, AGain =18dB, SERNO: 7103946"
10.054\t-3.2310
20.000\t-1.0000
1000.0\t0.5000
2000.0\t6.5000
\t
20000.0\t6.5000
"""


def test_parse_umik1_file() -> None:
    r = parse_mic_response(UMIK, "umik.txt")
    assert r.sens_factor_db == pytest.approx(-1.378)
    assert list(r.freqs_hz) == [10.054, 20.0, 1000.0, 2000.0, 20000.0]
    # relative to 1 kHz: the correction removes R(f) - R(1 kHz)
    assert r.correction_db([1000.0])[0] == pytest.approx(0.0)
    assert r.correction_db([4000.0])[0] == pytest.approx(-6.0)
    assert r.correction_db([5.0])[0] == pytest.approx(3.7310)  # end value held
    # log-frequency interpolation: half-way (in lg f) between 1 and 2 kHz
    assert r.correction_db([1000 * 2**0.5])[0] == pytest.approx(-3.0)


def test_parse_other_layouts() -> None:
    text = (
        "* measured 2024\nFreq(Hz) SPL(dB) Phase(degrees)\n20, 0.1, 5\n1000; 0.0; 0\n10000 -1.0 3\n"
    )
    r = parse_mic_response(text)
    assert list(r.freqs_hz) == [20.0, 1000.0, 10000.0]
    assert list(r.response_db) == [0.1, 0.0, -1.0]
    assert r.sens_factor_db is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just a header\n", "at least 2"),
        ("100 1\n50 2\n", "increase strictly"),
        ("0 1\n100 2\n", "> 0 Hz"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(MicResponseError, match=message):
        parse_mic_response(text)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MicResponseError, match="microphone response file"):
        load_mic_response(tmp_path / "nope.txt")


def test_response_correction_in_meter(tmp_path: Path) -> None:
    """A microphone reading 6 dB hot above 2 kHz: with its file, a 4 kHz tone reads 6 dB
    lower in A/C/Z levels and in its band; a 1 kHz tone (the calibration frequency) is unchanged."""
    path = tmp_path / "umik.txt"
    path.write_text(UMIK)
    mic = load_mic_response(path)
    for f, delta in ((4000.0, -6.0), (1000.0, 0.0)):
        plain = Meter(48000, offset_db=100.0).process(sine(f, 48000, 3.0))[-1].fields
        corr = (
            Meter(48000, offset_db=100.0, mic_response=mic).process(sine(f, 48000, 3.0))[-1].fields
        )
        for key in ("LAeq", "LCeq", "LZeq", "LAFmax", "LCpeak"):
            assert corr[key] - plain[key] == pytest.approx(delta, abs=0.05), key
        band = "4000" if f == 4000.0 else "1000"
        assert corr["bands"][band] - plain["bands"][band] == pytest.approx(delta, abs=0.05)


def test_parse_bom_and_crlf() -> None:
    r = parse_mic_response('\ufeff"Sens Factor =.5dB"\r\n20\t1.0\r\n1000\t0.0\r\n')
    assert r.sens_factor_db == pytest.approx(0.5)
    assert list(r.freqs_hz) == [20.0, 1000.0]
