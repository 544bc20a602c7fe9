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


def test_report_corroborates_by_the_nearest_node(tmp_path):
    """Files in, files out: yard1 has n1 (music at 65 dB for 30 min) and n2 (35 dB, on
    the far side). A Signalen complaint 11 m from n1 is corroborated, one 11 m from n2
    is not (n2 measured no episode), although the site mean (62.0 dB) has an episode;
    node_episodes.csv lists n1's episode only."""
    import csv

    from klankkast.analysis.cli import main

    t0 = 1_780_300_800_000  # 2026-06-01T08:00:00Z, a Monday, day period
    rows = ["time,site,node,LAeq,LCeq,LAFmax,LA90"]
    for m in range(240):
        n1 = 65.0 if 120 <= m < 150 else 35.0
        for node, la in (("n1", n1), ("n2", 35.0)):
            rows.append(f"{t0 + m * 60_000},yard1,{node},{la},{la + 3},{la + 8},{la - 2}")
    (tmp_path / "levels.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "sites.toml").write_text(
        '[[site]]\nid = "yard1"\nlat = 52.3745\nlon = 4.8820\n'
        'nodes = [{id = "n1", lat = 52.3740, lon = 4.8820}, {id = "n2", lat = 52.3750, lon = 4.8820}]\n'
    )
    (tmp_path / "signalen.csv").write_text(
        "id,created_at,incident_date_start,lat,lon,main_category\n"
        "s1,2026-06-01T12:10:00+02:00,2026-06-01T12:05:00+02:00,52.3741,4.8820,geluid\n"
        "s2,2026-06-01T12:10:00+02:00,2026-06-01T12:05:00+02:00,52.3749,4.8820,geluid\n"
    )
    out = tmp_path / "out"
    rc = main(
        ["report", "--levels", str(tmp_path / "levels.csv"), "--complaints",
         str(tmp_path / "signalen.csv"), "--complaints-format", "signalen", "--site-map",
         str(tmp_path / "sites.toml"), "--out", str(out), "--quiet", "--lang", "en"]
    )  # fmt: skip
    assert rc == 0
    with (out / "complaints.csv").open() as fh:
        verdicts = {r["id"]: r["verdict"] for r in csv.DictReader(fh)}
    assert verdicts == {"s1": "corroborated", "s2": "not_corroborated"}
    with (out / "episodes.csv").open() as fh:
        (site_ep,) = list(csv.DictReader(fh))
    assert abs(float(site_ep["LAeq"]) - 62.0) < 0.1  # energy mean of 65 and 35 dB
    assert abs(float(site_ep["residual"]) - 35.0) < 0.1
    with (out / "node_episodes.csv").open() as fh:
        node_eps = list(csv.DictReader(fh))
    assert [(r["site"], r["node"]) for r in node_eps] == [("yard1", "n1")]


def test_plan_without_a_back_test_says_why_in_the_report_language():
    """A plan from 9 days of data: no rate, and instead of 'found nuisance on – of its
    visits' the reason in words, in Dutch with Dutch plurals ('2 weken', '1 week')."""
    plan = {
        "windows": [{"site": "yard1", "weekday": "Friday", "start": "22:00", "end": "02:00",
                     "probability": 0.35}],
        "backtest": {"weeks": 0, "hit_rate_plan": None, "reason_code": "too_few_weeks",
                     "history_weeks": 2, "complete_weeks": 1, "reason": "the levels span ..."},
    }  # fmt: skip
    nl = _plan_section(plan, "nl")
    assert "Niet teruggetoetst: de metingen beslaan 2 weken, waarvan 1 volledig" in nl
    assert "–" not in nl.split("<table>")[0] and "found" not in nl
    en = _plan_section(plan, "en")
    assert "Not back-tested: the levels span 2 weeks, 1 of them complete" in en
    one = _plan_section({**plan, "backtest": {**plan["backtest"], "history_weeks": 1}}, "nl")
    assert "beslaan 1 week," in one and "1 weken" not in one
    rated = _plan_section({**plan, "backtest": {"weeks": 1, "hit_rate_plan": 0.5}}, "nl")
    assert "Terugtoets over 1 week:" in rated
