"""``klankkast-sensor replay``: measure a WAV file through the node's core.

Streams the file in blocks of ``--block-ms`` through :class:`klankkast.sensor.dsp.Meter`
(the same core the live node runs) and prints one JSON object per complete interval
on stdout::

    {"t": 0, "LAeq": 54.12, "LCeq": ..., "LZeq": ..., "LAFmax": ..., "LAFmin": ...,
     "LASmax": ..., "LCpeak": ..., "bands": {"20": ..., ..., "20000": ...},
     "overload": 0, "nonfinite": 0, "bass": ..., "impulsive": ..., "tonality": ...,
     "tonal_band": null}

``t`` is the interval start in ms from the start of the file. With ``--interval S``
(S > 1) the S-second summaries are printed instead, with ``LA10``, ``LA50``,
``LA90``, ``LA95`` added. A trailing partial interval is not printed. Levels are
in dB rounded to 0.01; reported levels are floored at -200 dB (digital silence),
not at the wire's -20 dB, so uncalibrated dBFS-like readings stay exact.

``bands`` are the band Leq of the interval as :mod:`klankkast.sensor.wire`
defines them: IEC 61260-1 class 1 one-third-octave bands (sixth-order
Butterworth shape, FFT of 1-s Vorbis-windowed frames) whose frames start 0.25 s
before and after each second, so each second's band energy is that of its own
samples except for a 0.5-s crossfade centred on each boundary (+/- 0.25 s).
Over a file of whole seconds every sample's energy is counted once.

Bad input (not a WAV, empty, unsupported format or sample rate, bad options)
prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import os

# One BLAS thread: the core's band sums are small matrix products, and BLAS worker
# threads only contend with the filters on a busy machine. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import math
import sys
from typing import Any, NoReturn

__all__ = ["add_arguments", "main"]

REPLAY_FLOOR_DB = -200.0
_RATES = (16000, 32000, 44100, 48000)  # == klankkast.sensor.dsp.SUPPORTED_RATES (checked by a test)


def _one_line_error(message: str) -> NoReturn:
    print(f"klankkast-sensor replay: {message} (see --help)", file=sys.stderr)
    sys.exit(2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add replay's options to its subcommand parser."""
    parser.error = _one_line_error  # type: ignore[method-assign]  # bad usage: one line, exit 2
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Output: one JSON object per complete interval on stdout, e.g.\n"
        '  {"t": 0, "LAeq": 54.12, ..., "bands": {"20": 31.5, ..., "20000": 12.0}}\n'
        "t = interval start in ms from the start of the file; levels in dB (0.01).\n"
        "bands: band Leq of the interval, IEC 61260-1 class 1 one-third-octave bands\n"
        "(6th-order Butterworth shape; FFT of 1-s Vorbis-windowed frames hopped 0.5 s,\n"
        "starting 0.25 s before and after each second). A second's bands hold its own\n"
        "samples' energy except a 0.5-s crossfade centred on each boundary (+/-0.25 s);\n"
        "over a file of whole seconds every sample counts once.\n"
        "Formats: 16/24/32-bit PCM, 32/64-bit float WAV (incl. WAVE_FORMAT_EXTENSIBLE);\n"
        "mono or the first channel; 16000, 32000, 44100 or 48000 Hz.\n"
        "Exit status 0 done, 2 on bad input (one line on stderr)."
    )
    parser.add_argument("file", metavar="FILE.wav", help="WAV file to measure")
    parser.add_argument(
        "--offset-db",
        type=float,
        default=0.0,
        metavar="C",
        help="calibration offset: a signal of mean square 1.0 (full scale +/-1) reads C dB "
        "(default 0: levels relative to a full-scale mean square)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="S",
        help="interval length in whole seconds; 1 (default) prints 1-s reports, S > 1 prints "
        "S-second summaries with LA10/LA50/LA90/LA95",
    )
    parser.add_argument(
        "--block-ms",
        type=float,
        default=100.0,
        metavar="B",
        help="feed the core blocks of B ms (default 100); results do not depend on it",
    )
    parser.add_argument(
        "--mic-response",
        metavar="FILE",
        default=None,
        help="microphone frequency-response file (two columns: Hz, dB; UMIK-1 style header ok), "
        "applied relative to 1 kHz",
    )


def _fail(message: str) -> int:
    print(f"klankkast-sensor replay: {message}", file=sys.stderr)
    return 2


def _line(t_ms: int, fields: dict[str, Any]) -> str:
    return json.dumps({"t": t_ms, **fields}, separators=(", ", ": "), allow_nan=False)


def main(args: argparse.Namespace) -> int:
    """Run replay; return the exit status (0, or 2 on bad input)."""
    interval = float(args.interval)
    if not (math.isfinite(interval) and interval >= 1 and interval.is_integer()):
        return _fail(f"--interval must be a whole number of seconds >= 1; got {args.interval:g}")
    block_ms = float(args.block_ms)
    if not (math.isfinite(block_ms) and 0 < block_ms <= 600_000):
        return _fail(f"--block-ms must be > 0 and <= 600000 ms; got {args.block_ms:g}")
    if not math.isfinite(float(args.offset_db)):
        return _fail(f"--offset-db must be a finite number; got {args.offset_db}")

    from .errors import MicResponseError, WavError
    from .micresponse import load_mic_response
    from .wavio import WavReader

    # validate everything cheap first; the core (scipy) is imported only for real work
    try:
        reader = WavReader(args.file)
    except WavError as err:
        return _fail(str(err))
    with reader:
        info = reader.info
        if info.fs_hz not in _RATES:
            return _fail(
                f"{args.file}: sample rate must be one of "
                f"{', '.join(map(str, _RATES))} Hz; got {info.fs_hz}"
            )
        if info.n_frames == 0:
            return _fail(f"{args.file}: WAV has no audio samples")
        mic = None
        if args.mic_response:
            try:
                mic = load_mic_response(args.mic_response)
            except MicResponseError as err:
                return _fail(str(err))
        from .dsp import Meter

        meter = Meter(
            info.fs_hz,
            offset_db=float(args.offset_db),
            mic_response=mic,
            summary_s=interval,
            floor_db=REPLAY_FLOOR_DB,
        )
        want = "second" if interval == 1 else "summary"
        frames = max(1, round(block_ms * info.fs_hz / 1000.0))
        out = sys.stdout
        full = round(interval) * info.fs_hz
        try:
            for block in reader.blocks(frames):
                for rep in meter.process(block):
                    if rep.kind == want:
                        t_ms = round(rep.start_sample * 1000 / info.fs_hz)
                        out.write(_line(t_ms, rep.fields) + "\n")
            # the last complete second waits for 0.25 s of look-ahead: flush reports it
            # (its bands run to the end of the file); a partial interval is not printed
            for rep in meter.flush():
                if rep.kind == want and rep.n_samples == full:
                    t_ms = round(rep.start_sample * 1000 / info.fs_hz)
                    out.write(_line(t_ms, rep.fields) + "\n")
        except BrokenPipeError:  # pragma: no cover - e.g. piped into head
            return 0
        except OSError as err:
            return _fail(f"{args.file}: read error: {err}")
        out.flush()
    return 0
