"""Correlation on scenarios with known truth (planted episodes, complaints, visits)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from support.analysis_scenario import MIN, make_scenario

from klankkast.analysis.correlate import Coverage, analyse
from klankkast.analysis.episodes import detect
from klankkast.analysis.importer import Complaint, Visit
from klankkast.analysis.rules import default_rules
from klankkast.analysis.stats import overlaps, shift_test


def _run(sc, rules=None):
    rules = rules or default_rules()
    episodes = [e for g in sc.grids for e in detect(g, rules)]
    return analyse(
        episodes, sc.complaints, sc.visits, Coverage(sc.grids), rules, (sc.t0_ms, sc.t1_ms)
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_summary_counts_equal_the_truth(seed):
    sc = make_scenario(seed)
    f = _run(sc)
    s = f.summary()
    t = sc.truth
    # the planted episodes are exactly the detected ones
    planted = sorted((site, a, b) for site, v in sc.planted.items() for a, b in v)
    assert sorted((e.site, e.start_ms, e.end_ms) for e in f.episodes) == planted
    assert s["episodes"]["count"] == t["episodes"]
    assert s["complaints"]["total"] == len(sc.complaints)
    assert s["complaints"]["corroborated"] == t["corroborated"]
    assert s["complaints"]["not_corroborated"] == t["not_corroborated"]
    assert s["complaints"]["no_data"] == t["complaints_no_data"]
    assert s["complaints"]["corroboration_rate"] == pytest.approx(
        t["corroborated"] / len(sc.complaints)
    )
    assert s["visits"]["total"] == len(sc.visits)
    assert s["visits"]["during_nuisance"] == t["visits_during"]
    assert s["visits"]["after_nuisance"] == t["visits_after"]
    assert s["visits"]["nothing"] == t["visits_nothing"]
    assert s["visits"]["hit_rate"] == pytest.approx(t["visits_during"] / len(sc.visits))
    assert s["visits"]["median_minutes_after_end"] == pytest.approx(t["median_minutes_after_end"])
    complained = {
        (c.episode_start_ms, c.complaint.site) for c in f.complaints if c.verdict == "corroborated"
    }
    silent = t["episodes"] - len(complained)
    assert s["episodes"]["without_complaint"] == silent
    assert s["episodes"]["without_complaint_rate"] == pytest.approx(silent / t["episodes"])
    assert s["association"]["p_value"] < 0.01
    assert "permutation" in s["association"]["method"]


def test_complaint_lag_is_received_minus_episode_onset():
    """One episode 22:00-23:00 UTC; complaint about 22:20 received 22:45: lag 45 min."""
    sc = make_scenario(3, sites=1, days=3, founded=0, unfounded=0, gap_day=None)
    a, _ = sc.planted["yard1"][0]
    c = Complaint("x", a + 45 * MIN, a + 20 * MIN, None, "yard1")
    sc.complaints = [c]
    sc.visits = []
    f = _run(sc)
    assert f.complaints[0].verdict == "corroborated"
    assert f.complaints[0].lag_min == pytest.approx(45.0)


def test_complaint_window_lookback_and_grace():
    """A complaint 29 min after an episode ended is corroborated (grace 30 min); 31 min is not."""
    sc = make_scenario(4, sites=1, days=3, founded=0, unfounded=0, gap_day=None)
    _, b = sc.planted["yard1"][0]
    sc.visits = []
    for minutes, verdict in ((29, "corroborated"), (31, "not_corroborated")):
        # received at the incident; incident after the episode's end
        inc = b + minutes * MIN
        sc.complaints = [Complaint("x", inc, inc, None, "yard1")]
        f = _run(sc)
        assert f.complaints[0].verdict == verdict
    rules = dataclasses.replace(default_rules(), grace_s=0, lookback_s=0)
    inc = b + 1 * MIN
    sc.complaints = [Complaint("x", inc, inc, None, "yard1")]
    assert _run(sc, rules).complaints[0].verdict == "not_corroborated"


def test_visit_after_reports_minutes_since_end():
    sc = make_scenario(5, sites=1, days=3, founded=0, unfounded=0, gap_day=None)
    _, b = sc.planted["yard1"][0]
    sc.complaints = []
    sc.visits = [Visit("v", b + 17 * MIN, b + 30 * MIN, "yard1", "nothing_found")]
    f = _run(sc)
    assert f.visits[0].verdict == "after"
    assert f.visits[0].minutes_after_end == pytest.approx(17.0)


def test_independent_complaints_not_significant_for_most_seeds():
    """Complaint times independent of nuisance: p > 0.05 in most of 10 scenarios."""
    ps = []
    for seed in range(10):
        sc = make_scenario(100 + seed, correlated=False, gap_day=None)
        ps.append(_run(sc).summary()["association"]["p_value"])
    assert sum(p > 0.05 for p in ps) >= 8, ps


def test_correlated_complaints_significant():
    for seed in (11, 12, 13):
        sc = make_scenario(seed)
        assert _run(sc).summary()["association"]["p_value"] < 0.01


def test_overlaps_interval_logic():
    """Episodes [10, 20) and [30, 40): windows touching or inside overlap, gaps do not."""
    starts = np.array([10, 30])
    ends = np.array([20, 40])
    a = np.array([0, 0, 19, 20, 25, 39, 40])
    b = np.array([9, 10, 19, 29, 30, 45, 50])
    assert overlaps(starts, ends, a, b).tolist() == [False, True, True, False, True, True, False]


def test_shift_test_uses_weeks_when_many():
    """A year over 3 sites gives 51^3 distinct week shifts: weeks keep the weekly cycle."""
    day = 86_400_000
    per_site = [
        (np.array([0]), np.array([1]), np.array([5 * day]), np.array([5 * day + 1]))
        for _ in range(3)
    ]
    res = shift_test(per_site, 0, 364 * day, permutations=99, seed=1)
    assert res.unit == "week"
    res = shift_test(per_site[:1], 0, 28 * day, permutations=99, seed=1)
    assert res.unit == "day"


def test_dst_complaint_in_repeated_autumn_hour_meets_first_occurrence(tmp_path):
    """25 Oct 2026, 02:30 local without offset = first occurrence = 00:30Z.

    Site a has nuisance 00:20-00:50Z (02:20-02:50 CEST), site b 01:20-01:50Z (02:20-02:50
    CET, the second occurrence). The same complaint text (02:30, received 02:40) is
    corroborated at a and not at b (window 00:00Z-01:10Z with 30-min lookback/grace).
    """
    from klankkast.analysis.episodes import SiteGrid
    from klankkast.analysis.importer import load_complaints
    from klankkast.analysis.timeutil import parse_time_ms

    t0 = parse_time_ms("2026-10-24T18:00:00Z")
    n = 12 * 60
    grids = []
    for site, start in (("a", "2026-10-25T00:20:00Z"), ("b", "2026-10-25T01:20:00Z")):
        laeq = np.full(n, 35.0)
        i = (parse_time_ms(start) - t0) // MIN
        laeq[i : i + 30] = 65.0
        grids.append(SiteGrid(site, t0, 60, laeq, laeq + 3, laeq + 8, np.full(n, np.nan)))
    p = tmp_path / "c.csv"
    p.write_text(
        "id,received_at,incident_start,incident_end,site,category,source\n"
        "ca,2026-10-25T02:40,2026-10-25T02:30,,a,,\n"
        "cb,2026-10-25T02:40,2026-10-25T02:30,,b,,\n"
    )
    complaints, _ = load_complaints(p, known_sites={"a", "b"})
    rules = default_rules()
    episodes = [e for g in grids for e in detect(g, rules)]
    assert [(e.site, e.start_ms) for e in episodes] == [
        ("a", parse_time_ms("2026-10-25T00:20:00Z")),
        ("b", parse_time_ms("2026-10-25T01:20:00Z")),
    ]
    f = analyse(episodes, complaints, [], Coverage(grids), rules, (t0, t0 + n * MIN))
    assert [c.verdict for c in f.complaints] == ["corroborated", "not_corroborated"]


def test_complaint_is_corroborated_by_its_nearest_node():
    """Site y: node n1 hears music at 65 dB for 30 min, n2 (across the courtyard, behind
    a wing) stays at 35 dB; the site mean is 10·log10((10^6.5 + 10^3.5)/2) = 62.0 dB,
    an episode. A complaint nearest to n2 is not corroborated by n2's own levels, one
    nearest to n1 is, and without node analysis the site decides (both corroborated)."""
    from klankkast.analysis.episodes import SiteGrid
    from klankkast.analysis.timeutil import parse_time_ms

    t0 = parse_time_ms("2026-06-01T08:00:00Z")
    n = 6 * 60
    loud = np.full(n, 35.0)
    loud[120:150] = 65.0
    quiet = np.full(n, 35.0)
    nan = np.full(n, np.nan)
    site_db = 10 * np.log10((10 ** (loud / 10) + 10 ** (quiet / 10)) / 2)
    assert site_db[130] == pytest.approx(62.0, abs=0.05)
    site = SiteGrid("y", t0, 60, site_db, site_db + 3, site_db + 8, nan)
    nodes = [
        SiteGrid("y/n1", t0, 60, loud, loud + 3, loud + 8, nan),
        SiteGrid("y/n2", t0, 60, quiet, quiet + 3, quiet + 8, nan),
    ]
    rules = default_rules()
    at = t0 + 125 * MIN
    complaints = [
        Complaint("c1", at + 5 * MIN, at, None, "y", node="n1"),
        Complaint("c2", at + 5 * MIN, at, None, "y", node="n2"),
    ]
    episodes = detect(site, rules)
    node_eps = [e for g in nodes for e in detect(g, rules)]
    assert [e.site for e in node_eps] == ["y/n1"]
    span = (t0, t0 + n * MIN)
    f = analyse(episodes, complaints, [], Coverage([site]), rules, span, node_episodes=node_eps)
    assert [c.verdict for c in f.complaints] == ["corroborated", "not_corroborated"]
    assert f.episode_complained == [True]  # silent nuisance is counted on the site
    f = analyse(episodes, complaints, [], Coverage([site]), rules, span)
    assert [c.verdict for c in f.complaints] == ["corroborated", "corroborated"]


def test_a_visit_that_came_early_says_how_early():
    """Episode 22:00-23:00; a visit 21:00-21:20 finds nothing (the 3 h before were
    quiet) and left 40 min before the nuisance began; one at 14:00 is not 'early'
    (the next episode begins more than 3 h after it left)."""
    import numpy as np

    from klankkast.analysis.correlate import Coverage, analyse
    from klankkast.analysis.episodes import Episode, SiteGrid
    from klankkast.analysis.importer import Visit
    from klankkast.analysis.rules import default_rules

    t0 = 1_780_264_800_000  # 2026-06-01T00:00Z
    m = 60_000
    grid = SiteGrid("y", t0, 60, np.full(1440, 40.0), np.full(1440, 45.0),
                    np.full(1440, 50.0), np.full(1440, 38.0))  # fmt: skip
    ep = Episode("y", t0 + 22 * 60 * m, t0 + 23 * 60 * m, 60.0, 70.0, 5.0, "evening",
                 "absolute", 40.0, 59.6)  # fmt: skip
    visits = [
        Visit("early", t0 + 21 * 60 * m, t0 + (21 * 60 + 20) * m, "y", "nothing_found"),
        Visit("noon", t0 + 14 * 60 * m, t0 + (14 * 60 + 20) * m, "y", "nothing_found"),
    ]
    f = analyse([ep], [], visits, Coverage([grid]), default_rules(), (t0, t0 + 1440 * m))
    early, noon = f.visits
    assert early.verdict == "nothing" and early.minutes_before_start == 40.0
    assert noon.verdict == "nothing" and noon.minutes_before_start is None
