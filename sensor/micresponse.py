"""Measurement-microphone frequency-response files (two columns: Hz, dB).

Vendors of measurement microphones ship a calibration file per serial number:
one line per frequency with the frequency in Hz and the microphone's response
deviation in dB, separated by blanks, tabs, commas or semicolons; a third column
(phase in degrees) is ignored. The miniDSP UMIK-1/UMIK-2 files start with a
quoted header line such as ``"Sens Factor =-.7423dB, AGain =18dB, SERNO: 7023456"``;
other files carry a column header (``Freq(Hz) SPL(dB)``), ``*`` or ``#`` comment
lines, or a ``*1000Hz -18.3`` sensitivity line. All non-numeric lines are skipped;
a ``Sens Factor`` value is kept in :attr:`MicResponse.sens_factor_db` for the
calibration step but is *not* applied to levels (the calibration offset already
carries the absolute sensitivity).

How the response is applied
---------------------------
The response R(f) is taken relative to its value at 1 kHz (the calibration
frequency of IEC 60942 sound calibrators), so that a calibration at 1 kHz stays
valid: the correction gain is ``-(R(f) - R(1 kHz))`` dB. Between the file's
points R is interpolated linearly in lg f; outside their range the first/last
value is held. :class:`klankkast.sensor.dsp.Meter` applies it per frequency bin
to the one-third-octave bands, and to the A/C/Z levels as the interval's
spectrally weighted broadband correction (see :mod:`klankkast.sensor.dsp`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .errors import MicResponseError

__all__ = ["MicResponse", "MicResponseError", "load_mic_response", "parse_mic_response"]

FloatArray = npt.NDArray[np.float64]

_SPLIT: Final = re.compile(r"[\s,;]+")
_SENS: Final = re.compile(r"sens\s*factor\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*db", re.IGNORECASE)
_MAX_BYTES: Final = 5_000_000


@dataclass(frozen=True)
class MicResponse:
    """A microphone's frequency response, relative values in dB.

    Attributes
    ----------
    freqs_hz : numpy.ndarray
        Strictly increasing frequencies in Hz (> 0).
    response_db : numpy.ndarray
        Response deviation in dB at ``freqs_hz`` as given in the file.
    sens_factor_db : float or None
        The UMIK-style ``Sens Factor`` from the header, if present (not applied).
    source : str
        Where the response came from (file name), for logs.
    """

    freqs_hz: FloatArray
    response_db: FloatArray
    sens_factor_db: float | None = None
    source: str = field(default="")

    def response_at_db(self, f_hz: npt.ArrayLike) -> FloatArray:
        """R(f) in dB, linear in lg f between points, end values held outside."""
        f = np.maximum(np.asarray(f_hz, dtype=np.float64), 1e-3)
        return np.asarray(
            np.interp(np.log10(f), np.log10(self.freqs_hz), self.response_db), dtype=np.float64
        )

    def correction_db(self, f_hz: npt.ArrayLike) -> FloatArray:
        """Gain in dB that removes the response: ``-(R(f) - R(1 kHz))``."""
        ref = float(self.response_at_db(np.array([1000.0]))[0])
        return np.asarray(-(self.response_at_db(f_hz) - ref), dtype=np.float64)


def parse_mic_response(text: str, source: str = "") -> MicResponse:
    """Parse the text of a two-column response file.

    Parameters
    ----------
    text : str
        File contents.
    source : str
        Name used in error messages.

    Raises
    ------
    MicResponseError
        Fewer than two numeric lines, non-positive or non-increasing frequencies,
        or non-finite values.
    """
    name = source or "microphone response"
    sens: float | None = None
    points: list[tuple[float, float]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        m = _SENS.search(line)
        if m and sens is None:
            sens = float(m.group(1))
        if line[0] in "\"'*#;/" or not (line[0].isdigit() or line[0] in "+-."):
            continue
        parts = [p for p in _SPLIT.split(line) if p]
        if len(parts) < 2:
            continue
        try:
            f, r = float(parts[0]), float(parts[1])
        except ValueError:
            continue
        if not (np.isfinite(f) and np.isfinite(r)) or f <= 0.0:
            raise MicResponseError(
                f"{name}: line {lineno}: frequency must be > 0 Hz and levels finite; got {line!r}"
            )
        points.append((f, r))
    if len(points) < 2:
        raise MicResponseError(
            f"{name}: needs at least 2 lines of 'frequency_Hz dB'; found {len(points)}"
        )
    arr = np.array(points, dtype=np.float64)
    freqs = arr[:, 0]
    if np.any(np.diff(freqs) <= 0.0):
        bad = int(np.argmax(np.diff(freqs) <= 0.0))
        raise MicResponseError(
            f"{name}: frequencies must increase strictly; {freqs[bad + 1]:g} Hz follows {freqs[bad]:g} Hz"
        )
    return MicResponse(freqs, arr[:, 1].copy(), sens, source)


def load_mic_response(path: str | Path) -> MicResponse:
    """Read and parse a response file (UTF-8 or Latin-1 text, at most 5 MB)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise MicResponseError(f"microphone response file {p}: {err.strerror or err}") from None
    if len(data) > _MAX_BYTES:
        raise MicResponseError(
            f"microphone response file {p} is {len(data)} bytes; at most {_MAX_BYTES}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_mic_response(text, str(p))
