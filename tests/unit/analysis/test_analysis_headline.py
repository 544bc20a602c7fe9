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
