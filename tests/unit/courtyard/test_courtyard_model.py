"""The courtyard page model: energy means, period limits, background, the 'now' reading.

Every time is built from a local wall-clock time in Europe/Amsterdam, never the
machine's clock or zone.
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest

from klankkast.analysis.rules import default_rules
from klankkast.courtyard.model import (
    Alert,
    Episode,
    Limits,
    Minute,
    NodeMinute,
    combine_nodes,
    day_view,
    now_reading,
    ongoing_alert_ms,
    patrol_spans,
    period_segments,
    usual_background_db,
    week_grid,
)
from klankkast.decibel import finite_energy_mean_level

AMS = ZoneInfo("Europe/Amsterdam")
MIN = 60_000


def local_ms(y: int, mo: int, d: int, h: int, mi: int = 0, *, fold: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=AMS, fold=fold).timestamp() * 1000)


def e(level_db: float) -> float:
    return 10.0 ** (level_db / 10.0)


LIM = Limits.from_rules(default_rules())


def test_limits_come_from_the_analysis_rules() -> None:
    """The documented defaults of rules.default.toml: 50/45/40 dB, 07/19/23 h, Amsterdam."""
    assert [LIM.limit_db(p) for p in ("day", "evening", "night")] == [50.0, 45.0, 40.0]
    assert [LIM.emergence_db(p) for p in ("day", "evening", "night")] == [5.0, 5.0, 3.0]
    r = LIM.rules
    assert (r.day_start_h, r.evening_start_h, r.night_start_h) == (7, 19, 23)
    assert str(LIM.tz) == "Europe/Amsterdam" and LIM.background_quantile == 0.1


def test_energy_mean_is_not_an_arithmetic_mean() -> None:
    """30 min at 40 dB + 30 min at 70 dB: 10·log10((1e4 + 1e7)/2) = 67.0 dB, not 55."""
    assert finite_energy_mean_level([40.0] * 30 + [70.0] * 30) == pytest.approx(66.99, abs=0.01)
    assert math.isnan(finite_energy_mean_level([]))


def test_two_nodes_are_combined_by_energy_mean_not_sum() -> None:
    """50 and 60 dB at two microphones: mean 10·log10((1e5 + 1e6)/2) = 57.40 dB.
    (The sum would be 60.41 dB, the arithmetic mean 55.)"""
    t = local_ms(2026, 6, 11, 22, 0)
    out = combine_nodes([NodeMinute(t, "n1", e(50.0)), NodeMinute(t + 5, "n2", e(60.0))])
    assert len(out) == 1
    assert out[0].t_ms == t and out[0].nodes == 2
    assert out[0].laeq_db == pytest.approx(57.40, abs=0.01)


def test_a_minute_of_one_node_only_is_that_node() -> None:
    t = local_ms(2026, 6, 11, 22, 0)
    rows = [
        NodeMinute(t, "n1", e(50.0)),
        NodeMinute(t, "n2", e(60.0)),
        NodeMinute(t + MIN, "n1", e(42.0)),
    ]
    out = combine_nodes(rows)
    assert [m.nodes for m in out] == [2, 1]
    assert out[1].laeq_db == pytest.approx(42.0, abs=1e-6)


def test_usual_background_is_the_laeq_of_the_quietest_tenth() -> None:
    """100 minutes: 10 at 30 dB and 10 at 36 dB below 80 at 60 dB. The quietest
    ceil(0.1·100) = 10 minutes are the 30-dB ones: background 30.0 dB. With quantile
    0.2 the 20 quietest: 10·log10((10·1e3 + 10·10^3.6)/20) = 10·log10(2490.5) = 33.96 dB."""
    levels = [60.0] * 80 + [36.0] * 10 + [30.0] * 10
    assert usual_background_db(levels, 0.1) == pytest.approx(30.0, abs=0.01)
    assert usual_background_db(levels, 0.2) == pytest.approx(33.96, abs=0.01)
    assert math.isnan(usual_background_db([], 0.1))
    with pytest.raises(ValueError, match="quantile"):
        usual_background_db(levels, 0.0)


@pytest.mark.parametrize(
    ("local", "period", "limit"),
    [
        ((2026, 6, 11, 6, 59), "night", 40.0),
        ((2026, 6, 11, 7, 0), "day", 50.0),
        ((2026, 6, 11, 18, 59), "day", 50.0),
        ((2026, 6, 11, 19, 0), "evening", 45.0),
        ((2026, 6, 11, 22, 59), "evening", 45.0),
        ((2026, 6, 11, 23, 0), "night", 40.0),
        ((2026, 12, 31, 23, 59), "night", 40.0),
    ],
)
def test_period_of_a_local_time(local: tuple[int, ...], period: str, limit: float) -> None:
    t = local_ms(*local)
    assert LIM.period_at(t) == period
    assert LIM.limit_db(LIM.period_at(t)) == limit


def test_periods_over_the_autumn_dst_night_follow_the_local_clock() -> None:
    """25 October 2026: 02:00-03:00 local happens twice. From 22:00 on the 24th to 08:00
    on the 25th: evening 22-23 (1 h), night 23-07 (9 real hours), day 07-08 (1 h)."""
    start = local_ms(2026, 10, 24, 22, 0)
    end = local_ms(2026, 10, 25, 8, 0)
    segs = period_segments(start, end, LIM)
    assert [s.period for s in segs] == ["evening", "night", "day"]
    assert [(s.end_ms - s.start_ms) / 3_600_000 for s in segs] == [1.0, 9.0, 1.0]
    assert [s.limit_db for s in segs] == [45.0, 40.0, 50.0]


def _minutes(start_ms: int, levels: list[float]) -> list[Minute]:
    return [Minute(start_ms + k * MIN, x, 1) for k, x in enumerate(levels)]


def test_now_above_the_evening_limit_and_alerted() -> None:
    """21:30 (evening, 45 dB): the latest minute 58 dB is above; the alert of this
    episode started at 21:12 and was updated at 21:29: 'alerted at 21:12'."""
    now = local_ms(2026, 6, 11, 21, 30)
    mins = _minutes(now - 10 * MIN, [50.0] * 9 + [58.0])
    alerts = [
        Alert(local_ms(2026, 6, 11, 21, 12), "start", local_ms(2026, 6, 11, 21, 7)),
        Alert(local_ms(2026, 6, 11, 21, 29), "update", local_ms(2026, 6, 11, 21, 7)),
    ]
    r = now_reading(mins, now, LIM, 35.0, alerts)
    assert r.state == "above" and r.period == "evening" and r.limit_db == 45.0
    assert r.level_db == pytest.approx(58.0)
    assert r.alerted_ms == local_ms(2026, 6, 11, 21, 12)


def test_now_audible_below_the_limit() -> None:
    """Night (40 dB), background 30 dB, emergence 3 dB: a 38-dB minute is below the
    limit but more than 3 dB above the background."""
    now = local_ms(2026, 6, 12, 1, 0)
    r = now_reading(_minutes(now - 5 * MIN, [31.0, 38.0, 31.0, 31.0, 32.0]), now, LIM, 30.0)
    assert r.state == "audible" and r.period == "night"
    assert r.alerted_ms is None


def test_now_quiet_and_no_data() -> None:
    now = local_ms(2026, 6, 12, 1, 0)
    assert now_reading(_minutes(now - 10 * MIN, [31.0] * 10), now, LIM, 30.0).state == "quiet"
    # the last minute began 11 minutes ago: nothing in the last 10
    assert now_reading(_minutes(now - 11 * MIN, [70.0]), now, LIM, 30.0).state == "nodata"


def test_an_ended_or_stale_alert_is_not_going_on() -> None:
    t0 = local_ms(2026, 6, 11, 22, 0)
    start = Alert(t0, "start", t0 - 5 * MIN)
    assert ongoing_alert_ms([start], t0 + 14 * MIN) == t0
    assert ongoing_alert_ms([start], t0 + 16 * MIN) is None
    assert ongoing_alert_ms([start, Alert(t0 + 3 * MIN, "end", t0 - 5 * MIN)], t0 + 4 * MIN) is None
    # an alert in the future of 'now' does not count
    assert ongoing_alert_ms([start], t0 - MIN) is None


def test_patrol_window_past_midnight() -> None:
    """A Friday (ISO 5) window 23:30-01:00 seen on Saturday 13 June 2026 at 00:30:
    it began Friday 12 June 23:30 local."""
    now = local_ms(2026, 6, 13, 0, 30)
    spans = patrol_spans([(5, "23:30", "01:00")], now - 24 * 3_600_000, now, AMS)
    assert [(s.start_ms, s.end_ms) for s in spans] == [(local_ms(2026, 6, 12, 23, 30), now)]


def test_day_view_counts() -> None:
    """24 h of 35 dB with 20 minutes of 55 dB at 21:00-21:20 (evening, 45 dB): 20
    minutes above; two households marked three times."""
    now = local_ms(2026, 6, 11, 23, 0)
    start = now - 24 * 3_600_000
    levels = [35.0] * (24 * 60)
    k = (local_ms(2026, 6, 11, 21, 0) - start) // MIN
    levels[k : k + 20] = [55.0] * 20
    mins = _minutes(start, levels)
    v = day_view(
        now, LIM, mins, 35.0,
        episodes=[Episode(local_ms(2026, 6, 11, 21, 0), local_ms(2026, 6, 11, 21, 20))],
        marks=[(local_ms(2026, 6, 11, 21, 5), "a"), (local_ms(2026, 6, 11, 21, 18), "a"),
               (local_ms(2026, 6, 11, 21, 6), "b"), (start - 1, "c")],
    )  # fmt: skip
    assert v.minutes_above == 20
    assert len(v.marks_ms) == 3 and v.households == 2
    assert len(v.episodes) == 1
    # energy mean of 1420 min at 35 dB and 20 at 55 dB
    expected = 10 * math.log10((1420 * e(35.0) + 20 * e(55.0)) / 1440)
    assert v.laeq_db == pytest.approx(expected, abs=0.01)


def test_week_grid_places_minutes_marks_and_complaints_in_local_hours() -> None:
    """Thursday 11 June 2026 22:xx local: 7 nuisance minutes at 50 dB (evening limit
    45), 2 at 44 dB (below); a mark and a complaint in that hour; one mark eight days
    earlier falls outside the week."""
    now = local_ms(2026, 6, 11, 23, 30)
    t = local_ms(2026, 6, 11, 22, 0)
    mins = _minutes(t, [50.0] * 7 + [44.0] * 2)
    g = week_grid(now, LIM, mins, [t + 3 * MIN, t - 8 * 86_400_000], [t + 30 * MIN])
    assert g.days[-1] == dt.date(2026, 6, 11) and g.days[0] == dt.date(2026, 6, 5)
    assert g.nuisance_min[6][22] == 7
    assert g.marks[6][22] == 1 and sum(map(sum, g.marks)) == 1
    assert g.complaints[6][22] == 1
    assert sum(map(sum, g.nuisance_min)) == 7
