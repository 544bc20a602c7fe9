"""Episode rules: energy averaging, periods across DST, planted episodes, batch == streaming."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from klankkast.analysis.episodes import (
    DAY,
    EVENING,
    NIGHT,
    SiteGrid,
    StreamingDetector,
    detect,
    duration_correction_db,
    period_of,
    rolling_energy_mean,
)
from klankkast.analysis.rules import default_rules, legacy_rules
from klankkast.analysis.timeutil import parse_time_ms
from klankkast.decibel import finite_energy_mean_level

MIN_MS = 60_000


def _grid(laeq, t0_ms, step_s=60, la90=None, lceq=None, lafmax=None, site="yard1"):
    laeq = np.asarray(laeq, dtype=float)
    return SiteGrid(
        site=site,
        t0_ms=t0_ms,
        step_s=step_s,
        laeq_db=laeq,
        lceq_db=laeq + 6.0 if lceq is None else np.asarray(lceq, dtype=float),
        lafmax_db=laeq + 10.0 if lafmax is None else np.asarray(lafmax, dtype=float),
        la90_db=np.full(laeq.size, np.nan) if la90 is None else np.asarray(la90, dtype=float),
    )


def test_energy_mean_half_hour_40_and_70_is_67():
    """30 min at 40 dB + 30 min at 70 dB: 10·log10((10^4 + 10^7)/2) = 66.99 dB, not 55."""
    levels = np.r_[np.full(30, 40.0), np.full(30, 70.0)]
    expected = 10 * math.log10((1e4 + 1e7) / 2)
    assert finite_energy_mean_level(levels) == pytest.approx(expected, abs=1e-9)
    assert round(finite_energy_mean_level(levels), 1) == 67.0


def test_rolling_energy_mean_trailing_window_and_coverage():
    """Window of 3: out[i] is the energy mean of L[i-2..i]; NaN below the minimum count."""
    x = np.array([40.0, 70.0, np.nan, 40.0, 40.0])
    out = rolling_energy_mean(x, 3, 2)
    assert math.isnan(rolling_energy_mean(x, 3, 2)[0])  # one value < minimum 2
    assert out[1] == pytest.approx(10 * math.log10((1e4 + 1e7) / 2))
    assert out[2] == pytest.approx(10 * math.log10((1e4 + 1e7) / 2))
    assert out[3] == pytest.approx(10 * math.log10((1e7 + 1e4) / 2))
    assert out[4] == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("utc", "period"),
    [
        ("2026-06-01T04:59:00Z", NIGHT),  # 06:59 CEST
        ("2026-06-01T05:00:00Z", DAY),  # 07:00 CEST
        ("2026-06-01T16:59:00Z", DAY),  # 18:59 CEST
        ("2026-06-01T17:00:00Z", EVENING),  # 19:00 CEST
        ("2026-06-01T21:00:00Z", NIGHT),  # 23:00 CEST
        ("2026-01-15T05:59:00Z", NIGHT),  # 06:59 CET
        ("2026-01-15T06:00:00Z", DAY),  # 07:00 CET
        ("2026-01-15T22:00:00Z", NIGHT),  # 23:00 CET
        ("2026-03-29T00:59:00Z", NIGHT),  # 01:59 CET, just before spring forward
        ("2026-03-29T05:00:00Z", DAY),  # 07:00 CEST on the change day
        ("2026-10-25T06:00:00Z", DAY),  # 07:00 CET on the autumn change day
    ],
)
def test_period_of_local_amsterdam_hours(utc, period):
    t = np.array([parse_time_ms(utc)], dtype=np.int64)
    assert period_of(t, default_rules())[0] == period


def test_duration_correction_table_csp_r1336_7():
    d = np.array([30, 60, 61, 300, 301, 1200, 1201, 7200, 7201, 14400, 14401, 28800, 28801])
    assert duration_correction_db(d).tolist() == [6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0]


def _quiet_day_with(plants, level_db=35.0, hours=24, t0="2026-06-01T00:00:00Z"):
    """Minute grid at a constant background with planted (start_min, minutes, dB) blocks."""
    t0_ms = parse_time_ms(t0)
    laeq = np.full(hours * 60, level_db)
    for start, minutes, db in plants:
        laeq[start : start + minutes] = db
    la90 = np.where(laeq > level_db, level_db + 1.0, level_db - 2.0)
    return t0_ms, laeq, la90


def test_planted_loud_episodes_found_with_exact_bounds():
    """65 dB blocks on 35 dB exceed every period limit; own-level trimming gives exact bounds.

    Rule: absolute (65 > 50/45/40) and emergence (LA90 background 33 dB, 65 - 33 > 5).
    """
    plants = [(60, 30, 65.0), (600, 20, 65.0), (1300, 45, 65.0)]  # 01:00, 10:00, 21:40 UTC
    t0_ms, laeq, la90 = _quiet_day_with(plants)
    found = detect(_grid(laeq, t0_ms, la90=la90), default_rules())
    assert [(e.start_ms, e.end_ms) for e in found] == [
        (t0_ms + s * MIN_MS, t0_ms + (s + m) * MIN_MS) for s, m, _ in plants
    ]
    for e in found:
        assert e.laeq_db == pytest.approx(65.0)
        assert e.lafmax_db == pytest.approx(75.0)
        assert e.bass_db == pytest.approx(6.0)
        assert e.rule == "absolute+emergence"
    # 01:00 UTC = 03:00 CEST night; 10:00 UTC = 12:00 day; 21:40 UTC = 23:40 night
    assert [e.period for e in found] == ["night", "day", "night"]


def test_short_and_quiet_blocks_are_not_episodes():
    """A 1-min block (< 120 s minimum) and a block at the background are not episodes."""
    t0_ms, laeq, la90 = _quiet_day_with([(100, 1, 70.0), (700, 60, 35.0)])
    assert detect(_grid(laeq, t0_ms, la90=la90), default_rules()) == []


def test_gap_merge_joins_blocks_closer_than_gap():
    """Two 10-min blocks 3 min apart (< 300 s) are one episode; 10 min apart are two."""
    t0_ms, laeq, la90 = _quiet_day_with([(600, 10, 65.0), (613, 10, 65.0)])
    found = detect(_grid(laeq, t0_ms, la90=la90), default_rules())
    assert [(e.start_ms, e.end_ms) for e in found] == [(t0_ms + 600 * MIN_MS, t0_ms + 623 * MIN_MS)]
    t0_ms, laeq, la90 = _quiet_day_with([(600, 10, 65.0), (620, 10, 65.0)])
    assert len(detect(_grid(laeq, t0_ms, la90=la90), default_rules())) == 2


def test_emergence_fires_below_absolute_limit_by_night():
    """Night: 39 dB on a 30 dB background stays under the 40 dB limit but emerges by 9 dB > 3."""
    t0_ms, laeq, la90 = _quiet_day_with([(60, 30, 39.0)], level_db=30.0)
    found = detect(_grid(laeq, t0_ms, la90=la90), default_rules())
    assert len(found) == 1
    assert found[0].rule == "emergence"
    rules = dataclasses.replace(default_rules(), emergence_enabled=False)
    assert detect(_grid(laeq, t0_ms, la90=la90), rules) == []


def _random_grid(seed, step_s=60, n=3000, with_la90=True):
    rng = np.random.default_rng(seed)
    laeq = rng.normal(38.0, 3.0, n)
    for _ in range(12):
        s = int(rng.integers(0, n - 60))
        laeq[s : s + int(rng.integers(1, 50))] = rng.normal(52.0, 6.0)
    laeq[rng.random(n) < 0.03] = np.nan
    gap = int(rng.integers(0, n - 200))
    laeq[gap : gap + int(rng.integers(5, 150))] = np.nan
    la90 = laeq - rng.uniform(2.0, 8.0, n) if with_la90 else np.full(n, np.nan)
    lceq = laeq + rng.uniform(0.0, 12.0, n)
    lafmax = laeq + rng.uniform(3.0, 15.0, n)
    t0 = parse_time_ms("2026-10-24T18:00:00Z")  # spans the autumn DST change
    return _grid(laeq, t0, step_s=step_s, la90=la90, lceq=lceq, lafmax=lafmax)


def _stream(grid, rules, background):
    det = StreamingDetector(rules, grid.step_s, site=grid.site, background=background)
    ends, starts = [], []
    t = grid.t_ms
    for i in range(len(grid)):
        if np.isnan(grid.laeq_db[i]) and i % 7 == 0:
            continue  # some unmeasured steps are simply not sent: the detector fills them
        events = det.update(
            int(t[i]),
            None if np.isnan(grid.laeq_db[i]) else float(grid.laeq_db[i]),
            float(grid.lafmax_db[i]),
            float(grid.lceq_db[i]),
            float(grid.la90_db[i]),
        )
        for ev in events:
            (ends if ev.kind == "end" else starts).append(ev)
    for ev in det.flush():
        (ends if ev.kind == "end" else starts).append(ev)
    return starts, ends


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "variant", ["default", "correction", "no_emergence", "laeq_bg", "total", "legacy"]
)
def test_streaming_equals_batch(seed, variant):
    """Same grid, same rules: the streaming end events are exactly the batch episodes
    (residual held during episodes included), for the new rules and the legacy ones."""
    rules = default_rules()
    background = "la90"
    if variant == "legacy":
        rules = legacy_rules()
    elif variant == "total":
        rules = dataclasses.replace(rules, absolute_level="total")
    elif variant == "correction":
        rules = dataclasses.replace(rules, duration_correction=True)
    elif variant == "no_emergence":
        rules = dataclasses.replace(rules, emergence_enabled=False)
    elif variant == "laeq_bg":
        background = "laeq"
    grid = _random_grid(seed, with_la90=variant != "laeq_bg")
    batch = detect(grid, rules, background=background)
    starts, ends = _stream(grid, rules, background)
    kept = [ev.episode for ev in ends if ev.kept]
    assert len(batch) >= 3
    assert kept == batch
    # every kept episode was announced once, with its true start, no later than its end
    assert [ev.episode.start_ms for ev in starts] == [ev.episode.start_ms for ev in ends]
    for s, e in zip(starts, ends, strict=True):
        assert s.t_ms <= e.t_ms


def test_streaming_equals_batch_per_second():
    """1-s steps (no LA90: background from LAeq), windows of 300 and 3600 steps."""
    rules = default_rules()
    grid = _random_grid(7, step_s=1, n=9000, with_la90=False)
    batch = detect(grid, rules)
    _, ends = _stream(grid, rules, "laeq")
    assert [ev.episode for ev in ends if ev.kept] == batch


def test_streaming_long_outage_is_skipped_cheaply():
    """A 3-day hole in the stream is filled without stepping through every second."""
    rules = default_rules()
    det = StreamingDetector(rules, 1, site="s", background="laeq")
    t0 = parse_time_ms("2026-06-01T10:00:00Z")
    # half an hour of residual first: the rules need it (min_coverage of the 1-h window)
    for i in range(2400):
        det.update(t0 + i * 1000, 70.0 if 2000 <= i < 2300 else 35.0, 80.0, 76.0)
    events = det.update(t0 + 3 * 86_400_000, 35.0, 40.0, 40.0)
    assert [e.kind for e in events] == ["end"]
    assert events[0].episode.start_ms == t0 + 2_000_000
    assert events[0].episode.end_ms == t0 + 2_300_000


@pytest.mark.parametrize("quantile", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_background_where_needed_equals_full_rolling_quantile(quantile):
    """The shortcut evaluates the background exactly like the pandas rolling quantile
    wherever it can matter (and the trailing minimum is a true minimum)."""
    from klankkast.analysis.episodes import (
        _background_where_needed,
        _trailing_min,
        background_db,
    )

    rng = np.random.default_rng(5)
    x = rng.normal(40, 5, 4000)
    x[rng.random(4000) < 0.1] = np.nan
    full = background_db(x, 60, quantile, 30)
    part = _background_where_needed(x, 60, quantile, 30, np.full(4000, np.inf))
    assert np.array_equal(full, part, equal_nan=True)
    y = rng.normal(0, 1, 500)
    for w in (1, 5, 7, 60):
        m = _trailing_min(y, w)
        assert all(m[i] == y[max(0, i - w + 1) : i + 1].min() for i in range(500))
