"""The node's metrology core: a streaming class 1 sound level meter (pure numpy/scipy).

:class:`Meter` takes blocks of samples of any length (full scale is +/-1.0) and
returns one :class:`IntervalReport` per complete second and one per summary
interval (default 60 s). Samples are collected into whole seconds, and each second
is processed as one array with the filter states carried from the previous second
(``scipy.signal.sosfilt`` with ``zi``), so the results are identical for any block
size.

What is measured (IEC 61672-1:2013 unless stated)
--------------------------------------------------
* Frequency weightings A, C, Z (Annex E, Table 3): :mod:`klankkast.sensor.weighting`.
* Equivalent continuous levels LAeq, LCeq, LZeq: energy integration of the
  weighted square over the interval, converted to dB once per interval.
* Time weightings F (tau = 0.125 s) and S (tau = 1 s) (Table 4 tonebursts): the exact
  discrete exponential average y[n] = a y[n-1] + (1 - a) e[n], a = exp(-1/(tau fs)),
  of the A-weighted square e. It is evaluated on a grid of M samples
  (M = 48, 49, 32, 16 at 48, 44.1, 32, 16 kHz: about 1 ms) by summing each step
  with the exact kernel (1 - a) a^(M-1-i), so grid values are exact samples of y.
  LAFmax, LAFmin and LASmax are the extremes over the grid; between grid points
  F can decay by at most 0.04 dB (the Table 4 toneburst tolerance is 0.5 dB).
  The averagers start from the median of the 1-ms mean squares of the first
  125 ms instead of zero, so a stream that starts in the middle of a steady sound
  reads no spurious minimum (and one that starts with silence starts at zero).
* LCpeak (Table 5 tolerances): the largest |C-weighted sample| of the interval, refined by
  a parabola through the largest sample and its neighbours (the true peak of a
  sampled sinusoid lies between samples), 20 lg(peak) + offset.
* Percentiles LA10, LA50, LA90, LA95 of a summary interval: percentiles (linear
  interpolation, ``numpy.percentile``) of LAF sampled every 10 ms (100 Hz),
  LA_N being the level exceeded N % of the time.
* One-third-octave band LZeq: :mod:`klankkast.sensor.bands` (IEC 61260-1 class 1,
  sixth-order Butterworth shape, frequency domain): the band Leq of the interval.
  An interval's band energy comes from the two Vorbis-windowed 1-s frames that
  start 0.25 s before and 0.25 s after its start (their centres lie in it), so a
  sample's weight is 1 from 0.25 s to 0.75 s into the interval and only a 0.5-s
  crossfade centred on each boundary (+/- 0.25 s) is shared with the neighbours;
  over consecutive intervals every sample counts exactly once, and the weight is
  centred on the interval. The first interval also takes the frame that starts
  0.75 s before the stream and the last one (at :meth:`Meter.flush`) every frame
  starting before the stream's end, so the weights reach both ends of the stream.
  Band mean squares divide by the window weight that fell on real samples (1 s
  for every full second), so a partial last interval of a steady sound reads
  right. The first interval's frames are cut off by the stream start, so a tone
  present from the first sample leaks beyond the class 1 stop-band mask in that
  interval only.
* Latency: a second's bands need the first 0.25 s of the next second, so
  :meth:`Meter.process` returns the report of second k (and a summary it
  completes) with the block that delivers sample (k + 1.25) fs; :meth:`Meter.flush`
  reports the held-back second. Results do not depend on the block size.
* Overload: samples with |x| >= 1 - 2^-15 (full scale; the threshold lets a
  clipped 16-bit PCM stream, whose positive full scale is 32767/32768, count).
* Non-finite samples (NaN, +/-inf) are counted in ``nonfinite`` and replaced by 0
  before any filter, so they never reach a level or a filter state.

Nuisance indicators
-------------------
* ``bass`` = LCeq - LAeq (low-frequency content, e.g. amplified music; DIN 45680
  uses LC - LA > 20 dB as the first indication of low-frequency noise).
* ``impulsive`` = the impulse adjustment of the *Taktmaximalpegel* method of
  DIN 45645-1:1996 (as used by the German TA Laerm): KI = LAFTeq - LAeq, where LAFTeq is
  the energy mean of the maximum LAF in each clock interval of T = 5 s. Summary
  reports use 5-s clocks aligned to the summary start; a 1-s report is its own
  single 1-s clock (KI = LAFmax - LAeq of that second).
* ``tonality`` by the one-third-octave method of ISO 1996-2:2007 Annex D
  (simplified method): a band is tonal when its LZeq exceeds both neighbouring bands by at
  least 15 dB (25-125 Hz), 8 dB (160-400 Hz) or 5 dB (500 Hz-10 kHz).
  ``tonality`` is the largest margin min(L - L_below, L - L_above) - criterion
  over the assessed bands (> 0: a tone), ``tonal_band`` the nominal frequency of
  that band when the margin is > 0, else ``None``.

Calibration and levels
----------------------
``offset_db`` is the level that a signal of mean square 1.0 reads (so a full-scale
sine reads offset - 3.01 dB): L = 10 lg(ms) + offset. Mean squares are floored at
1e-20 (-200 dB re full scale) before the logarithm and every reported level is then
clamped at ``floor_db`` (default -20 dB, the lowest level the wire and the ingest
accept; digital silence therefore reads ``floor_db``). With a microphone response
(:class:`klankkast.sensor.micresponse.MicResponse`) the bands are corrected per
FFT bin, and the A/C/Z levels by the interval's spectrally weighted correction
10 lg(sum P_k W(f_k) c_k / sum P_k W(f_k)) (P_k the bin powers, W the weighting,
c_k the linear correction; the spectrum is that of the interval's band frames):
exact for the Leq values of a sound whose spectrum is steady over those frames,
and applied as the same offset to that interval's time-weighted levels and LCpeak. Levels are rounded to
0.01 dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from klankkast.decibel import (
    energies_to_levels,
    energy_mean_level,
    energy_to_level,
    level_to_energy,
    levels_to_energies,
)

from . import _fastpaths
from . import bands as _bands
from . import weighting as _weighting
from .micresponse import MicResponse


def _rfft_f32(x: npt.NDArray[np.float32], r2c: Any = None) -> npt.NDArray[np.complex64]:
    """``scipy.fft.rfft(x, workers=1)`` of a contiguous 1-D float32 array; through
    pocketfft's ``r2c`` directly when given (:mod:`klankkast.sensor._fastpaths`)."""
    if r2c is not None:
        # what scipy.fft.rfft calls: axes, forward, norm=None ("backward": 0), out, workers
        return r2c(x, (0,), True, 0, None, 1)  # type: ignore[no-any-return]
    from scipy import fft as sp_fft

    return sp_fft.rfft(x, overwrite_x=True, workers=1)  # type: ignore[no-any-return]


__all__ = [
    "LAF_SAMPLE_RATE_HZ",
    "OVERLOAD_THRESHOLD",
    "SUPPORTED_RATES",
    "IntervalReport",
    "Meter",
    "band_nominals",
    "tonality",
]

FloatArray = npt.NDArray[np.float64]
# per-bin mic correction (linear), |A|^2 and |C|^2 at the bins, corrected band weights
_Corrections = tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.float32]]

SUPPORTED_RATES: Final = (16000, 32000, 44100, 48000)
#: Rate at which LAF is sampled for the percentiles (every 10 ms).
LAF_SAMPLE_RATE_HZ: Final = 100
#: |x| at or above this counts as overload (full scale, within one 16-bit LSB).
OVERLOAD_THRESHOLD: Final = 1.0 - 2.0**-15
TAU_F_S: Final = 0.125
TAU_S_S: Final = 1.0
_MS_FLOOR: Final = 1e-20
_KI_CLOCK_S: Final = 5
# ISO 1996-2 one-third-octave tone criteria: (lowest band Hz, highest band Hz, dB)
_TONE_CRITERIA: Final = ((25.0, 125.0, 15.0), (160.0, 400.0, 8.0), (500.0, 10000.0, 5.0))
_CRITERION_DB: Final = {
    nom: next(c for lo, hi, c in _TONE_CRITERIA if lo <= float(nom) <= hi)
    for nom in _bands.BAND_NOMINALS
    if any(lo <= float(nom) <= hi for lo, hi, _ in _TONE_CRITERIA)
}
_SECOND_KEYS: Final = ("LAeq", "LCeq", "LZeq", "LAFmax", "LAFmin", "LASmax", "LCpeak")


def band_nominals(fs_hz: int) -> tuple[str, ...]:
    """Nominal one-third-octave bands measured at ``fs_hz`` (see :mod:`klankkast.sensor.bands`)."""
    return _bands.band_nominals(fs_hz)


def tonality(
    band_levels_db: dict[str, float] | tuple[tuple[str, float], ...],
) -> tuple[float, str | None]:
    """ISO 1996-2 one-third-octave tone test.

    Parameters
    ----------
    band_levels_db : dict
        Nominal frequency -> band level in dB, contiguous bands in ascending order.

    Returns
    -------
    (float, str or None)
        The largest margin in dB by which a band exceeds both neighbours beyond
        the criterion (15 dB for 25-125 Hz, 8 dB for 160-400 Hz, 5 dB for
        500 Hz-10 kHz), and that band's nominal if the margin is positive.
        ``(-inf, None)`` when no band can be assessed.
    """
    items = (
        list(band_levels_db.items()) if isinstance(band_levels_db, dict) else list(band_levels_db)
    )
    best = -math.inf
    best_band: str | None = None
    for i in range(1, len(items) - 1):
        nom, level = items[i]
        crit = _CRITERION_DB.get(nom)
        if crit is None:
            continue
        margin = min(level - items[i - 1][1], level - items[i + 1][1]) - crit
        if margin > best:
            best, best_band = margin, nom
    return best, (best_band if best > 0.0 else None)


@dataclass(frozen=True)
class IntervalReport:
    """Levels of one interval.

    Attributes
    ----------
    kind : {"second", "summary"}
        A 1-s interval or a summary interval (the node publishes it as ``minute``).
    start_sample : int
        First sample of the interval, counted from the start of the stream.
    n_samples : int
        Samples the interval covers (``fs_hz`` for a full second).
    fields : dict
        Wire field names (:mod:`klankkast.sensor.wire`) -> values, levels in dB
        rounded to 0.01, ``bands`` a dict nominal -> dB.
    """

    kind: Literal["second", "summary"]
    start_sample: int
    n_samples: int
    fields: dict[str, Any]


@dataclass
class _Second:
    """Unrounded results of one (possibly partial) second, kept for the summary."""

    n: int
    ms_a: float
    ms_c: float
    ms_z: float
    ms_bands: FloatArray
    laf_max_db: float
    laf_min_db: float
    las_max_db: float
    lcpeak_db: float
    laf_samples_db: FloatArray
    overload: int
    nonfinite: int


@dataclass
class _Pending:
    """A measured second waiting for the samples its bands need (levels without offsets)."""

    start: int
    n: int
    ms_a: float
    ms_c: float
    ms_z: float
    peak: float
    laf_max_db: float
    laf_min_db: float
    las_max_db: float
    laf_samples_db: FloatArray
    overload: int
    nonfinite: int


def _grid_step(fs_hz: int) -> int:
    """Samples per time-weighting grid step: about 1 ms, dividing fs and fs/100."""
    m = fs_hz // 1000
    while m > 1 and (fs_hz % m or (fs_hz // m) % LAF_SAMPLE_RATE_HZ):
        m += 1
        if m > fs_hz // 500:
            m = 1
            break
    return m


def _lg10(ms: float) -> float:
    """10 lg(ms), ms floored at 1e-20."""
    return energy_to_level(max(ms, _MS_FLOOR))


def _fast_length(n: int) -> int:
    """Smallest 2^a 3^b >= n (the FFT sizes pocketfft is fastest at)."""
    best = 1 << (n - 1).bit_length()
    p3 = 1
    while p3 < 2 * n:
        p2 = p3
        while p2 < n:
            p2 *= 2
        best = min(best, p2)
        p3 *= 3
    return best


def _parabolic_peak(y: FloatArray) -> float:
    """Largest |y|, refined by a parabola through the largest sample and its neighbours."""
    i_max, i_min = int(np.argmax(y)), int(np.argmin(y))
    i = i_max if y[i_max] >= -y[i_min] else i_min
    p = abs(float(y[i]))
    if 0 < i < len(y) - 1:
        s = 1.0 if y[i] >= 0 else -1.0
        ym, y0, yp = s * float(y[i - 1]), s * float(y[i]), s * float(y[i + 1])
        den = ym - 2.0 * y0 + yp
        if den < 0.0:
            d = 0.5 * (ym - yp) / den
            if abs(d) <= 1.0:
                p = max(p, y0 - 0.25 * (ym - yp) * d)
    return p


class Meter:
    """Streaming sound level meter: blocks in, interval reports out (0.25 s after the interval).

    Parameters
    ----------
    fs_hz : int
        Sample rate, one of :data:`SUPPORTED_RATES`.
    offset_db : float
        Calibration offset C: a mean square of 1.0 reads C dB.
    mic_response : MicResponse or None
        Microphone frequency response to correct for (relative to 1 kHz).
    summary_s : float
        Length of the summary interval in whole seconds (default 60).
    floor_db : float
        Lowest reported level in dB (default -20, the wire's lower bound).

    Raises
    ------
    ValueError
        Unsupported rate or a summary interval that is not a whole number of seconds.
    """

    def __init__(
        self,
        fs_hz: int,
        *,
        offset_db: float = 0.0,
        mic_response: MicResponse | None = None,
        summary_s: float = 60.0,
        floor_db: float = -20.0,
        fast_paths: bool = True,
    ) -> None:
        if fs_hz not in SUPPORTED_RATES:
            raise ValueError(
                f"samplerate must be one of {', '.join(map(str, SUPPORTED_RATES))}; got {fs_hz}"
            )
        if not (math.isfinite(summary_s) and summary_s >= 1 and float(summary_s).is_integer()):
            raise ValueError(f"summary_s must be a whole number of seconds >= 1; got {summary_s}")
        if not math.isfinite(offset_db):
            raise ValueError(f"offset_db must be a finite number; got {offset_db}")
        self.fs_hz = int(fs_hz)
        self.offset_db = float(offset_db)
        self.mic_response = mic_response
        self.summary_seconds = int(summary_s)
        self.floor_db = float(floor_db)
        self.nominals = _bands.band_nominals(self.fs_hz)
        d = _weighting.design(self.fs_hz)
        self._sos_c = d.sos_c
        self._sos_c2a = d.sos_c_to_a
        # [node] fast_paths: scipy's sections loop and real FFT called directly (the
        # same code, without importing scipy.signal / scipy.fft); off: the public API
        routines = _fastpaths.scipy_routines() if fast_paths else (None, None)
        self._sosfilt_inplace: Any = routines[0]
        self._r2c: Any = routines[1]
        self._zi_c = np.zeros((1, d.sos_c.shape[0], 2))  # (signals, sections, 2)
        self._zi_a = np.zeros((1, d.sos_c_to_a.shape[0], 2))
        self._m = _grid_step(self.fs_hz)
        self._steps_per_laf = self.fs_hz // self._m // LAF_SAMPLE_RATE_HZ
        self._alpha = np.array([math.exp(-1.0 / (tau * self.fs_hz)) for tau in (TAU_F_S, TAU_S_S)])
        self._kernel = self._make_kernel(self._m)
        self._y = np.zeros(2)  # F and S averager states (mean square)
        self._pow_cache: dict[int, FloatArray] = {}
        self._y_started = False
        self._buf = np.empty(self.fs_hz, dtype=np.float64)
        self._fill = 0
        self._pos = 0  # samples processed into seconds so far
        self._summary: list[_Second] = []
        self._summary_start = 0
        self._corr: _Corrections | None = None
        win = _bands.frame_window(self.fs_hz)
        self._win = win.astype(np.float32)
        self._cumwin2 = np.concatenate([[0.0], np.cumsum(win**2)])
        self._nfft = _fast_length(self.fs_hz)  # 1-s frames zero-padded to 2^a 3^b samples
        self._wbands = _bands.band_weights(self.fs_hz, self._nfft)
        self._q = self.fs_hz // 4  # band frames start fs/4 before and after each second
        # samples [S - fs/4, S + fs + fs/4) of the pending second starting at S
        self._bx = np.zeros(self.fs_hz + 2 * self._q, dtype=np.float32)
        self._pending: _Pending | None = None  # measured second waiting for its bands
        self._work = np.zeros(self._nfft, dtype=np.float32)
        self._wbuf = np.zeros((1, self.fs_hz))

    # ------------------------------------------------------------------ public
    def process(self, block: npt.ArrayLike) -> list[IntervalReport]:
        """Feed samples (1-D, or 2-D frames x channels: the first channel is used).

        Returns the reports of every second (and summary) whose bands this block
        completed: second k is reported once the first fs/4 samples of second k + 1
        are in (the frames centred on second k reach 0.25 s past its end).
        """
        x = np.asarray(block)
        if x.dtype.kind not in "f":
            raise ValueError(
                f"samples must be floating point with full scale at +/-1.0; got {x.dtype} "
                "(scale integer PCM by 1/2^(bits-1) first)"
            )
        if x.ndim == 2:
            x = x[:, 0]
        elif x.ndim != 1:
            raise ValueError(f"block must be 1-D samples or 2-D frames x channels; got {x.ndim}-D")
        x = np.asarray(x, dtype=np.float64)
        reports: list[IntervalReport] = []
        i = 0
        n = len(x)
        while i < n:
            # the next event: fs/4 samples into a second (the previous second's bands
            # are complete: report it), or the end of a second (measure it)
            end = self._q if self._pending is not None else self.fs_hz
            take = min(end - self._fill, n - i)
            self._buf[self._fill : self._fill + take] = x[i : i + take]
            self._fill += take
            i += take
            if self._fill == end:
                if self._pending is not None:
                    reports.extend(self._complete(self._buf[: self._q], last=False))
                else:
                    self._fill = 0
                    self._measure(self._buf)
        return reports

    def flush(self) -> list[IntervalReport]:
        """Report the held-back and the partial second, and the partial summary (at shutdown).

        The last second's band weights run to the end of the stream (every frame
        starting before it is assigned to that second), so no sample's energy is lost.
        """
        reports: list[IntervalReport] = []
        n = self._fill
        self._fill = 0
        if self._pending is not None:
            reports.extend(self._complete(self._buf[:n], last=n == 0))
        if n:
            self._measure(self._buf[:n].copy())
        if self._pending is not None:
            reports.extend(self._complete(self._buf[:0], last=True))
        if self._summary:
            reports.append(self._summary_report())
        return reports

    # ----------------------------------------------------------------- internals
    def _make_kernel(self, m: int) -> FloatArray:
        i = np.arange(m, dtype=np.float64)
        return np.asarray(
            (1.0 - self._alpha)[None, :] * self._alpha[None, :] ** (m - 1 - i)[:, None],
            dtype=np.float64,
        )

    def _db(self, ms: float | FloatArray) -> Any:
        return np.maximum(
            energies_to_levels(np.maximum(ms, _MS_FLOOR)) + self.offset_db, self.floor_db
        )

    def _corrections(self) -> _Corrections:
        """Per-bin linear mic correction c_k, |A|^2 and |C|^2 at the bins, corrected band weights."""
        if self._corr is not None:
            return self._corr
        assert self.mic_response is not None
        fs = self.fs_hz
        f = np.arange(self._nfft // 2 + 1, dtype=np.float64) * fs / self._nfft
        c = levels_to_energies(self.mic_response.correction_db(f))
        fpos = np.maximum(f, 1e-3)
        wa = levels_to_energies(_weighting.analogue_weighting_db("A", fpos))
        wc = levels_to_energies(_weighting.analogue_weighting_db("C", fpos))
        wa[0] = wc[0] = 0.0
        wb = self._wbands * c.astype(np.float32)[None, :]
        self._corr = (c, wa, wc, wb)
        return self._corr

    def _band_power(
        self, starts: tuple[int, ...], base: int, end: int
    ) -> tuple[npt.NDArray[np.float32], float]:
        """Summed |rfft|^2 of the Vorbis-windowed 1-s frames starting at ``starts``.

        ``self._bx`` holds the samples from ``base - fs/4`` (``base`` being the
        interval's first sample); samples before the stream (< 0) and from ``end``
        on are zero. Also returns the sum of the squared window weights that fell
        on real samples (``fs`` for every full second, the first and a full last
        one included; the sample count for a partial last one): band mean squares
        are energy / that sum.
        """
        fs = self.fs_hz
        a = base - self._q
        bx, win, cw, work = self._bx, self._win, self._cumwin2, self._work
        power = np.zeros(self._nfft // 2 + 1, dtype=np.float32)
        weight = 0.0
        for s in starts:
            lo, hi = max(s, 0), min(s + fs, end)
            if hi <= lo:
                continue
            if lo == s and hi == s + fs:
                np.multiply(bx[s - a : s - a + fs], win, out=work[:fs])
            else:
                work[:fs] = 0.0
                np.multiply(bx[lo - a : hi - a], win[lo - s : hi - s], out=work[lo - s : hi - s])
            work[fs:] = 0.0  # FFT padding
            spec = _rfft_f32(work, self._r2c)
            power += spec.real**2 + spec.imag**2
            weight += float(cw[hi - s] - cw[lo - s])
        return power, weight

    def _weighted(self, x: FloatArray) -> tuple[float, float, FloatArray]:
        """C weighting then A weighting (IEC 61672-1 Annex E design), states carried.

        Returns the C-weighted mean square, the C-weighted peak and the A-weighted
        square e (a buffer reused by the next call).
        """
        n = len(x)
        sosfilt_inplace = self._sosfilt_inplace
        if sosfilt_inplace is not None:
            buf = self._wbuf if n == self.fs_hz else np.empty((1, n))
            buf[0] = x
            sosfilt_inplace(self._sos_c, buf, self._zi_c)
            ms_c = float(np.einsum("i,i->", buf[0], buf[0])) / n
            peak = _parabolic_peak(buf[0])
            sosfilt_inplace(self._sos_c2a, buf, self._zi_a)
            e = buf[0]
        else:
            from scipy import signal

            c, zc = signal.sosfilt(self._sos_c, x, zi=self._zi_c[0])
            a, za = signal.sosfilt(self._sos_c2a, c, zi=self._zi_a[0])
            self._zi_c[0] = zc
            self._zi_a[0] = za
            ms_c = float(np.einsum("i,i->", c, c)) / n
            peak = _parabolic_peak(np.asarray(c, dtype=np.float64))
            e = np.asarray(a, dtype=np.float64)
        np.multiply(e, e, out=e)
        return ms_c, peak, e

    def _recursion(self, s: FloatArray) -> FloatArray:
        """y[j] = a^M y[j-1] + s[j] over the grid, in closed form.

        y[j] = a^(M(j+1)) y0 + sum_{i<=j} a^(M(j-i)) s[i] = p[j] (y0 + cumsum(s / p)[j])
        with p[j] = a^(M(j+1)); over one second p spans at most e^(1 s / tau) = e^8
        (F), so no precision is lost.
        """
        steps = s.shape[0]
        p = self._pow_cache.get(steps)
        if p is None:
            j = np.arange(1, steps + 1, dtype=np.float64)[:, None]
            p = np.exp(j * self._m * np.log(self._alpha)[None, :])
            self._pow_cache[steps] = p
        return np.asarray(p * (self._y[None, :] + np.cumsum(s / p, axis=0)), dtype=np.float64)

    def _time_weighting(self, e: FloatArray) -> FloatArray:
        """Grid values (steps x 2, F and S) of the exponential averagers over e."""
        m = self._m
        n = len(e)
        full = (n // m) * m
        if not self._y_started and n:
            # start from the median 1-ms mean square of the first 125 ms: a stream that
            # starts inside a steady sound reads no spurious minimum, and a transient
            # early in the first 125 ms does not inflate the start value
            steps = min(self.fs_hz // 8, n) // m
            if steps:
                first = e[: steps * m].reshape(steps, m).mean(axis=1)
                self._y[:] = float(np.median(first))
            else:
                self._y[:] = float(np.mean(e))
            self._y_started = True
        parts: list[FloatArray] = []
        if full:
            s = e[:full].reshape(-1, m) @ self._kernel  # (steps, 2)
            y = self._recursion(s)
            self._y[:] = y[-1]
            parts.append(y)
        r = n - full
        if r:
            k = self._make_kernel(r)
            last = self._alpha**r * self._y + e[full:] @ k
            self._y[:] = last
            parts.append(last[None, :])
        return np.vstack(parts) if parts else np.zeros((0, 2))

    def _measure(self, x_in: FloatArray) -> None:
        """The broadband part of a (possibly partial) second; its bands wait in ``_pending``."""
        n = len(x_in)
        nonfinite = 0
        x = x_in
        # energies without BLAS (its threads stall on a busy node); einsum is single-threaded.
        # A finite sum of squares proves every sample finite (NaN/inf propagate).
        ms_z = float(np.einsum("i,i->", x, x)) / n
        if not math.isfinite(ms_z):
            finite = np.isfinite(x_in)
            nonfinite = int(n - np.count_nonzero(finite))
            x = np.where(finite, x_in, 0.0)
            ms_z = float(np.einsum("i,i->", x, x)) / n
        if x.max() >= OVERLOAD_THRESHOLD or x.min() <= -OVERLOAD_THRESHOLD:
            overload = int(np.count_nonzero(np.abs(x) >= OVERLOAD_THRESHOLD))
        else:
            overload = 0
        self._bx[self._q : self._q + n] = x  # before the weighting filters reuse their buffer
        ms_c, peak, e = self._weighted(x)
        ms_a = float(e.sum()) / n
        grid = self._time_weighting(e)
        yf = grid[:, 0]
        k = self._steps_per_laf
        self._pending = _Pending(
            start=self._pos,
            n=n,
            ms_a=ms_a,
            ms_c=ms_c,
            ms_z=ms_z,
            peak=peak,
            laf_max_db=_lg10(float(yf.max())),
            laf_min_db=_lg10(float(yf.min())),
            las_max_db=_lg10(float(grid[:, 1].max())),
            laf_samples_db=energies_to_levels(np.maximum(yf[k - 1 :: k], _MS_FLOOR)),
            overload=overload,
            nonfinite=nonfinite,
        )
        self._pos += n

    def _complete(self, ahead: FloatArray, *, last: bool) -> list[IntervalReport]:
        """Add the bands to the pending second and report it (and a completed summary).

        ``ahead`` are the samples after the second (fs/4 of them, fewer at the end
        of the stream); ``last`` marks the stream's last second.
        """
        p = self._pending
        assert p is not None
        self._pending = None
        q, n = self._q, p.n
        seg = self._bx[q + n : q + n + len(ahead)]
        seg[:] = ahead
        if not math.isfinite(float(seg.sum())):  # counted in the next second's report
            seg[~np.isfinite(seg)] = 0.0
        starts = _bands.frame_starts(self.fs_hz, p.start, n, first=p.start == 0, last=last)
        power, weight = self._band_power(starts, p.start, p.start + n + len(ahead))
        self._bx[:q] = self._bx[n : n + q].copy()  # the next second's history
        weight = max(weight, 1e-12)
        ms_a, ms_c, ms_z = p.ms_a, p.ms_c, p.ms_z
        if self.mic_response is None:
            ms_bands = (self._wbands @ power) / weight
            d_a = d_c = 0.0
        else:
            corr, wa, wc, wb = self._corrections()
            ms_bands = (wb @ power) / weight
            p64 = power.astype(np.float64)
            d_a = _ratio_db(p64 * wa, corr)
            d_c = _ratio_db(p64 * wc, corr)
            d_z = _ratio_db(p64, corr)
            ms_a *= level_to_energy(d_a)
            ms_c *= level_to_energy(d_c)
            ms_z *= level_to_energy(d_z)
        off_a = self.offset_db + d_a
        sec = _Second(
            n=n,
            ms_a=ms_a,
            ms_c=ms_c,
            ms_z=ms_z,
            ms_bands=np.asarray(ms_bands, dtype=np.float64),  # float32 products, float64 after
            laf_max_db=p.laf_max_db + off_a,
            laf_min_db=p.laf_min_db + off_a,
            las_max_db=p.las_max_db + off_a,
            lcpeak_db=20.0 * math.log10(max(p.peak, 1e-10)) + self.offset_db + d_c,
            laf_samples_db=p.laf_samples_db + off_a,
            overload=p.overload,
            nonfinite=p.nonfinite,
        )
        reports = [IntervalReport("second", p.start, n, self._fields(sec, [sec], False))]
        self._summary.append(sec)
        if len(self._summary) >= self.summary_seconds:
            reports.append(self._summary_report())
        return reports

    def _fields(self, agg: _Second, seconds: list[_Second], summary: bool) -> dict[str, Any]:
        fl = self.floor_db

        def lv(value: float) -> float:
            return round(max(float(value), fl), 2)

        laeq = lv(self._db(agg.ms_a))
        lceq = lv(self._db(agg.ms_c))
        lzeq = lv(self._db(agg.ms_z))
        out: dict[str, Any] = {
            "LAeq": laeq,
            "LCeq": lceq,
            "LZeq": lzeq,
            "LAFmax": lv(agg.laf_max_db),
            "LAFmin": lv(agg.laf_min_db),
            "LASmax": lv(agg.las_max_db),
            "LCpeak": lv(agg.lcpeak_db),
        }
        if summary:
            samples = np.maximum(agg.laf_samples_db, fl)
            if samples.size == 0:
                samples = np.array([agg.laf_max_db])
            for name, q in (("LA10", 90.0), ("LA50", 50.0), ("LA90", 10.0), ("LA95", 5.0)):
                out[name] = lv(float(np.percentile(samples, q)))
        band_db = np.round(self._db(agg.ms_bands), 2) + 0.0
        bands = dict(zip(self.nominals, band_db.tolist(), strict=True))
        out["bands"] = bands
        out["overload"] = agg.overload
        out["nonfinite"] = agg.nonfinite
        out["bass"] = round(lceq - laeq, 2) + 0.0
        out["impulsive"] = round(self._impulse_adjustment(agg, seconds), 2) + 0.0
        margin, band = tonality(bands)
        out["tonality"] = round(margin, 2) + 0.0 if math.isfinite(margin) else -99.0
        out["tonal_band"] = band
        return out

    def _impulse_adjustment(self, agg: _Second, seconds: list[_Second]) -> float:
        """DIN 45645-1 Taktmaximal KI = LAFTeq - LAeq (5-s clocks; 1 s for a 1-s report)."""
        laeq = float(self._db(agg.ms_a))
        if len(seconds) == 1:
            return max(agg.laf_max_db, self.floor_db) - laeq
        maxima: list[float] = []
        durations: list[int] = []
        for i in range(0, len(seconds), _KI_CLOCK_S):
            clock = seconds[i : i + _KI_CLOCK_S]
            maxima.append(max(max(s.laf_max_db for s in clock), self.floor_db))
            durations.append(sum(s.n for s in clock))
        return energy_mean_level(maxima, durations) - laeq

    def _summary_report(self) -> IntervalReport:
        seconds = self._summary
        n = sum(s.n for s in seconds)
        w = np.array([s.n for s in seconds], dtype=np.float64) / n
        agg = _Second(
            n=n,
            ms_a=float(np.dot(w, [s.ms_a for s in seconds])),
            ms_c=float(np.dot(w, [s.ms_c for s in seconds])),
            ms_z=float(np.dot(w, [s.ms_z for s in seconds])),
            ms_bands=np.asarray(w @ np.vstack([s.ms_bands for s in seconds]), dtype=np.float64),
            laf_max_db=max(s.laf_max_db for s in seconds),
            laf_min_db=min(s.laf_min_db for s in seconds),
            las_max_db=max(s.las_max_db for s in seconds),
            lcpeak_db=max(s.lcpeak_db for s in seconds),
            laf_samples_db=np.concatenate([s.laf_samples_db for s in seconds]),
            overload=sum(s.overload for s in seconds),
            nonfinite=sum(s.nonfinite for s in seconds),
        )
        report = IntervalReport("summary", self._summary_start, n, self._fields(agg, seconds, True))
        self._summary = []
        self._summary_start += n
        return report


def _ratio_db(weighted_power: FloatArray, corr: FloatArray) -> float:
    """10 lg(sum P W c / sum P W): the spectrally weighted correction in dB."""
    den = float(np.sum(weighted_power))
    if den <= 0.0:
        return 0.0
    return energy_to_level(float(np.einsum("i,i->", weighted_power, corr)) / den)
