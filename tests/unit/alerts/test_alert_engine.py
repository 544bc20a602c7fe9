"""The live-alert core: confirmation, updates, end, flood control, late, quiet hours.

Frames are generated here from a known truth (levels per node and second), the
engine is fed them in stream order and in shuffled arrival order, and the alerts are
checked against the truth. No network, no clock: ``now_ms`` is passed in.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

from klankkast.alerts.engine import (
    Alert,
    AlertEngine,
    AlertSettings,
    QuietHours,
    combine_db,
    parse_quiet_range,
)
from klankkast.analysis.rules import Rules, legacy_rules, load_rules

AMS = ZoneInfo("Europe/Amsterdam")
# Wednesday 2026-06-10 10:00 local (day period: absolute limit 50 dB(A) by default)
T0 = int(dt.datetime(2026, 6, 10, 10, 0, tzinfo=AMS).timestamp() * 1000)
BASS_DB = 6.0  # LCeq - LAeq of every generated frame
ONSET = 600  # s after T0 (10:10 local) the planted episode begins
TOTAL_S = ONSET + 1200 + 900  # the end is decided ~10 min after the noise stops


def frames(
    level_of: Callable[[int], float], duration_s: int, nodes: tuple[str, ...] = ("n1", "n2")
) -> list[tuple[str, int, float]]:
    """(node, t_ms, LAeq) for every node and second; each node reads ``level_of(s)``."""
    return [(n, T0 + s * 1000, level_of(s)) for s in range(duration_s) for n in nodes]


def run(
    engine: AlertEngine, fr: list[tuple[str, int, float]], now_ms: int | None = None
) -> list[Alert]:
    out: list[Alert] = []
    for node, t, la in fr:
        now = t + 500 if now_ms is None else now_ms
        seq = (t - T0) // 1000
        out += engine.frame("yard1", node, t, la, la + BASS_DB, la + 8.0, now_ms=now, seq=seq)
    return out


def planted(
    onset_s: int, dur_s: int, high: float = 67.0, low: float = 35.0
) -> Callable[[int], float]:
    return lambda s: high if onset_s <= s < onset_s + dur_s else low


def test_combine_db_is_energy() -> None:
    """Two nodes at 60 dB: energy sum 63.0 dB (10·log10 2 = 3.01), energy mean 60.0."""
    assert combine_db([60.0, 60.0], "sum") == pytest.approx(63.0103, abs=1e-4)
    assert combine_db([60.0, 60.0], "mean") == pytest.approx(60.0)
    assert combine_db([40.0, 70.0], "mean") == pytest.approx(67.0, abs=0.05)
    assert math.isnan(combine_db([], "sum"))


def test_planted_20_minute_episode_gives_one_start_updates_and_one_end() -> None:
    """Two nodes at 67 dB for 20 min over 35 dB: the site reads 67.0 dB (energy mean of
    co-located nodes: they hear the same sound field, issue 15).

    Start once the episode has lasted confirm_s = 300 s; an update every 60 s; the end
    carries the episode's true end (onset + 1200 s).
    """
    onset, dur = ONSET, 1200
    eng = AlertEngine(load_rules(None), AlertSettings(confirm_s=300, update_s=60))
    alerts = run(eng, frames(planted(onset, dur), TOTAL_S))
    states = [a.state for a in alerts]
    assert states.count("start") == 1 and states.count("end") == 1
    assert states[0] == "start" and states[-1] == "end"
    start, end = alerts[0], alerts[-1]
    onset_ms = T0 + onset * 1000
    assert start.payload["started"] == onset_ms
    assert 0 < start.payload["t"] - onset_ms <= 300_000
    assert start.payload["t"] - onset_ms >= 300_000 - 1000
    assert end.payload["ended"] == onset_ms + dur * 1000
    assert end.payload["duration_s"] == pytest.approx(dur)
    ups = [a for a in alerts if a.state == "update"]
    # updates every 60 s from the start until the end message (which comes after the
    # rules' 5-min window and gap merge have passed)
    gaps = {b.payload["t"] - a.payload["t"] for a, b in itertools.pairwise(alerts[:-1])}
    assert gaps == {60_000}
    assert len(ups) >= (dur - 300) // 60 - 1
    assert end.payload["LAeq"] == pytest.approx(67.0, abs=0.05)
    assert end.payload["bass"] == pytest.approx(BASS_DB, abs=0.05)
    assert end.payload["LAFmax"] == pytest.approx(67.0 + 8.0)
    assert end.payload["nodes"] == ["n1", "n2"]
    for a in alerts:
        assert {"site", "state", "started", "t", "LAeq", "LAFmax", "bass", "nodes", "late"} <= set(
            a.payload
        )
        assert a.payload["late"] is False and a.notify


def test_short_episode_below_confirmation_raises_nothing() -> None:
    eng = AlertEngine(load_rules(None), AlertSettings(confirm_s=300))
    alerts = run(eng, frames(planted(ONSET, 200), 1800))
    assert alerts == []
    assert eng.counters["episodes_unconfirmed"] == 1


def test_arrival_order_does_not_change_the_alerts() -> None:
    """Replay == live: nodes interleaved differently (within hold_s) give the same alerts."""
    fr = frames(planted(ONSET, 1200), TOTAL_S)
    ref = [a.payload for a in run(AlertEngine(load_rules(None), AlertSettings()), fr)]
    rng = random.Random(3)
    shuffled = list(fr)
    # jitter arrival by up to 3 s per frame (hold_s = 5 s)
    shuffled.sort(key=lambda x: x[1] + rng.uniform(0, 3000))
    got = [a.payload for a in run(AlertEngine(load_rules(None), AlertSettings()), shuffled)]
    assert got == ref


def test_a_silent_node_is_not_waited_for_forever() -> None:
    """n2 stops after 10 min: steps close hold_s later, with n1 only."""
    fr = [x for x in frames(planted(ONSET, 1200), TOTAL_S) if x[0] == "n1" or x[1] < T0 + 600_000]
    alerts = run(AlertEngine(load_rules(None), AlertSettings()), fr)
    assert [a.state for a in alerts].count("start") == 1
    assert alerts[-1].payload["nodes"] == ["n1"]
    assert alerts[-1].payload["LAeq"] == pytest.approx(67.0, abs=0.05)


def test_flapping_bursts_do_not_flood() -> None:
    """8 min at 60 dB, 12 min at 35 dB, for 2 h: six separate episodes by the rules.

    Each lasts past confirm_s, but after an end no start comes within min_gap_s, so
    there are at most 2 h / (min_gap_s + confirm_s) + 1 starts, and starts and ends
    alternate.
    """
    level = lambda s: 60.0 if (s % 1200) < 480 else 35.0  # noqa: E731
    s = AlertSettings(confirm_s=300, update_s=60, min_gap_s=900)
    alerts = run(AlertEngine(load_rules(None), s), frames(level, 2 * 3600))
    starts = [a for a in alerts if a.state == "start"]
    ends = [a for a in alerts if a.state == "end"]
    assert 1 <= len(starts) <= 2 * 3600 // (900 + 300) + 1
    assert len(starts) - len(ends) in (0, 1)
    seq = [a.state for a in alerts if a.state != "update"]
    assert all(a != b for a, b in itertools.pairwise(seq))
    for e, st in zip(ends, starts[1:], strict=False):
        assert st.payload["t"] - e.payload["t"] >= 900_000


def test_hysteresis_keeps_an_alert_while_the_level_hovers_just_below_the_limit() -> None:
    """Absolute rule only (day limit 50 dB): 30 min at 60 dB, then 49 dB for 40 min.

    The residual is held at 35 dB from the episode's start, so the specific level of
    49 dB is 10·log10(10^4.9 − 10^3.5) = 48.8 dB, below the limit: the rules alone end
    the episode; with 3 dB hysteresis the alert holds (52 dB total, 51.9 specific > 50);
    with 0 dB it ends. Both nodes read the site level (energy mean).
    """
    rules = Rules(emergence_enabled=False)
    level = lambda s: 60.0 if 600 <= s < 2400 else 49.0 if s >= 2400 else 35.0  # noqa: E731
    fr = frames(level, 2400 + 40 * 60)
    with_h = run(AlertEngine(rules, AlertSettings(hysteresis_db=3.0)), fr)
    without = run(AlertEngine(rules, AlertSettings(hysteresis_db=0.0)), fr)
    assert [a.state for a in with_h].count("end") == 0
    assert [a.state for a in without].count("end") == 1


def test_backlog_is_late_and_not_for_webhooks() -> None:
    """Frames 6 h after T0 when they arrive: every alert late, none to notify."""
    fr = frames(planted(ONSET, 1200), TOTAL_S)
    now = T0 + 6 * 3600 * 1000
    alerts = run(AlertEngine(load_rules(None), AlertSettings()), fr, now_ms=now)
    assert alerts and all(a.late and not a.notify for a in alerts)
    # the same stream live: nothing late
    live = run(AlertEngine(load_rules(None), AlertSettings()), fr)
    assert [a.payload | {"late": True} for a in live] == [a.payload for a in alerts]


def test_quiet_hours_mark_alerts_and_keep_them_from_webhooks() -> None:
    """Quiet 10:00-12:00 local for yard1: the planted episode at 10:10 is quiet."""
    quiet = QuietHours({"yard1": [parse_quiet_range("10:00-12:00")]})
    alerts = run(
        AlertEngine(load_rules(None), AlertSettings(quiet=quiet)),
        frames(planted(ONSET, 1200), TOTAL_S),
    )
    assert alerts and all(a.quiet and not a.notify for a in alerts)
    other = QuietHours({"yard2": [parse_quiet_range("10:00-12:00")]})
    alerts = run(
        AlertEngine(load_rules(None), AlertSettings(quiet=other)),
        frames(planted(ONSET, 1200), TOTAL_S),
    )
    assert alerts and not any(a.quiet for a in alerts)


@pytest.mark.parametrize(
    ("text", "minute", "quiet"),
    [
        ("22:00-07:00", 23 * 60, True),
        ("22:00-07:00", 6 * 60 + 59, True),
        ("22:00-07:00", 7 * 60, False),
        ("02:00-07:00", 1 * 60 + 59, False),
        ("02:00-07:00", 2 * 60, True),
        ("00:00-24:00", 12 * 60, True),
    ],
)
def test_quiet_ranges_on_the_local_wall_clock(text: str, minute: int, quiet: bool) -> None:
    """Ranges are local time: 23:00 CEST on 2026-06-10 is 21:00 UTC."""
    q = QuietHours({"*": [parse_quiet_range(text)]})
    local = dt.datetime(2026, 6, 10, tzinfo=AMS) + dt.timedelta(minutes=minute)
    assert q.is_quiet("any", int(local.timestamp() * 1000)) is quiet


@pytest.mark.parametrize("bad", ["22:00", "7:00-8:00", "25:00-07:00", "10:00-10:00", "aa:bb-cc:dd"])
def test_bad_quiet_ranges_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_range(bad)


def test_stale_frames_are_counted_not_fatal() -> None:
    eng = AlertEngine(load_rules(None), AlertSettings())
    run(eng, frames(planted(100, 100), 300))
    eng.frame("yard1", "n1", T0, 90.0, 96.0, 98.0, now_ms=T0)
    assert eng.counters["stale_frames"] == 1


def _interleaved(fr: list[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
    """Arrival order of a node draining its outbox: three oldest, then one newest, ..."""
    rest = list(fr)
    out = []
    while rest:
        out += rest[:3]
        del rest[:3]
        if rest:
            out.append(rest.pop())
    return out


def test_outbox_drain_order_gives_the_same_alerts_as_stream_order() -> None:
    """Oldest-first with the newest frames interleaved (as ``sensor.delivery`` drains a
    backlog): per-node ``seq`` contiguity closes each step only once complete, so the
    alerts equal those of the stream in time order. Wall clock fixed (a fast replay)."""
    fr = frames(planted(ONSET, 1200), TOTAL_S)
    now = T0 + TOTAL_S * 1000
    s = AlertSettings()
    ref = [a.payload for a in run(AlertEngine(load_rules(None), s), fr, now_ms=now)]
    eng = AlertEngine(load_rules(None), s)
    got = [a.payload for a in run(eng, _interleaved(fr), now_ms=now)]
    assert [p["state"] for p in ref].count("start") == 1
    assert got == ref
    assert eng.counters["stale_frames"] == 0


def test_backlog_behind_the_site_stream_gets_its_own_late_unretained_alerts() -> None:
    """The site's stream is at T0 + 45 min when a backlog from 3 h before T0 arrives
    (one node that was offline): it is detected on its own, late and not retained."""
    eng = AlertEngine(load_rules(None), AlertSettings())
    now = T0 + TOTAL_S * 1000
    live = run(eng, frames(lambda s: 35.0, TOTAL_S), now_ms=now)
    assert live == []
    old = [
        (n, t - 3 * 3_600_000, la) for n, t, la in frames(planted(ONSET, 1200), TOTAL_S, ("n2",))
    ]
    out: list[Alert] = []
    for node, t, la in old:
        seq = 100_000 + (t - old[0][1]) // 1000
        out += eng.frame("yard1", node, t, la, la + BASS_DB, la + 8.0, now_ms=now, seq=seq)
    states = [a.state for a in out]
    assert states.count("start") == 1 and states.count("end") == 1
    assert all(a.late and not a.retain and not a.notify for a in out)
    assert out[0].payload["nodes"] == ["n2"]
    assert eng.counters["stale_frames"] == 0 and eng.counters["backlog_streams"] == 1


def test_nodes_going_offline_end_the_alert_without_waiting_for_the_rules() -> None:
    """The stream stops 100 s after the noise; both nodes report offline: hold_s of wall
    clock later the open alert ends, at the episode's true end. Before that, and while
    only one node is offline, it stays open."""
    eng = AlertEngine(load_rules(None), AlertSettings(hold_s=2.0))
    alerts = run(eng, frames(planted(ONSET, 1200), ONSET + 1300))
    assert [a.state for a in alerts].count("end") == 0
    last = T0 + (ONSET + 1300) * 1000
    eng.status("yard1", "n1", "offline")
    assert [a.state for a in eng.idle(last + 10_000)] == []
    eng.status("yard1", "n2", "offline")
    assert eng.idle(last + 1_000) == []  # within hold_s of the last frame
    end = eng.idle(last + 3_000)
    assert [a.state for a in end] == ["end"]
    assert end[0].payload["ended"] == T0 + (ONSET + 1200) * 1000


def test_minute_summaries_work_as_well() -> None:
    """``frames = "minute"``: 60-s steps with LA90 (the rules' LA90 background). Two nodes,
    30 min at 67 dB(A) (site 67.0, energy mean) from minute 90 of 4 h: one start once 5 min have
    passed, one end with the true end."""
    eng = AlertEngine(load_rules(None), AlertSettings(step_s=60, update_s=300))
    out: list[Alert] = []
    for m in range(240):
        t = T0 + m * 60_000
        la = 67.0 if 90 <= m < 120 else 35.0
        for node in ("n1", "n2"):
            out += eng.frame(
                "yard1", node, t, la, la + BASS_DB, la + 8.0, la - 3.0, now_ms=t + 60_500, seq=m
            )
    states = [a.state for a in out]
    assert states.count("start") == 1 and states.count("end") == 1
    assert out[0].payload["started"] == T0 + 90 * 60_000
    assert 0 < out[0].payload["t"] - out[0].payload["started"] <= 300_000
    assert out[-1].payload["ended"] == T0 + 120 * 60_000
    assert out[-1].payload["LAeq"] == pytest.approx(67.0, abs=0.05)


def test_quiet_night_nodes_and_a_burst_end_the_alert() -> None:
    """Issue 15: two quiet nodes at night (35-38 dB(A) each, by the second) and a 6-min
    burst at 65 dB. Energy-summed they read 38-41 dB, around the 40 dB night limit,
    and the previous rules (legacy: sum, limit on the total, LA90 background) never end
    the alert. With the new rules the site reads their energy mean (35-38), the limit
    applies to the specific level over the held residual, and the alert ends once the
    gap merge (5 min) and the 5-min window have passed."""
    night = int(dt.datetime(2026, 6, 10, 1, 0, tzinfo=AMS).timestamp() * 1000)
    rng = random.Random(7)
    quiet = [rng.uniform(35.0, 38.0) for _ in range(2 * 3600)]
    onset, dur = 1800, 360

    def feed(rules: Rules) -> list[Alert]:
        eng = AlertEngine(rules, AlertSettings(confirm_s=120, update_s=600))
        out: list[Alert] = []
        for s in range(2 * 3600):
            t = night + s * 1000
            for k, node in enumerate(("n1", "n2")):
                la = 65.0 if onset <= s < onset + dur else quiet[(s + 977 * k) % len(quiet)]
                out += eng.frame(
                    "yard1", node, t, la, la + BASS_DB, la + 8.0, now_ms=t + 500, seq=s
                )
        return out

    new = [a.state for a in feed(load_rules(None))]
    assert new.count("start") == 1 and new.count("end") == 1
    old = [a.state for a in feed(legacy_rules())]
    assert old.count("start") >= 1 and old[-1] != "end"
