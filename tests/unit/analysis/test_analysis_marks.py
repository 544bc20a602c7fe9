"""Residents' marks against measured episodes (issue 19: the analysis uses the marks).

Expected values come from hand-built episodes and from the generated courtyard's
known truth (:func:`klankkast.analysis.scenario.resident_marks`), never from the
code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from klankkast.analysis.correlate import Coverage
from klankkast.analysis.episodes import Episode, detect_many
from klankkast.analysis.errors import InputErrors
from klankkast.analysis.levels import build_grids
from klankkast.analysis.marks import (
    Mark,
    analyse_marks,
    count_once,
    mark_window,
    read_marks_csv,
)
from klankkast.analysis.rules import default_rules
from klankkast.analysis.scenario import T0_MS, WEEK_MS, Scenario, generate, resident_marks

MIN = 60_000


def _ep(site: str, a_min: int, b_min: int) -> Episode:
    return Episode(site, a_min * MIN, b_min * MIN, 60.0, 75.0, 6.0, "evening", "absolute")


def _all_measured(site: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.ones(np.shape(a), dtype=bool)


def test_window_is_ten_minutes_before_two_after() -> None:
    assert mark_window(100 * MIN) == (90 * MIN, 102 * MIN)


def test_a_household_counts_once_per_ten_minutes() -> None:
    marks = [
        Mark("y", 0, "h1"),
        Mark("y", 9 * MIN + 59_000, "h1"),  # within 10 min of the first: dropped
        Mark("y", 10 * MIN, "h1"),  # 10 min after the first counted: counts
        Mark("y", 1 * MIN, "h2"),  # another household: counts
        Mark("z", 2 * MIN, "h1"),  # same hash at another courtyard: counts
    ]
    kept, dropped = count_once(marks)
    assert dropped == 1
    assert [(m.site, m.household, m.t_ms) for m in kept] == [
        ("y", "h1", 0),
        ("y", "h2", 1 * MIN),
        ("y", "h1", 10 * MIN),
        ("z", "h1", 2 * MIN),
    ]


def test_verdicts_per_episode_households_and_neither() -> None:
    episodes = [_ep("y", 100, 160), _ep("y", 300, 320), _ep("y", 500, 510), _ep("z", 100, 130)]
    complained = [False, True, False, False]
    marks = [
        Mark("y", 105 * MIN, "a"),
        Mark("y", 130 * MIN, "b"),
        Mark("y", 150 * MIN, "a"),  # household a again, 45 min later: counts
        Mark("y", 165 * MIN, "c"),  # 5 min after the end: the window reaches back
        Mark("y", 298 * MIN, "d"),  # 2 min before the start: the window reaches forward
        Mark("y", 200 * MIN, "e"),  # measured, no episode near: not matched
        Mark("y", 700 * MIN, "f"),  # nothing measured then: no data
    ]

    def measured(site: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(a) < 600 * MIN

    f = analyse_marks(marks, episodes, complained, measured, (0, 2 * WEEK_MS), permutations=99)
    verdict = {v.mark.household + str(v.mark.t_ms // MIN): v for v in f.verdicts}
    assert verdict["a105"].episode_index == 0
    assert verdict["c165"].episode_index == 0
    assert verdict["d298"].episode_index == 1
    assert verdict["e200"].verdict == "not_matched"
    assert verdict["f700"].verdict == "no_data"
    assert [(e.marks, e.households) for e in f.per_episode] == [(4, 3), (1, 1), (0, 0), (0, 0)]
    # episode 2 (y, no complaint, no mark) and 3 (z) have neither
    assert f.episodes_with_neither == 2
    s = f.summary()
    assert (s["total"], s["matched"], s["not_matched"], s["no_data"]) == (7, 5, 1, 1)
    assert s["households"] == 6
    assert s["episodes_with_marks"] == 2


def test_marks_outside_the_span_are_left_out() -> None:
    f = analyse_marks(
        [Mark("y", -MIN, "a"), Mark("y", 3 * WEEK_MS, "a")],
        [],
        [],
        _all_measured,
        (0, 2 * WEEK_MS),
        permutations=9,
    )
    assert f.verdicts == []
    assert f.summary()["association"]["p_value"] is None


@pytest.fixture(scope="module")
def courtyard() -> tuple[Scenario, list[Episode], Coverage]:
    sc = generate("courtyard", weeks=8, sites=2)
    grids = build_grids(sc.rows, step_s=sc.step_s, node_combine="mean")
    return sc, detect_many(grids, default_rules()), Coverage(grids)


def test_marks_per_episode_equal_the_truth(
    courtyard: tuple[Scenario, list[Episode], Coverage],
) -> None:
    sc, episodes, coverage = courtyard
    truth = resident_marks(sc)
    span = (T0_MS, T0_MS + 8 * WEEK_MS)
    f = analyse_marks(
        truth.followers + truth.random,
        episodes,
        [False] * len(episodes),
        coverage.measured,
        span,
        permutations=199,
    )
    assert sum(n for n, _ in truth.per_source) > 30
    for k, p in enumerate(sc.planted):
        hit = [
            i
            for i, e in enumerate(episodes)
            if e.site == p.site and e.start_ms < p.end_ms and e.end_ms > p.start_ms
        ]
        assert len(hit) == 1, f"planted source {k} is {len(hit)} episodes"
        got = f.per_episode[hit[0]]
        assert (got.marks, got.households) == truth.per_source[k], f"planted source {k}"
    # the random households never mark near nuisance: every one of their marks is unmatched
    random_ids = {m.household for m in truth.random}
    unmatched = [v for v in f.verdicts if v.mark.household in random_ids]
    assert unmatched and all(v.verdict == "not_matched" for v in unmatched)


def test_the_association_test_separates_followers_from_random(
    courtyard: tuple[Scenario, list[Episode], Coverage],
) -> None:
    sc, episodes, coverage = courtyard
    truth = resident_marks(sc)
    span = (T0_MS, T0_MS + 8 * WEEK_MS)
    follow = analyse_marks(
        truth.followers, episodes, [False] * len(episodes), coverage.measured, span
    ).association
    rand = analyse_marks(
        truth.random, episodes, [False] * len(episodes), coverage.measured, span
    ).association
    assert follow.p_value is not None and follow.p_value <= 0.01
    assert rand.p_value is not None and rand.p_value >= 0.2
    assert "mark times shifted" in follow.method


def test_marks_csv_semicolons_bom_and_every_problem_at_once(tmp_path: Path) -> None:
    good = tmp_path / "marks.csv"
    good.write_bytes(
        "\ufeffsite;time;household;kind;severity\n"
        "yard1;2026-06-05T23:10;h1;music;4\n"
        "yard1;2026-06-05T21:10:00Z;h2;;\n".encode()
    )
    marks = read_marks_csv(good, "Europe/Amsterdam")
    # 23:10 CEST = 21:10 UTC: both marks are the same instant
    assert marks[0].t_ms == marks[1].t_ms
    assert (marks[0].kind, marks[0].severity, marks[1].kind, marks[1].severity) == (
        "music",
        4,
        None,
        None,
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("site,time,household,severity\nyard1,yesterday,h1,3\n,2026-06-05,h2,9\n")
    with pytest.raises(InputErrors) as err:
        read_marks_csv(bad, "Europe/Amsterdam")
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert "bad.csv:2: column time" in lines[0]
    assert "bad.csv:3: column site" in lines[1] and "empty" in lines[1]
    assert "column severity" in lines[2] and "1-5" in lines[2]
    missing = tmp_path / "missing.csv"
    missing.write_text("site,when,household\n")
    with pytest.raises(InputErrors, match="missing column"):
        read_marks_csv(missing, "Europe/Amsterdam")


def test_report_cli_reports_marks_against_the_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``klankkast-analyze report --experiences FILE`` on the generated courtyard: the
    report's mark figures, per site and per planted source, equal the truth."""
    import csv
    import json

    from klankkast.analysis.cli import main

    sc = generate("courtyard", weeks=8, sites=2)
    truth = resident_marks(sc)
    rows = sc.rows.rename(columns={"t_ms": "time"})
    rows.to_csv(tmp_path / "levels.csv", index=False)
    with (tmp_path / "marks.csv").open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["site", "time", "household", "kind", "severity"])
        for m in truth.followers + truth.random:
            iso = np.datetime_as_string(np.datetime64(m.t_ms, "ms"), unit="s") + "Z"
            w.writerow([m.site, iso, m.household, m.kind or "", m.severity or ""])
    out = tmp_path / "out"
    rc = main(
        ["report", "--levels", str(tmp_path / "levels.csv"), "--experiences",
         str(tmp_path / "marks.csv"), "--out", str(out), "--quiet", "--lang", "en"]
    )  # fmt: skip
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    m = s["marks"]
    counted = sum(n for n, _ in truth.per_source)
    assert m["matched"] == counted
    assert m["not_matched"] == len(truth.random)
    assert m["no_data"] == 0
    assert m["total"] == counted + len(truth.random)
    assert m["households"] == len({(x.site, x.household) for x in truth.followers + truth.random})
    assert m["association"]["p_value"] is not None
    for key in ("total", "matched", "not_matched", "episodes_with_marks", "episodes_with_neither"):
        assert sum(site["marks"][key] for site in s["sites"].values()) == m[key], key
    with (out / "episodes.csv").open() as fh:
        eps = list(csv.DictReader(fh))
    for k, p in enumerate(sc.planted):
        (row,) = [
            r for r in eps
            if r["site"] == p.site and int(r["start_ms"]) < p.end_ms and int(r["end_ms"]) > p.start_ms
        ]  # fmt: skip
        assert (int(row["marks"]), int(row["households"])) == truth.per_source[k]
    html = (out / "report.html").read_text()
    assert f"Residents marked &#x27;it bothers me now&#x27; {m['total']} times" in html
    assert (
        f"{counted}/{m['total']} residents' marks during measured nuisance"
        in capsys.readouterr().out
    )
