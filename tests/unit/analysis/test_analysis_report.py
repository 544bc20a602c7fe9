"""Report pieces: progress bar, plain-language findings without legal verdicts, plan section."""

from __future__ import annotations

import io

from klankkast.analysis.report import Progress, _findings_text, _plan_section

SUMMARY = {
    "complaints": {"total": 10, "corroborated": 7, "corroboration_rate": 0.7, "no_data": 1,
                   "median_lag_minutes": 25.0},
    "visits": {"total": 4, "during_nuisance": 1, "after_nuisance": 2, "nothing": 1,
               "hit_rate": 0.25, "median_minutes_after_end": 40.0},
    "episodes": {"count": 20, "without_complaint": 13, "without_complaint_rate": 0.65},
    "association": {"p_value": 0.002, "method": "circular time-shift permutation test"},
}  # fmt: skip


def test_progress_lines_when_not_a_terminal():
    out = io.StringIO()
    p = Progress(out)
    p(0.0, "loading")
    p(0.5, "loading")  # same stage: no new line off a terminal
    p(1.0, "done")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[" + "-" * 30 + "]   0% loading")
    assert lines[1].startswith("[" + "#" * 30 + "] 100% done")
    quiet = io.StringIO()
    Progress(quiet, enabled=False)(0.5, "x")
    assert quiet.getvalue() == ""


def test_findings_state_measurements_not_violations():
    for lang, words in (("en", ("7 (70%)", "25 minutes", "13 (65%)", "p = 0.002")),
                        ("nl", ("7 (70%)", "25 minuten", "13 (65%)", "p = 0.002"))):  # fmt: skip
        text = " ".join(_findings_text(SUMMARY, lang))
        for w in words:
            assert w in text, (lang, w)
        for verdict in ("violation", "illegal", "overtreding", "in strijd met"):
            assert verdict not in text.lower()


def test_plan_section_names_days_and_rates():
    plan = {
        "windows": [
            {"site": "yard1", "weekday": "Saturday", "start": "23:00", "end": "01:00",
             "probability": 0.72}
        ],
        "backtest": {"weeks": 6, "hit_rate_plan": 0.6, "hit_rate_historical": 0.15,
                     "hit_rate_random": 0.1},
    }  # fmt: skip
    html = _plan_section(plan, "nl")
    assert "<td>za</td><td>23:00</td><td>01:00</td><td>72%</td>" in html
    assert "6 weken" in html and "60%" in html and "15%" in html and "10%" in html
