"""The decibel module: levels and energies combined by energy (IEC 61672-1 §3.9,
ISO 1996-1 §3.1.7, ISO 1996-2's residual correction). Expected values from physics,
derived in each docstring; compared in dB to 0.01 dB unless the identity is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from klankkast.decibel import (
    energies_to_levels,
    energy_mean_level,
    energy_subtract_level,
    energy_sum_level,
    energy_to_level,
    finite_energy_mean_level,
    level_to_energy,
    levels_to_energies,
)

NAN = math.nan


def test_level_and_energy_are_inverse() -> None:
    """60 dB is an energy of 10^6; 0 dB is 1; -10 dB is 0.1."""
    assert level_to_energy(60.0) == pytest.approx(1e6)
    assert level_to_energy(0.0) == 1.0
    assert energy_to_level(0.1) == pytest.approx(-10.0)
    for x in (-20.0, 0.0, 37.5, 94.0, 140.0):
        assert energy_to_level(level_to_energy(x)) == pytest.approx(x, abs=1e-9)
    arr = np.array([30.0, 60.0, NAN])
    back = energies_to_levels(levels_to_energies(arr))
    assert back[:2] == pytest.approx([30.0, 60.0], abs=1e-9) and math.isnan(back[2])
    assert energies_to_levels([0.0])[0] == -math.inf  # no energy: -inf dB, no warning


def test_two_equal_levels_sum_to_plus_3_01_and_mean_to_the_same() -> None:
    """Two independent 60-dB sources: 10·log10(2·10^6) = 60 + 10·log10(2) = 63.01 dB; their
    energy mean is 60 dB. Ten equal sources: +10 dB."""
    assert float(energy_sum_level([60.0, 60.0])) == pytest.approx(63.01, abs=0.01)
    assert float(energy_sum_level([50.0] * 10)) == pytest.approx(60.0, abs=1e-9)
    assert energy_mean_level([60.0, 60.0]) == pytest.approx(60.0, abs=1e-9)
    assert finite_energy_mean_level([60.0, 60.0]) == pytest.approx(60.0, abs=1e-9)


def test_energy_sum_along_an_axis() -> None:
    """Row-wise band sums: rows (60, 60) and (70, 50): 63.01 dB and 10·log10(10^7 + 10^5)
    = 70.04 dB."""
    out = energy_sum_level(np.array([[60.0, 60.0], [70.0, 50.0]]), axis=1)
    assert out == pytest.approx([63.01, 70.04], abs=0.01)


def test_energy_mean_of_40_and_70_is_67_not_55() -> None:
    """30 s at 40 dB + 30 s at 70 dB: 10·log10((10^4 + 10^7)/2) = 66.99 dB, not 55."""
    assert energy_mean_level([40.0, 70.0]) == pytest.approx(66.99, abs=0.01)
    assert finite_energy_mean_level([40.0] * 30 + [70.0] * 30) == pytest.approx(66.99, abs=0.01)


def test_energy_mean_weighted_by_durations() -> None:
    """50 s at 40 dB + 10 s at 70 dB: 10·log10((50·10^4 + 10·10^7)/60) = 62.24 dB; the
    same as the unweighted mean of the 60 one-second levels."""
    expected = 10 * math.log10((50 * 1e4 + 10 * 1e7) / 60)
    assert expected == pytest.approx(62.24, abs=0.01)
    assert energy_mean_level([40.0, 70.0], [50, 10]) == pytest.approx(expected, abs=1e-9)
    assert energy_mean_level([40.0] * 50 + [70.0] * 10) == pytest.approx(expected, abs=1e-9)


def test_the_two_means_differ_on_missing_data() -> None:
    """A missing level (NaN) makes the plain mean NaN; the finite mean leaves it out (two
    nodes at 50 and 60 dB, a third silent: 10·log10((10^5 + 10^6)/2) = 57.40 dB)."""
    assert math.isnan(energy_mean_level([50.0, 60.0, NAN]))
    assert finite_energy_mean_level([50.0, 60.0, NAN, math.inf]) == pytest.approx(57.40, abs=0.01)
    assert math.isnan(finite_energy_mean_level([]))
    assert math.isnan(finite_energy_mean_level(np.array([NAN])))


def test_energy_subtract_is_iso_1996_2_residual_correction() -> None:
    """Specific = total ⊖ residual. 60 on 57: 10·log10(10^6 − 10^5.7) = 56.98 dB (57 dB is
    within 0.01 dB of half of 60 dB's energy, 56.99); 70 on 60: 69.54 dB; equal: no energy
    left (-inf); a residual above the total or a NaN: NaN."""
    out = energy_subtract_level([60.0, 70.0, 50.0, 50.0, NAN], [57.0, 60.0, 50.0, 55.0, 40.0])
    assert out[0] == pytest.approx(56.98, abs=0.01)
    assert out[1] == pytest.approx(69.54, abs=0.01)
    assert out[2] == -math.inf
    assert math.isnan(out[3]) and math.isnan(out[4])
    assert float(energy_subtract_level(60.0, 57.0)) == pytest.approx(56.98, abs=0.01)


def test_subtract_undoes_sum() -> None:
    """(a ⊕ b) ⊖ b = a for any a, b: 45 dB under a 52 dB residual comes back as 45.0."""
    total = float(energy_sum_level([45.0, 52.0]))
    assert float(energy_subtract_level(total, 52.0)) == pytest.approx(45.0, abs=1e-9)
