"""One-third-octave bands of IEC 61260-1:2014, computed in the frequency domain.

Bands
-----
Base-10 system (IEC 61260-1:2014 5.2, formula (1)): G = 10^(3/10), exact mid-band
frequencies fm = 1000 Hz x G^(x/3) (formula (2), b = 3, x integer), band edges
fm x G^(-/+1/6) (formulas (4), (5)). Nominal frequencies as written in the
standard (``"31.5"``, ``"1000"``, ...) are taken from :data:`klankkast.sensor.wire.BAND_NOMINALS`:
x = -17 (20 Hz) to x = 13 (20 kHz). At a sample rate fs the bands whose upper
band-edge frequency lies below fs/2 are used (20 Hz-20 kHz at 48 kHz, 20 Hz-16 kHz
at 44.1 kHz, 20 Hz-12.5 kHz at 32 kHz, 20 Hz-6.3 kHz at 16 kHz).

Filter shape and method
-----------------------
Each band filter has the magnitude response of an analogue sixth-order
Butterworth band-pass (twelfth order overall, the shape of the common
``butter(6, ..., btype="bandpass")`` filter banks) with its -3 dB points on the
band edges::

    |H(f)|^2 = 1 / (1 + (Q (W - 1/W))^12),   W = f / fm,   Q = 1 / (G^(1/6) - G^(-1/6))

This is log-symmetric about fm and lies inside the class 1 acceptance limits of
IEC 61260-1:2014 Table 1 at every normalised frequency (0.00 dB at W = 1.0558,
0.09 dB at 1.0875, 3.0 dB at the band edge, 43 dB at 1.294, 92 dB at 1.88 and
more beyond, against limits of 0.7, 1.4, 1.2-5.3, >= 16.6, >= 40.5, >= 60 and
>= 70 dB). Its effective bandwidth exceeds the band width by
(pi/12) / sin(pi/12) = +0.05 dB (a third-order shape: +0.20 dB), so the power sum
of all bands equals the broadband level within 0.1 dB for sound between 20 Hz and
20 kHz. Weights below 1e-10 (-100 dB) are set to zero. The third-order shape
(:data:`ORDER_CLASSIC`) stays available through ``order=3``.

Band energies are computed from discrete Fourier transforms of 1-s frames
(zero-padded to 2^a 3^b points, about 1 Hz resolution) hopped by 0.5 s and
weighted by the power-complementary Vorbis window (:func:`frame_window`,
w[i]^2 + w[i + N/2]^2 = 1). By Parseval's theorem each frame's band energy is
sum_k |H(f_k)|^2 |X_k|^2 / N (one-sided, doubled except at 0 and fs/2). The
window's fast side-lobe decay keeps the effective response (|H|^2 smoothed by
the window's spectrum) inside the class 1 mask for tones at any frequency, also
in the 20 Hz band (checked by the unit tests with tones between bins). The
mid-band gain is 0 dB (0.02 dB low in the 20 Hz band, from the window).

Alignment: the band Leq of a second
-----------------------------------
Frames start 0.25 s before and 0.25 s after each second's start, so their
centres (t + 0.25 s and t + 0.75 s) fall inside the second, and
:class:`klankkast.sensor.dsp.Meter` assigns to each 1-s interval [t, t + 1 s) the
two frames whose centres lie in it (:func:`frame_starts`). The sum of their
squared windows, the weight c(s) each sample at time s gets in the interval's
band energy, is

* 1 from t + 0.25 s to t + 0.75 s,
* a power-complementary crossfade from 0 to 1 over [t - 0.25 s, t + 0.25 s] and
  from 1 to 0 over [t + 0.75 s, t + 1.25 s], equal to 1/2 at the boundaries,
* 0 elsewhere.

Consecutive intervals' weights sum to exactly 1 at every sample, so energy is
conserved (every sample counted once over the stream), and each interval's
weight is centred on it (integral 1 s, centroid t + 0.5 s). The *crossfade* is
0.5 s wide, centred on each boundary (+/- 0.25 s): only energy in it is shared
with the neighbouring second; a sound at least 0.25 s from the boundaries lands
wholly in its own second, and a second more than 0.25 s from any sound has no
band energy. The first interval of a stream also takes the frame that starts
0.75 s before the stream (it sees the first 0.25 s), and the last one, at
:meth:`~klankkast.sensor.dsp.Meter.flush`, every frame that starts before the
stream's end, so the weights are 1 up to both ends of the stream. The price is
0.25 s of latency: a second's report needs the first 0.25 s of the next second.
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np
import numpy.typing as npt

from .wire import BAND_NOMINALS

__all__ = [
    "BAND_INDEX",
    "BAND_NOMINALS",
    "ORDER",
    "ORDER_CLASSIC",
    "G",
    "Q",
    "band_edges_hz",
    "band_magnitude_sq",
    "band_mid_hz",
    "band_nominals",
    "band_weights",
    "frame_starts",
    "frame_window",
]

FloatArray = npt.NDArray[np.float64]

#: Octave frequency ratio, base-10 system (IEC 61260-1:2014 formula (1)).
G: Final = 10.0 ** (3.0 / 10.0)
#: Quality factor putting the -3 dB points of the Butterworth band-pass on the band edges.
Q: Final = 1.0 / (G ** (1.0 / 6.0) - G ** (-1.0 / 6.0))
#: Band index x of each nominal in :data:`BAND_NOMINALS` (20 Hz is x = -17).
BAND_INDEX: Final = tuple(range(-17, -17 + len(BAND_NOMINALS)))
#: Butterworth order of the band shape (sixth: twelfth-order band-pass).
ORDER: Final = 6
#: The third-order shape used before (sixth-order band-pass; +0.2 dB effective bandwidth).
ORDER_CLASSIC: Final = 3
_WEIGHT_FLOOR: Final = 1e-10


def band_mid_hz(x: int) -> float:
    """Exact mid-band frequency fm = 1000 G^(x/3) Hz (IEC 61260-1:2014 formula (2))."""
    return float(1000.0 * G ** (x / 3.0))


def band_edges_hz(x: int) -> tuple[float, float]:
    """Lower and upper band-edge frequencies fm G^(-/+1/6) (formulas (4), (5))."""
    fm = band_mid_hz(x)
    return fm * G ** (-1.0 / 6.0), fm * G ** (1.0 / 6.0)


def band_nominals(fs_hz: int) -> tuple[str, ...]:
    """Nominal frequencies of the bands measured at ``fs_hz``.

    The prefix of :data:`klankkast.sensor.wire.BAND_NOMINALS` whose upper band
    edges lie below the Nyquist frequency ``fs_hz / 2``.
    """
    out = [
        nom
        for nom, x in zip(BAND_NOMINALS, BAND_INDEX, strict=True)
        if band_edges_hz(x)[1] < fs_hz / 2.0
    ]
    return tuple(out)


def band_magnitude_sq(x: int, f_hz: npt.ArrayLike, order: int = ORDER) -> FloatArray:
    """Squared magnitude |H(f)|^2 of band ``x`` (Butterworth band-pass shape).

    Parameters
    ----------
    x : int
        Band index (0 is 1 kHz).
    f_hz : array_like
        Frequencies in Hz (0 allowed: the response there is 0).
    order : int
        Butterworth order n of the low-pass prototype: |H|^2 = 1 / (1 + (Q (W - 1/W))^(2n)).
    """
    f = np.asarray(f_hz, dtype=np.float64)
    out = np.zeros_like(f)
    pos = f > 0.0
    w = f[pos] / band_mid_hz(x)
    out[pos] = 1.0 / (1.0 + (Q * (w - 1.0 / w)) ** (2 * order))
    return out


def frame_window(n: int) -> FloatArray:
    """Power-complementary analysis window (Vorbis): w[i]^2 + w[i + n/2]^2 = 1.

    ``sin(pi/2 sin^2(pi (i + 1/2) / n))``; its side lobes fall off much faster
    than a sine window's, which keeps the low bands inside the stop-band mask.
    """
    i = np.arange(n, dtype=np.float64)
    return np.asarray(np.sin(np.pi / 2.0 * np.sin(np.pi * (i + 0.5) / n) ** 2), dtype=np.float64)


def frame_starts(fs_hz: int, start: int, n: int, *, first: bool, last: bool) -> tuple[int, ...]:
    """Start samples of the 1-s analysis frames assigned to the interval [start, start + n).

    Frames start at ``start - fs/4 + k fs/2`` (k integer), so two frame centres fall
    in each second. An interval gets the frames whose centre lies in it; the
    ``first`` interval of a stream also gets the frame centred 0.25 s before the
    stream, and the ``last`` one every frame that starts before the stream ends
    (``start + n``). See the module docstring for the resulting weights.
    """
    q, h = fs_hz // 4, fs_hz // 2
    starts = [start - q - h] if first else []
    if last:
        s = start - q
        while s < start + n:
            starts.append(s)
            s += h
    else:
        starts += [start - q, start + q]
    return tuple(starts)


@functools.lru_cache(maxsize=8)
def band_weights(fs_hz: int, n: int, order: int = ORDER) -> npt.NDArray[np.float32]:
    """Weights turning ``|rfft(frame)|^2`` of an ``n``-sample frame into band energies.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(band_nominals(fs_hz)), n // 2 + 1)``, float32 (half the memory
        traffic; the relative error of the sums stays below 1e-5);
        ``weights @ |X|^2`` is the energy (sum of squares) of each band-filtered
        frame (Parseval, one-sided: bins other than 0 and n/2 count twice).
    """
    nbins = n // 2 + 1
    f = np.arange(nbins, dtype=np.float64) * fs_hz / n
    scale = np.full(nbins, 2.0 / n)
    scale[0] = 1.0 / n
    if n % 2 == 0:
        scale[-1] = 1.0 / n
    nbands = len(band_nominals(fs_hz))
    w = np.empty((nbands, nbins), dtype=np.float32)
    for i in range(nbands):
        h2 = band_magnitude_sq(BAND_INDEX[i], f, order)
        h2[h2 < _WEIGHT_FLOOR] = 0.0
        w[i] = h2 * scale
    w.setflags(write=False)
    return w
