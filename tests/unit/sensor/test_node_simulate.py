"""Synthetic frames of ``simulate``: planted episodes, energy-consistent levels, times."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from klankkast.sensor import wire
from klankkast.sensor.simulate import (
    Episode,
    SyntheticNode,
    minute_summary,
    parse_episode,
    parse_start,
    synthetic_frames,
    virtual_nodes,
)

REF = Path(__file__).resolve().parents[2] / "data" / "reference" / "iec61672_weighting.csv"


def a_weighting_table() -> dict[str, float]:
    """IEC 61672-1:2013 Table 3 A weighting at the nominal frequencies."""
    with REF.open() as fh:
        return {row["nominal_hz"]: float(row["A_dB"]) for row in csv.DictReader(fh)}


def test_parse_episode() -> None:
    assert parse_episode("600:1200:72") == Episode(600.0, 1200.0, 72.0)
    for bad in ("600:1200", "a:b:c", "-1:10:70", "0:0:70", "0:10:500"):
        with pytest.raises(ValueError, match="--episode"):
            parse_episode(bad)


def test_parse_start_naive_is_amsterdam_across_dst() -> None:
    """Amsterdam is UTC+1 in winter and UTC+2 in summer (CET/CEST)."""
    assert parse_start("2026-01-15T22:00:00") == parse_start("2026-01-15T21:00:00Z")
    assert parse_start("2026-07-15T22:00:00") == parse_start("2026-07-15T20:00:00+00:00")
    assert parse_start("1970-01-01T00:00:00Z") == 0
    with pytest.raises(ValueError, match="--start"):
        parse_start("yesterday")


def test_virtual_node_ids() -> None:
    assert virtual_nodes("yard1", "n1", 3) == [
        ("yard1", "n1-001"),
        ("yard1", "n1-002"),
        ("yard1", "n1-003"),
    ]
    assert virtual_nodes("yard", "sim", 4, sites=2) == [
        ("yard-1", "sim-001"),
        ("yard-2", "sim-002"),
        ("yard-1", "sim-003"),
        ("yard-2", "sim-004"),
    ]


def test_episode_levels_and_quiet_background() -> None:
    start = parse_start("2026-11-27T23:00:00+01:00")
    ep = Episode(100, 50, 72.0)
    frames = [
        f
        for _, batch in synthetic_frames(
            [("yard1", "n1-001")],
            start_ms=start,
            duration_s=300,
            fs_hz=48000,
            episodes=[ep],
            summary_s=60,
            seed=3,
        )
        for kind, f in batch
        if kind == "second"
    ]
    assert len(frames) == 300
    assert [f["t"] - start for f in frames] == [i * 1000 for i in range(300)]
    for i, f in enumerate(frames):
        if 100 <= i < 150:
            assert abs(f["LAeq"] - 72.0) <= 0.5
            assert f["bass"] > 5  # music: bass-heavy
        else:
            assert 35.0 <= f["LAeq"] <= 42.0
        assert f["LCeq"] - f["LAeq"] == pytest.approx(f["bass"], abs=0.02)
        assert f["LAFmax"] >= f["LAeq"] >= f["LAFmin"]
        wire.encode("second", {**f, "seq": i})


def test_levels_follow_from_the_bands_with_the_iec_a_weighting() -> None:
    """LZeq is the energy sum of the bands; LAeq the energy sum of the bands plus the
    IEC 61672-1 Table 3 A weighting (table values are rounded to 0.1 dB, hence 0.1 dB)."""
    table = a_weighting_table()
    node = SyntheticNode("s", "n", fs_hz=48000, seed=5)
    for offset in (0.0, 1.0, 2.0):
        f = node.frame(0, offset)
        bands = f["bands"]
        lz = 10 * math.log10(sum(10 ** (v / 10) for v in bands.values()))
        la = 10 * math.log10(sum(10 ** ((v + table[k]) / 10) for k, v in bands.items()))
        assert lz == pytest.approx(f["LZeq"], abs=0.05)
        assert la == pytest.approx(f["LAeq"], abs=0.1)


def test_minute_summary_is_energy_mean() -> None:
    """30 s at 40 dB and 30 s at 70 dB: LAeq = 10 lg((10^4 + 10^7)/2) = 67.0 dB, not 55."""
    node = SyntheticNode("s", "n", seed=1)
    seconds = []
    for i in range(60):
        f = node.frame(i * 1000, 0.0)
        f["LAeq"] = 40.0 if i < 30 else 70.0
        seconds.append(f)
    m = minute_summary(seconds)
    assert m["LAeq"] == pytest.approx(10 * math.log10((1e4 + 1e7) / 2), abs=0.01)
    assert m["LAeq"] == pytest.approx(67.0, abs=0.02)
    assert m["dur_ms"] == 60_000 and m["t"] == 0
    assert m["LA90"] == pytest.approx(40.0) and m["LA10"] == pytest.approx(70.0)
    wire.encode("minute", {**m, "seq": 0})


def test_minutes_cover_their_seconds_and_a_partial_last_minute() -> None:
    kinds = [
        (k, f["dur_ms"])
        for _, batch in synthetic_frames(
            [("s", "n")], start_ms=0, duration_s=150, fs_hz=16000, episodes=[], summary_s=60, seed=1
        )
        for k, f in batch
        if k == "minute"
    ]
    assert kinds == [("minute", 60_000), ("minute", 60_000), ("minute", 30_000)]


def test_band_set_follows_the_sample_rate() -> None:
    f = SyntheticNode("s", "n", fs_hz=16000).frame(0, 0)
    assert max(float(k) for k in f["bands"]) < 8000
    assert np.isfinite(list(f["bands"].values())).all()
