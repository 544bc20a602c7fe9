"""``klankkast-sensor calibrate``: set the calibration offset from an acoustic calibrator.

The technician fits a class 1 sound calibrator (IEC 60942; 94.0 dB or 114.0 dB at
1 kHz) over the microphone and runs ``calibrate --reference-db 94.0``. The node
records a few seconds, finds the tone and refuses, naming the reason, when

* the strongest component is not near 1 kHz (more than 2 % off: IEC 60942 class 1
  allows 1 %, the rest is sound-card clock tolerance), or
* the tone does not dominate the signal (less than 90 % of the energy within the
  1 kHz one-third-octave band: calibrator not seated, or loud background), or
* its level is not steady within 0.2 dB (max - min over 0.25-s segments), or
* the signal clips, or there is no tone at all.

Otherwise the new offset is ``reference - 10 lg(ms_tone) - R(f)`` (``ms_tone`` the
tone's mean square in full-scale units, R the microphone response at the tone
frequency relative to 1 kHz, from the response file if any), written into the
config file (``[calibration] offset_db`` and ``calibrated_at``), and appended to the
calibration history with the drift from the previous offset.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from klankkast.decibel import energy_to_level
from klankkast.sensor.config import NodeConfig, load_config, update_calibration
from klankkast.sensor.errors import CalibrationError, ConfigError, SensorError
from klankkast.sensor.micresponse import MicResponse

__all__ = ["ToneAnalysis", "add_arguments", "analyse_tone", "main", "new_offset_db"]

TONE_HZ = 1000.0
MAX_FREQ_DEV = 0.02
MAX_SPREAD_DB = 0.2
MIN_PURITY = 0.90
SEGMENT_S = 0.25
HISTORY_FIELDS = (
    "calibrated_at", "reference_db", "frequency_hz", "old_offset_db", "new_offset_db",
    "drift_db", "spread_db", "node", "site",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ToneAnalysis:
    """What was found in the recording."""

    frequency_hz: float
    ms_tone: float  # mean square of the tone (full scale units)
    purity: float  # fraction of the energy in the 1 kHz one-third-octave band
    peak_purity: float  # fraction of the energy within ±1/6 octave of the strongest component
    ms_total: float
    spread_db: float  # max - min of the tone level over SEGMENT_S segments
    peak: float  # largest |sample|


def _band_ms(x: np.ndarray, fs_hz: int, f_lo: float, f_hi: float) -> tuple[float, float]:
    """(mean square within [f_lo, f_hi], total mean square) via the FFT (Parseval)."""
    n = len(x)
    spec = np.fft.rfft(x)
    p = np.abs(spec) ** 2
    p[1:] *= 2.0
    if n % 2 == 0:
        p[-1] /= 2.0
    p /= n * n
    f = np.fft.rfftfreq(n, 1.0 / fs_hz)
    band = (f >= f_lo) & (f <= f_hi)
    return float(p[band].sum()), float(p.sum())


def analyse_tone(x: np.ndarray, fs_hz: int) -> ToneAnalysis:
    """Find the calibrator tone in ``x`` (pure; no decision, see :func:`new_offset_db`)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < fs_hz // 2:
        raise CalibrationError(f"recording must be at least 0.5 s; got {len(x) / fs_hz:.2f} s")
    x = x - x.mean()
    win = np.hanning(len(x))
    mag = np.abs(np.fft.rfft(x * win))
    mag[0] = 0.0
    k = int(np.argmax(mag))
    delta = 0.0
    if 0 < k < len(mag) - 1:  # parabolic interpolation on log magnitude
        a, b, c = (math.log(max(v, 1e-300)) for v in mag[k - 1 : k + 2])
        den = a - 2 * b + c
        delta = 0.5 * (a - c) / den if den != 0 else 0.0
    freq = (k + delta) * fs_hz / len(x)
    lo, hi = TONE_HZ * 2 ** (-1 / 6), TONE_HZ * 2 ** (1 / 6)
    ms_tone, ms_total = _band_ms(x, fs_hz, lo, hi)
    ms_peak, _ = _band_ms(x, fs_hz, freq * 2 ** (-1 / 6), freq * 2 ** (1 / 6))
    seg = int(SEGMENT_S * fs_hz)
    levels = []
    for i in range(0, len(x) - seg + 1, seg):
        m, _ = _band_ms(x[i : i + seg], fs_hz, lo, hi)
        levels.append(energy_to_level(max(m, 1e-30)))
    spread = max(levels) - min(levels) if levels else 0.0
    return ToneAnalysis(
        frequency_hz=freq,
        ms_tone=ms_tone,
        purity=ms_tone / ms_total if ms_total > 0 else 0.0,
        peak_purity=ms_peak / ms_total if ms_total > 0 else 0.0,
        ms_total=ms_total,
        spread_db=spread,
        peak=float(np.max(np.abs(x))),
    )


def new_offset_db(a: ToneAnalysis, reference_db: float, response_db: float = 0.0) -> float:
    """Check the tone and return the new offset; :class:`CalibrationError` with the reason."""
    if a.peak >= 0.999:
        raise CalibrationError(
            f"the signal clips (peak {a.peak:.3f} of full scale); lower the input gain"
        )
    if a.ms_total < 1e-10:
        raise CalibrationError(
            f"no calibrator tone: the input is at {energy_to_level(max(a.ms_total, 1e-30)):.1f} dB "
            "re full scale; is the calibrator on and fitted, the microphone connected?"
        )
    off_1k = abs(a.frequency_hz - TONE_HZ) > MAX_FREQ_DEV * TONE_HZ
    if off_1k and a.peak_purity >= MIN_PURITY:
        raise CalibrationError(
            f"tone must be near 1000 Hz (±{MAX_FREQ_DEV:.0%}); found {a.frequency_hz:.1f} Hz"
        )
    if a.purity < MIN_PURITY:
        raise CalibrationError(
            f"the 1 kHz tone must carry at least {MIN_PURITY:.0%} of the energy; it carries "
            f"{a.purity:.0%} (calibrator not seated, or too much background noise)"
        )
    if a.spread_db > MAX_SPREAD_DB:
        raise CalibrationError(
            f"tone must be steady within {MAX_SPREAD_DB} dB; it varied by {a.spread_db:.2f} dB "
            "(hold the calibrator still and wait for it to settle)"
        )
    return reference_db - energy_to_level(a.ms_tone) - response_db


def offset_for_tone(a: ToneAnalysis, reference_db: float, response: MicResponse | None) -> float:
    """Offset that makes the meter read ``reference_db`` for the analysed calibrator tone.

    The meter adds the microphone correction ``correction_db(f)`` (0 dB at 1 kHz, the
    response taken relative to 1 kHz) to what it measures, so the offset takes out
    exactly that gain at the tone's frequency, not the file's absolute response.
    """
    corr = float(response.correction_db([a.frequency_hz])[0]) if response is not None else 0.0
    return new_offset_db(a, reference_db, corr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Calibrate against an acoustic calibrator (1 kHz tone). Refuses, with the reason, "
        "when the tone is not steady within 0.2 dB or not near 1 kHz. Writes the new offset "
        "into the config ([calibration] offset_db, calibrated_at) and appends to the "
        "calibration history. Stop the node first (systemctl stop klankkast-sensor) and "
        "restart it afterwards. Exit status 0 calibrated, 1 config error, 2 refused."
    )
    parser.add_argument("--config", required=True, type=Path, help="node config file (TOML)")
    parser.add_argument(
        "--reference-db", required=True, type=float,
        help="the calibrator's level in dB, e.g. 94.0 or 114.0",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="seconds to record (default 5; 1-60)"
    )
    parser.add_argument(
        "--settle", type=float, default=0.5, help="seconds to discard at the start (default 0.5)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="measure and report, but do not write anything"
    )


def history_path(cfg: NodeConfig, config_path: Path) -> Path:
    if cfg.calibration.history_file is not None:
        return Path(cfg.calibration.history_file)
    return config_path.resolve().parent / "calibration-history.csv"


def append_history(path: Path, row: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)


def _fail(msg: str, code: int) -> int:
    print(f"klankkast-sensor calibrate: {msg}", file=sys.stderr)
    return code


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        if not 30.0 <= args.reference_db <= 160.0:
            raise ConfigError(f"--reference-db must be from 30 to 160 dB; got {args.reference_db}")
        if not 1.0 <= args.seconds <= 60.0:
            raise ConfigError(f"--seconds must be from 1 to 60; got {args.seconds}")
        response = None
        if cfg.calibration.mic_response is not None:
            from klankkast.sensor.micresponse import load_mic_response

            response = load_mic_response(cfg.calibration.mic_response)
    except ConfigError as err:
        return _fail(f"config error: {err}", 1)
    except SensorError as err:
        return _fail(f"config error: calibration.mic_response: {err}", 1)
    from klankkast.sensor.capture import SoundDeviceSource, record

    source = SoundDeviceSource(
        cfg.audio.device,
        cfg.audio.samplerate,
        block_ms=cfg.audio.block_ms,
        channel=cfg.audio.channel,
    )
    fs = cfg.audio.samplerate
    try:
        x = record(source, args.seconds + args.settle)[int(args.settle * fs) :]
        a = analyse_tone(x, fs)
        offset = offset_for_tone(a, args.reference_db, response)
    except CalibrationError as err:
        return _fail(f"calibration refused: {err}", 2)
    except SensorError as err:
        return _fail(str(err), 2)
    old = cfg.calibration.offset_db
    drift = offset - old
    when = datetime.now(UTC).replace(microsecond=0).isoformat()
    summary = (
        f"{a.frequency_hz:.1f} Hz tone steady within {a.spread_db:.2f} dB; offset {offset:.2f} dB "
        f"(was {old:.2f}, drift {drift:+.2f} dB)"
    )
    if args.dry_run:
        print(f"dry run: {summary}; nothing written")
        return 0
    update_calibration(args.config, offset, when)
    hist = history_path(cfg, args.config)
    append_history(
        hist,
        {
            "calibrated_at": when,
            "reference_db": f"{args.reference_db:.2f}",
            "frequency_hz": f"{a.frequency_hz:.1f}",
            "old_offset_db": f"{old:.2f}",
            "new_offset_db": f"{offset:.2f}",
            "drift_db": f"{drift:+.2f}",
            "spread_db": f"{a.spread_db:.3f}",
            "node": cfg.node.id,
            "site": cfg.node.site,
        },
    )
    print(f"calibrated: {summary}; written to {args.config}, history {hist}")
    if abs(drift) > 1.0 and cfg.calibration.calibrated_at is not None:
        print(
            f"warning: the offset drifted {drift:+.2f} dB since {cfg.calibration.calibrated_at}; "
            "check the microphone",
            file=sys.stderr,
        )
    return 0
