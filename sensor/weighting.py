"""Frequency weightings A, C and Z of IEC 61672-1:2013 as streaming digital filters.

The analogue weightings are defined by IEC 61672-1:2013 Annex E (formulas E.1-E.8):

    C(f) = f4^2 f^2 / ((f^2 + f1^2)(f^2 + f4^2))
    A(f) = C(f) * f^2 / sqrt((f^2 + f2^2)(f^2 + f3^2))

with the pole frequencies f1 = 20.599 Hz, f2 = 107.65 Hz, f3 = 737.86 Hz and
f4 = 12194.2 Hz derived (not rounded) from fL = 10^1.5 Hz, fH = 10^3.9 Hz,
fA = 10^2.45 Hz and D^2 = 1/2 (E.2-E.8).

Digital design
--------------
The responses are split into a *high-pass* part (the poles at f1, f2, f3 and
all zeros at 0 Hz) and the *low-pass* part w4^2/(s + w4)^2. The high-pass part
is mapped with the bilinear transform: its poles are far below Nyquist, so the
frequency warping is negligible (< 0.001 dB). A plain bilinear map of the
low-pass part would lose 1.2 dB at 10 kHz and 6.2 dB at 16 kHz at 48 kHz
(Annex E's double pole at 12.2 kHz sits close to Nyquist). Instead the low-pass
part is a digital filter of order 2-3 whose magnitude is fitted by least
squares (in dB) to the analogue |w4^2/(jw + w4)^2| from 200 Hz to 16.5 kHz at
44.1 and 48 kHz (0.95 x Nyquist at 32 and 16 kHz), then made minimum phase by reflecting any pole or
zero outside the unit circle (which changes the magnitude only by a constant).
The cascade is normalised numerically to 0 dB at 1 kHz (not with the rounded
A1000/C1000 constants of E.4.2).

At 48 kHz the result tracks Annex E within 0.01 dB from 10 Hz to 16 kHz; at
44.1, 32 and 16 kHz it stays far inside the class 1 acceptance limits of
Table 3 at every Table 3 frequency below Nyquist.

Filters are second-order sections for :func:`scipy.signal.sosfilt`; streaming
state (``zi``) is carried by the caller (see :class:`klankkast.sensor.dsp.Meter`).
The C-weighted signal is computed first and the A-weighted signal from it by
one more section (A = C x s^2/((s + w2)(s + w3)) x const), so both cost four
sections per sample in total.
"""

from __future__ import annotations

import functools
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

# scipy.signal and scipy.optimize (about 50 MB resident together) are imported only
# inside the design functions: the node runs on the coefficients in _SHIPPED below.

__all__ = [
    "F1_HZ",
    "F2_HZ",
    "F3_HZ",
    "F4_HZ",
    "WeightingDesign",
    "analogue_weighting_db",
    "design",
    "design_fresh",
    "response_db",
    "shipped_rates",
]

FloatArray = npt.NDArray[np.float64]

# IEC 61672-1:2013 Annex E, E.2-E.8 (exact, derived from fL, fH, fA and D).
_FR: Final = 1000.0
_FL: Final = 10.0**1.5
_FH: Final = 10.0**3.9
_FA: Final = 10.0**2.45
_D: Final = float(np.sqrt(0.5))  # D^2 = 1/2
_B: Final = (1.0 / (1.0 - _D)) * (_FR**2 + _FL**2 * _FH**2 / _FR**2 - _D * (_FL**2 + _FH**2))
_C: Final = _FL**2 * _FH**2
F1_HZ: Final = float(((-_B - np.sqrt(_B**2 - 4.0 * _C)) / 2.0) ** 0.5)
F4_HZ: Final = float(((-_B + np.sqrt(_B**2 - 4.0 * _C)) / 2.0) ** 0.5)
F2_HZ: Final = float((3.0 - np.sqrt(5.0)) / 2.0 * _FA)
F3_HZ: Final = float((3.0 + np.sqrt(5.0)) / 2.0 * _FA)


def analogue_weighting_db(kind: Literal["A", "C", "Z"], f_hz: npt.ArrayLike) -> FloatArray:
    """Analogue A/C/Z weighting of IEC 61672-1:2013 Annex E, normalised to 0 dB at 1 kHz.

    Parameters
    ----------
    kind : {"A", "C", "Z"}
        Frequency weighting.
    f_hz : array_like
        Frequencies in Hz (> 0).

    Returns
    -------
    numpy.ndarray
        Weighting in dB (formulas E.1 and E.6, normalised numerically at 1 kHz).
    """
    f = np.asarray(f_hz, dtype=np.float64)
    if kind == "Z":
        return np.zeros_like(f)

    def raw(x: FloatArray) -> FloatArray:
        c = (F4_HZ**2 * x**2) / ((x**2 + F1_HZ**2) * (x**2 + F4_HZ**2))
        if kind == "C":
            return np.asarray(20.0 * np.log10(c), dtype=np.float64)
        a = c * x**2 / np.sqrt((x**2 + F2_HZ**2) * (x**2 + F3_HZ**2))
        return np.asarray(20.0 * np.log10(a), dtype=np.float64)

    return np.asarray(raw(f) - raw(np.array([_FR]))[0], dtype=np.float64)


class WeightingDesign:
    """Second-order sections of the C weighting and of the C-to-A stage at one rate.

    Attributes
    ----------
    fs_hz : int
        Sample rate.
    sos_c : numpy.ndarray
        Sections mapping the input to the C-weighted signal (0 dB at 1 kHz).
    sos_c_to_a : numpy.ndarray
        Section(s) mapping the C-weighted signal to the A-weighted one (0 dB at 1 kHz).
    """

    def __init__(self, fs_hz: int, sos_c: FloatArray, sos_c_to_a: FloatArray) -> None:
        self.fs_hz = fs_hz
        self.sos_c = sos_c
        self.sos_c_to_a = sos_c_to_a

    @property
    def sos_a(self) -> FloatArray:
        """Sections mapping the input directly to the A-weighted signal."""
        return np.vstack([self.sos_c, self.sos_c_to_a])


def _lowpass_target_db(f_hz: FloatArray) -> FloatArray:
    return np.asarray(-20.0 * np.log10(1.0 + (f_hz / F4_HZ) ** 2), dtype=np.float64)


def _reflect_inside(roots: npt.NDArray[np.complex128]) -> tuple[npt.NDArray[np.complex128], float]:
    """Reflect roots outside the unit circle to 1/conj(r); return them and the gain factor."""
    gain = 1.0
    out = roots.copy()
    for i, r in enumerate(roots):
        if abs(r) > 1.0:
            out[i] = 1.0 / np.conj(r)
            gain *= abs(r)
    return out, gain


def _fit_lowpass(fs_hz: int) -> tuple[FloatArray, float]:
    """Fit a minimum-phase digital low-pass to |w4^2/(jw + w4)^2|; return (sos, max error dB)."""
    from scipy import optimize, signal

    nyq = fs_hz / 2.0
    f_hi = min(16500.0, 0.9 * nyq) if fs_hz >= 44100 else 0.95 * nyq
    f = np.geomspace(200.0, f_hi, 400)
    w = 2.0 * np.pi * f / fs_hz
    target = _lowpass_target_db(f)
    w4 = 2.0 * np.pi * F4_HZ
    b0, a0 = signal.bilinear([w4**2], [1.0, 2.0 * w4, w4**2], fs_hz)
    best: tuple[FloatArray, float] | None = None
    for order in (2, 3):
        b_init = np.r_[b0, np.zeros(order - 2)]
        a_init = np.r_[a0, np.zeros(order - 2)]

        def resid(p: FloatArray, n: int = order) -> FloatArray:
            _, h = signal.freqz(p[: n + 1], np.r_[1.0, p[n + 1 :]], worN=w)
            return np.asarray(20.0 * np.log10(np.abs(h) + 1e-300) - target, dtype=np.float64)

        res = optimize.least_squares(
            resid, np.r_[b_init, a_init[1:]], xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=4000
        )
        b = res.x[: order + 1]
        a = np.r_[1.0, res.x[order + 1 :]]
        z, p, k = signal.tf2zpk(b, a)
        z, gz = _reflect_inside(np.asarray(z, dtype=np.complex128))
        p, gp = _reflect_inside(np.asarray(p, dtype=np.complex128))
        sos = np.asarray(signal.zpk2sos(z, p, k * gz / gp), dtype=np.float64)
        # re-normalise the low-pass to exactly the target at 200 Hz-ish (the fit's constant term)
        _, h = signal.sosfreqz(sos, worN=w)
        err = 20.0 * np.log10(np.abs(h)) - target
        sos[0, :3] *= 10.0 ** (-np.mean(err) / 20.0)
        _, h = signal.sosfreqz(sos, worN=w)
        max_err = float(np.max(np.abs(20.0 * np.log10(np.abs(h)) - target)))
        if best is None or max_err < best[1]:
            best = (sos, max_err)
        if max_err < 0.01:
            break
    assert best is not None
    return best


def _bilinear_sos(zeros_hz: int, poles_hz: list[float], fs_hz: int) -> FloatArray:
    """Bilinear map of s^zeros / prod(s + 2 pi p) to sections."""
    from scipy import signal

    z_s = np.zeros(zeros_hz)
    p_s = -2.0 * np.pi * np.asarray(poles_hz, dtype=np.float64)
    z_d, p_d, k_d = signal.bilinear_zpk(z_s, p_s, 1.0, fs_hz)
    return np.asarray(signal.zpk2sos(z_d, p_d, k_d), dtype=np.float64)


def _normalise_at_1k(sos: FloatArray, fs_hz: int) -> FloatArray:
    from scipy import signal

    _, h = signal.sosfreqz(sos, worN=[2.0 * np.pi * _FR / fs_hz])
    out = sos.copy()
    out[0, :3] /= float(np.abs(h[0]))
    return out


def design_fresh(fs_hz: int) -> WeightingDesign:
    """Design the C and C-to-A sections for ``fs_hz`` from the Annex E formulas.

    The low-pass part is a least-squares fit (scipy.optimize); this takes about a
    second and needs scipy.signal and scipy.optimize in memory, so :func:`design`
    uses the coefficients shipped in this module for the node's rates.

    Parameters
    ----------
    fs_hz : int
        Sample rate in Hz (any rate >= 8000 works).

    Returns
    -------
    WeightingDesign
        Sections normalised to 0 dB at 1 kHz (IEC 61672-1:2013 Annex E).
    """
    lowpass, _ = _fit_lowpass(fs_hz)
    hp_c = _bilinear_sos(2, [F1_HZ, F1_HZ], fs_hz)
    sos_c = _normalise_at_1k(np.vstack([hp_c, lowpass]), fs_hz)
    hp_a = _bilinear_sos(2, [F2_HZ, F3_HZ], fs_hz)
    sos_c_to_a = _normalise_at_1k(hp_a, fs_hz)
    return WeightingDesign(fs_hz, sos_c, sos_c_to_a)


def shipped_rates() -> tuple[int, ...]:
    """Sample rates whose sections are shipped precomputed (see :func:`design`)."""
    return tuple(sorted(_SHIPPED))


@functools.lru_cache(maxsize=8)
def design(fs_hz: int) -> WeightingDesign:
    """The C and C-to-A sections for ``fs_hz`` (cached per rate).

    For the node's rates (:func:`shipped_rates`) these are the output of
    :func:`design_fresh` stored in this module (regenerate with
    ``python -m klankkast.sensor.weighting``; a unit test checks that they equal a
    fresh design), so a running node never imports scipy.signal or scipy.optimize.
    Other rates are designed on first use.

    Parameters
    ----------
    fs_hz : int
        Sample rate in Hz (any rate >= 8000 works; the node supports 16000,
        32000, 44100 and 48000).

    Returns
    -------
    WeightingDesign
        Sections normalised to 0 dB at 1 kHz (IEC 61672-1:2013 Annex E).
    """
    shipped = _SHIPPED.get(int(fs_hz))
    if shipped is None:
        return design_fresh(fs_hz)
    sos_c, sos_c_to_a = shipped
    return WeightingDesign(
        int(fs_hz),
        np.array(sos_c, dtype=np.float64),
        np.array(sos_c_to_a, dtype=np.float64),
    )


def response_db(kind: Literal["A", "C", "Z"], fs_hz: int, f_hz: npt.ArrayLike) -> FloatArray:
    """Magnitude response in dB of the digital weighting at ``fs_hz``.

    Parameters
    ----------
    kind : {"A", "C", "Z"}
        Frequency weighting.
    fs_hz : int
        Sample rate.
    f_hz : array_like
        Frequencies in Hz (below Nyquist).
    """
    f = np.asarray(f_hz, dtype=np.float64)
    if kind == "Z":
        return np.zeros_like(f)
    from scipy import signal

    d = design(fs_hz)
    sos = d.sos_c if kind == "C" else d.sos_a
    _, h = signal.sosfreqz(sos, worN=2.0 * np.pi * f / fs_hz)
    return np.asarray(20.0 * np.log10(np.maximum(np.abs(h), 1e-300)), dtype=np.float64)


def _table_source(rates: tuple[int, ...] = (16000, 32000, 44100, 48000)) -> str:
    """Python source of the ``_SHIPPED`` table: :func:`design_fresh` at ``rates``.

    ``repr`` of a float round-trips exactly, so the shipped sections are bit-for-bit
    the fresh design on the machine that generated them.
    """

    def rows(sos: FloatArray) -> str:
        return "".join(
            "            (" + ", ".join(repr(float(v)) for v in row) + "),\n" for row in sos
        )

    out = ["_SHIPPED: Final[dict[int, tuple[_Sections, _Sections]]] = {\n"]
    for fs in rates:
        d = design_fresh(fs)
        out.append(f"    {fs}: (\n        (\n{rows(d.sos_c)}        ),\n")
        out.append(f"        (\n{rows(d.sos_c_to_a)}        ),\n    ),\n")
    out.append("}\n")
    return "".join(out)


_Row = tuple[float, float, float, float, float, float]
_Sections = tuple[_Row, ...]

# Generated by ``python -m klankkast.sensor.weighting`` (design_fresh at each rate);
# tests/unit/sensor/test_sensor_weighting.py checks them against a fresh design.
_SHIPPED: Final[dict[int, tuple[_Sections, _Sections]]] = {
    16000: (
        (
            (
                0.9990380751377028,
                -1.9980761502754056,
                0.9990380751377028,
                1.0,
                -1.9838867572230894,
                0.9839516663712863,
            ),
            (0.8800511757327291, 0.08986746278859369, 0.0, 1.0, 0.007722810601873966, 0.0),
            (
                1.0,
                1.1831380490732528,
                0.32032462554713814,
                1.0,
                1.127682944008221,
                0.28188717582977524,
            ),
        ),
        (
            (
                1.0641711315188525,
                -2.128342263037705,
                1.0641711315188525,
                1.0,
                -1.7055096339957394,
                0.715987575515642,
            ),
        ),
    ),
    32000: (
        (
            (
                1.0030690564261546,
                -2.0061381128523093,
                1.0030690564261546,
                1.0,
                -1.9919271185742544,
                0.991943411427883,
            ),
            (0.6684515569124776, 0.15797048067062533, 0.0, 1.0, -0.14035108222216225, 0.0),
            (
                1.0,
                1.4549376624513468,
                0.5115195116099976,
                1.0,
                1.3918521716714463,
                0.45978567821767824,
            ),
        ),
        (
            (
                1.1519698513854737,
                -2.3039397027709474,
                1.1519698513854737,
                1.0,
                -1.843990656240683,
                0.8468163241671728,
            ),
        ),
    ),
    44100: (
        (
            (
                1.0042014007938869,
                -2.0084028015877737,
                1.0042014007938869,
                1.0,
                -1.994138881249958,
                0.9941474694282086,
            ),
            (
                0.5350648930989935,
                -0.01735273622460743,
                0.0,
                1.0,
                -0.36342166772166384,
                0.03369597425261291,
            ),
            (1.0, 0.7632304142330144, 0.1193569232085353, 1.0, 0.45408954123923906, 0.0),
        ),
        (
            (
                1.1777523300094965,
                -2.355504660018993,
                1.1777523300094965,
                1.0,
                -1.8849012175245057,
                0.8864214718943055,
            ),
        ),
    ),
    48000: (
        (
            (
                1.0044474518190634,
                -2.0088949036381267,
                1.0044474518190634,
                1.0,
                -1.9946144559779777,
                0.994621706999081,
            ),
            (
                0.5035237179682444,
                0.08936793928155559,
                -0.026649550179481476,
                1.0,
                -0.5025736598628058,
                0.06883238428772646,
            ),
        ),
        (
            (
                1.1833958561704183,
                -2.3667917123408366,
                1.1833958561704183,
                1.0,
                -1.893870494810514,
                0.8951597691671946,
            ),
        ),
    ),
}


if __name__ == "__main__":  # pragma: no cover - regenerates the table above
    print(_table_source(), end="")
