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
Each band filter has the magnitude response of an analogue third-order
Butterworth band-pass (sixth order overall) with its -3 dB points on the band
edges::

    |H(f)|^2 = 1 / (1 + (Q (W - 1/W))^6),   W = f / fm,   Q = 1 / (G^(1/6) - G^(-1/6))

This is log-symmetric about fm and lies inside the class 1 acceptance limits of
IEC 61260-1:2014 Table 1 at every normalised frequency (0.05 dB at W = 1.0558,
0.6 dB at 1.0875, 3.0 dB at the band edge, 21 dB at 1.294, 46 dB at 1.88,
64 dB at 3.05 and 81 dB at 5.39, against limits of 0.7, 1.4, 1.2-5.3, >= 16.6,
>= 40.5, >= 60 and >= 70 dB). Weights below 1e-10 (-100 dB) are set to zero.

Band energies are computed from discrete Fourier transforms of 1-s frames
(zero-padded to 2^a 3^b points, about 1 Hz resolution) with 50 % overlap, weighted by the power-complementary Vorbis
window (:func:`frame_window`): every sample's energy is counted exactly once
over consecutive frames, and by Parseval's theorem each frame's band energy is
sum_k |H(f_k)|^2 |X_k|^2 / N (one-sided, doubled except at 0 and fs/2). The
window's fast side-lobe decay keeps the effective response (|H|^2 smoothed by
the window's spectrum) inside the class 1 mask for tones at any frequency, also
in the 20 Hz band (checked by the unit tests with tones between bins). The
mid-band gain is 0 dB (0.02 dB low in the 20 Hz band, from the window).
:class:`klankkast.sensor.dsp.Meter` assigns to each 1-s interval the two frames
starting 0.5 s before and at the interval start.
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
    "G",
    "Q",
    "band_edges_hz",
    "band_magnitude_sq",
    "band_mid_hz",
    "band_nominals",
    "band_weights",
    "frame_window",
]

FloatArray = npt.NDArray[np.float64]

#: Octave frequency ratio, base-10 system (IEC 61260-1:2014 formula (1)).
G: Final = 10.0 ** (3.0 / 10.0)
#: Quality factor putting the -3 dB points of the Butterworth band-pass on the band edges.
Q: Final = 1.0 / (G ** (1.0 / 6.0) - G ** (-1.0 / 6.0))
#: Band index x of each nominal in :data:`BAND_NOMINALS` (20 Hz is x = -17).
BAND_INDEX: Final = tuple(range(-17, -17 + len(BAND_NOMINALS)))
_ORDER: Final = 3
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


def band_magnitude_sq(x: int, f_hz: npt.ArrayLike) -> FloatArray:
    """Squared magnitude |H(f)|^2 of band ``x`` (third-order Butterworth band-pass shape).

    Parameters
    ----------
    x : int
        Band index (0 is 1 kHz).
    f_hz : array_like
        Frequencies in Hz (0 allowed: the response there is 0).
    """
    f = np.asarray(f_hz, dtype=np.float64)
    out = np.zeros_like(f)
    pos = f > 0.0
    w = f[pos] / band_mid_hz(x)
    out[pos] = 1.0 / (1.0 + (Q * (w - 1.0 / w)) ** (2 * _ORDER))
    return out


def frame_window(n: int) -> FloatArray:
    """Power-complementary analysis window (Vorbis): w[i]^2 + w[i + n/2]^2 = 1.

    ``sin(pi/2 sin^2(pi (i + 1/2) / n))``; its side lobes fall off much faster
    than a sine window's, which keeps the low bands inside the stop-band mask.
    """
    i = np.arange(n, dtype=np.float64)
    return np.asarray(np.sin(np.pi / 2.0 * np.sin(np.pi * (i + 0.5) / n) ** 2), dtype=np.float64)


@functools.lru_cache(maxsize=8)
def band_weights(fs_hz: int, n: int) -> npt.NDArray[np.float32]:
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
        h2 = band_magnitude_sq(BAND_INDEX[i], f)
        h2[h2 < _WEIGHT_FLOOR] = 0.0
        w[i] = h2 * scale
    w.setflags(write=False)
    return w
