"""Issue 15's detection targets, asserted on reduced scenarios with known truth.

The scenarios (:mod:`klankkast.analysis.scenario`) plant music, voices and bangs
8 dB or more above the background; the truth is where they were planted, not what
the code finds. Targets: precision and recall >= 0.9 in every background class but
rain/wind, at most 0.5 false episodes per week and site, median |start error|
<= 3 min at 1-min resolution and <= 60 s at 1-s resolution. The previous rules
(``rules.legacy.toml``) are run on the same rows to show the test can fail: they
miss the false-episode target in ordinary background.
"""

from __future__ import annotations

import pytest

from klankkast.analysis.rules import default_rules, legacy_rules
from klankkast.analysis.scenario import CLASSES, evaluate, generate

WEEKS = 4.0


@pytest.mark.parametrize("cls", [c for c in CLASSES if c != "rain_wind"])
def test_minute_targets(cls):
    sc = generate(cls, weeks=WEEKS)
    assert len(sc.planted) >= 20
    s = evaluate(sc, default_rules())
    assert s.precision >= 0.9, s
    assert s.recall >= 0.9, s
    assert s.false_per_week_site <= 0.5, s
    assert s.median_abs_start_s <= 180.0, s


@pytest.mark.parametrize("cls", ["quiet", "busy", "fluct6", "fluct10", "evening_rise"])
def test_second_targets(cls):
    sc = generate(cls, weeks=0.3, sites=2, step_s=1, per_week=7)
    assert len(sc.planted) >= 3
    s = evaluate(sc, default_rules())
    assert s.precision >= 0.9, s
    assert s.recall >= 0.9, s
    assert s.median_abs_start_s <= 60.0, s


def test_rain_wind_false_episodes_not_above_legacy():
    """Rain/wind: no target but "no worse than before" (the analysis has no bands yet,
    so the +8 dB steps are still found; see the bench for the figures)."""
    sc = generate("rain_wind", weeks=WEEKS)
    new = evaluate(sc, default_rules())
    old = evaluate(sc, legacy_rules())
    assert new.recall >= 0.9
    assert new.false_per_week_site < old.false_per_week_site


@pytest.mark.parametrize("cls", ["quiet", "fluct3", "evening_rise"])
def test_legacy_rules_fail_the_targets(cls):
    """The check can fail: the previous rules find nuisance in ordinary background."""
    s = evaluate(generate(cls, weeks=WEEKS), legacy_rules())
    assert s.false_per_week_site > 0.5


def test_officer_figures_match_the_planted_truth():
    """The issue's courtyard (46/36 dB(A), LA90 4 dB below LAeq), complaints and visits
    drawn around the planted sources: corroborated complaints = the founded ones, visit
    hit rate = the planted 0.25, silent share = planted sources without a complaint.
    The previous rules overstate all three on the same files."""
    from klankkast.analysis.scenario import evaluate_reports, reports

    sc = generate("courtyard", weeks=WEEKS, sites=2)
    rep = reports(sc)
    new = evaluate_reports(sc, rep, default_rules())
    assert new["episodes"] == len(sc.planted)
    assert new["corroborated"] == rep.founded
    assert abs(new["hit_rate"] - rep.true_hit_rate) <= 0.05
    assert abs(new["silent_rate"] - rep.true_silent_rate) <= 0.05
    old = evaluate_reports(sc, rep, legacy_rules())
    assert old["corroborated"] > rep.founded
    assert old["hit_rate"] > rep.true_hit_rate + 0.2
    assert old["silent_rate"] > rep.true_silent_rate + 0.2
