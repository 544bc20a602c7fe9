"""The headline numbers as InfluxDB points (measurement ``analysis``), per site."""

from __future__ import annotations

from klankkast.analysis.headline import plan_lines, site_lines

T = 1_800_000_000_000


def test_one_point_per_site_with_the_site_numbers() -> None:
    summary = {
        "complaints": {"total": 9, "corroborated": 6},  # the totals are not a site
        "sites": {
            "yard 2": {"complaints": {"total": 3, "corroborated": 1, "corroboration_rate": 1 / 3},
                       "visits": {"total": 0, "hit_rate": None},
                       "episodes": {"count": 4, "without_complaint_rate": 0.75},
                       "marks": None},
            "yard1": {"complaints": {"total": 6, "corroborated": 5},
                      "association": {"p_value": 0.001}},
        },
    }  # fmt: skip
    assert site_lines(summary, T) == [
        "analysis,scope=site,site=yard\\ 2 complaints_total=3.0,complaints_corroborated=1.0,"
        "corroboration_rate=0.3333333333333333,visits_total=0.0,episodes_count=4.0,"
        f"episodes_without_complaint_rate=0.75 {T}",
        "analysis,scope=site,site=yard1 complaints_total=6.0,complaints_corroborated=5.0,"
        f"association_p_value=0.001 {T}",
    ]


def test_the_plan_point_and_a_plan_without_numbers() -> None:
    plan = {"backtest": {"hit_rate_plan": 0.5, "hit_rate_random": None}, "windows": [{}, {}]}
    assert plan_lines(plan, T) == [f"analysis,scope=plan plan_hit_rate=0.5,plan_windows=2.0 {T}"]
    assert plan_lines({"backtest": {}}, T) == []


def test_limit_lines_follow_the_periods_in_local_time() -> None:
    """Default rules: day 07-19 at 50, evening 19-23 at 45, night 23-07 at 40 dB(A),
    Amsterdam time (CEST on 1 June: 07:00 local is 05:00Z)."""
    from klankkast.analysis.headline import limit_lines
    from klankkast.analysis.rules import default_rules

    t0 = 1_780_272_000_000  # 2026-06-01T00:00:00Z = 02:00 CEST
    lines = limit_lines(default_rules(), ["y"], t0, t0 + 24 * 3_600_000)
    assert len(lines) == 96
    at = {int(ln.rsplit(" ", 1)[1]): ln.split(" ")[1] for ln in lines}
    h = 3_600_000
    assert at[t0 + 5 * h - 15 * 60_000] == "night=40.0"  # 06:45 CEST
    assert at[t0 + 5 * h] == "day=50.0"  # 07:00 CEST
    assert at[t0 + 17 * h] == "evening=45.0"  # 19:00 CEST
    assert at[t0 + 21 * h] == "night=40.0"  # 23:00 CEST
    assert lines[0].startswith("limit,site=y night=40.0 ")
