"""The officer's report per complaint, per visit and per courtyard, against known truth.

An 8-week scenario (:func:`klankkast.analysis.scenario.generate`, the issue's
courtyard: 46/36 dB(A), sources planted 8+ dB above the background) with complaints
and visits drawn around the planted truth (:func:`~klankkast.analysis.scenario.reports`):
a founded complaint ``F*`` lies 2-20 min into a planted source, an unfounded one ``U*``
at least 4 h from any; a visit ``V0 .. V{during-1}`` arrives halfway through a planted
source, the others at least 4 h from any. The truth per id is therefore known without
running the analysis: F -> corroborated, U -> not corroborated (levels were measured),
V during -> during, the others -> no nuisance measured.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from klankkast.analysis.correlate import Coverage, analyse
from klankkast.analysis.episodes import detect_many
from klankkast.analysis.importer import Complaint, Visit
from klankkast.analysis.levels import build_grids
from klankkast.analysis.report import write_outputs
from klankkast.analysis.report_html import level_series
from klankkast.analysis.rules import default_rules
from klankkast.analysis.scenario import MIN_MS, T0_MS, WEEK_MS, generate, reports

WEEKS = 8


class _Items(HTMLParser):
    """Collects ``<tbody class="item" id=... data-verdict=...>``, traces and sections."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, str] = {}
        self.traces: dict[str, int] = {}
        self.sites: list[str] = []
        self._current = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tbody" and a.get("class") == "item":
            self._current = a.get("id") or ""
            self.items[self._current] = a.get("data-verdict") or ""
        if tag == "svg" and a.get("class") == "trace" and self._current:
            self.traces[self._current] = self.traces.get(self._current, 0) + 1
        if tag == "section" and a.get("class") == "site":
            self.sites.append((a.get("id") or "").removeprefix("site-"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._current = ""


class _Text(HTMLParser):
    """The visible text of a page (no tags, attributes, styles or SVG titles)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        p = cls()
        p.feed(html)
        return " ".join(p.parts)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    sc = generate("courtyard", weeks=WEEKS, sites=3, seed=7)
    rep = reports(sc, seed=3)
    rules = default_rules()
    grids = build_grids(sc.rows, step_s=sc.step_s, node_combine=rules.node_combine)
    eps = detect_many(grids, rules)
    # one visit answers two complaints (response time = first complaint's receipt ->
    # arrival); it arrives halfway between the second one's receipt and the end of the
    # planted source that complaint was drawn in, so its truth is "during"
    founded = [c for c in rep.complaints if c.id.startswith("F")]
    c2, src = next(
        (c, p) for c in founded[1:] for p in sc.planted
        if p.site == c.site and p.start_ms <= c.incident_start_ms < p.end_ms
        and p.end_ms - c.received_ms > 20 * MIN_MS
    )  # fmt: skip
    c1 = next(c for c in founded if c.site == c2.site and c.id != c2.id)
    arrive = c2.received_ms + (src.end_ms - c2.received_ms) // 2
    answer = Visit("VA", arrive, arrive + 10 * MIN_MS, c2.site, "warning", (c1.id, c2.id))
    visits = [*rep.visits, answer]
    span = (T0_MS, T0_MS + WEEKS * WEEK_MS)
    f = analyse(eps, rep.complaints, visits, Coverage(grids), rules, span)
    out = tmp_path_factory.mktemp("items")
    series = {g.site: level_series(g, rules, f.episodes) for g in grids}
    meta = {"from": "", "to": "", "sites": sc.sites}
    for lang in ("nl", "en"):
        write_outputs(f, rules, meta, out / lang, lang=lang, series=series)
    return sc, rep, f, out, (c1, c2, answer)


def _truth_complaint(c: Complaint) -> str:
    return "corroborated" if c.id.startswith("F") else "not_corroborated"


def test_per_complaint_and_per_visit_verdicts_equal_the_truth(world) -> None:
    sc, rep, _, out, _ = world
    during = sum(1 for v in rep.visits if v.outcome == "warning")
    truth = {f"complaint-{c.id}": _truth_complaint(c) for c in rep.complaints}
    truth |= {
        f"visit-{v.id}": "during" if int(v.id[1:]) < during else "nothing" for v in rep.visits
    }
    truth["visit-VA"] = "during"
    assert any(v == "not_corroborated" for v in truth.values())  # both kinds present
    for lang in ("nl", "en"):
        p = _Items()
        p.feed((out / lang / "report.html").read_text(encoding="utf-8"))
        assert p.items == truth, lang
        # every complaint and visit has its level trace, every courtyard its section
        assert set(p.traces) == set(truth) and set(p.traces.values()) == {1}
        assert sorted(p.sites) == sorted(sc.sites)


def test_matched_episode_and_lag_of_each_complaint(world) -> None:
    """The matched episode overlaps the planted source the complaint was drawn in, and
    the lag is received − episode start (the episode starts within a minute or two of
    the planted start; the complaint is received 7-50 min after it)."""
    sc, _, f, _, _ = world
    planted = {(p.site, p.start_ms): p for p in sc.planted}
    for cv in f.complaints:
        if cv.verdict != "corroborated":
            continue
        ep = cv.episode
        assert ep is not None and ep.site == cv.complaint.site
        src = [p for p in planted.values() if p.site == ep.site and p.start_ms < ep.end_ms
               and ep.start_ms < p.end_ms]  # fmt: skip
        assert len(src) == 1
        assert cv.lag_min == pytest.approx((cv.complaint.received_ms - ep.start_ms) / MIN_MS)
        assert 7 - 3 <= cv.lag_min <= 50 + 3
        assert ep.laeq_db > 50.0  # planted at least 8 dB above the 46 dB background
        assert ep.rule in ("absolute", "emergence", "absolute+emergence")


def test_visit_timing_answers_and_response_time(world) -> None:
    """VA arrives 25 min after the second complaint was received: its response time is
    from the *first* complaint's receipt, and it came during the episode, minutes after
    its start (planted halfway visits: half the source's length after its start)."""
    _, _, f, out, (c1, c2, answer) = world
    (va,) = [v for v in f.visits if v.visit.id == "VA"]
    assert va.answers == (c1.id, c2.id)
    first = min(c1.received_ms, c2.received_ms)
    assert va.response_min == pytest.approx((answer.arrived_ms - first) / MIN_MS)
    for vv in f.visits:
        if vv.verdict == "during":
            assert vv.minutes_from_start is not None and vv.minutes_from_start >= 0
            assert vv.episode is not None
    en = (out / "en" / "report.html").read_text(encoding="utf-8")
    nl = (out / "nl" / "report.html").read_text(encoding="utf-8")
    assert "no nuisance measured in the 3 h before" in en
    assert "geen overlast gemeten in de 3 uur ervoor" in nl
    assert re.search(r"\d+ min after the nuisance began", en)


def test_summary_per_site_adds_up_to_the_totals(world) -> None:
    _, _, _, out, _ = world
    s = json.loads((out / "en" / "summary.json").read_text())
    sites = s["sites"]
    assert set(sites) == {"yard1", "yard2", "yard3"}
    for section in ("complaints", "visits", "episodes", "association"):
        for site in sites.values():
            assert set(site[section]) == set(s[section]), section
    for section, keys in (
        ("complaints", ("total", "corroborated", "not_corroborated", "no_data")),
        ("visits", ("total", "during_nuisance", "after_nuisance", "nothing", "no_data")),
        ("episodes", ("count", "with_complaint", "without_complaint")),
    ):
        for k in keys:
            assert sum(site[section][k] for site in sites.values()) == s[section][k], (section, k)
    minutes = sum(site["episodes"]["total_minutes"] for site in sites.values())
    assert minutes == pytest.approx(s["episodes"]["total_minutes"], abs=0.01)
    for site in sites.values():
        c = site["complaints"]
        assert c["corroboration_rate"] == pytest.approx(c["corroborated"] / c["total"])


def test_dutch_report_has_no_english_sentences_or_raw_keys(world) -> None:
    _, _, _, out, _ = world
    nl = (out / "nl" / "report.html").read_text(encoding="utf-8")
    body = _Text.of(nl.split("<details>")[0])  # the visible text; summary.json keeps its keys
    for english in ("corroborated", "nothing had been measured", "Findings", "weeks",
                    "limit_day_db", "visit_lookback_s", "chance of this by coincidence", "quiet_laeq",
                    "True", "False"):  # fmt: skip
        assert english not in body, english
    assert "bevestigd door meting" in body and "grenswaarde dag (dB(A))" in body
    assert "p = " in body and "in de tijd verschoven" in body


def test_trace_shows_level_residual_limit_and_episode(world) -> None:
    """A corroborated complaint's trace has the LAeq path, the residual and limit paths,
    an episode band and the marker; it spans 3 h (2 h before to 1 h after)."""
    _, _, f, out, _ = world
    cv = next(c for c in f.complaints if c.verdict == "corroborated")
    html = (out / "en" / "report.html").read_text(encoding="utf-8")
    part = html.split(f'id="complaint-{cv.complaint.id}"')[1].split("</tbody>")[0]
    svg = part[part.index("<svg") : part.index("</svg>")]
    assert svg.count("<path") == 3
    assert 'fill="#E69F00"' in svg  # the episode band
    assert 'stroke="#CC79A7"' in svg  # the marker at the incident start


def test_empty_report_says_no_complaints(tmp_path: Path) -> None:
    from klankkast.analysis.report import cli_summary

    sc = generate("quiet", weeks=1, sites=1, seed=1)
    rules = default_rules()
    grids = build_grids(sc.rows, step_s=sc.step_s, node_combine=rules.node_combine)
    f = analyse(detect_many(grids, rules), [], [], Coverage(grids), rules,
                (T0_MS, T0_MS + WEEK_MS))  # fmt: skip
    s = write_outputs(f, rules, {"sites": sc.sites}, tmp_path, lang="en")
    line = cli_summary(s)
    assert "no complaints in the period" in line and "None" not in line
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No complaints in the period." in html


def test_heat_map_legend_counts_on_whole_numbers() -> None:
    """Complaints 0..3 in a cell: ticks 0, 1, 2, 3 (never 0.25 or 1.75); minutes up to
    167: round steps 0, 50, ..., 200."""
    import numpy as np

    from klankkast.analysis.report_svg import heatmap_svg, integer_ticks

    assert integer_ticks(3) == [0, 1, 2, 3]
    assert integer_ticks(1) == [0, 1]
    assert integer_ticks(167) == [0, 50, 100, 150, 200]
    assert integer_ticks(0) == [0, 1]
    data = np.zeros((7, 24))
    data[4, 22] = 3
    svg = heatmap_svg(data, title="t", weekdays=list("MTWTFSS"), hour_label="h", integer=True)
    labels = re.findall(r'text-anchor="middle">([0-9.]+)</text>', svg)
    assert labels[-4:] == ["0", "1", "2", "3"]
    assert "0.25" not in svg and "1.75" not in svg


def test_csvs_carry_the_matched_episode_and_the_response_time(world) -> None:
    import csv

    _, _, f, out, (c1, c2, answer) = world
    with (out / "en" / "complaints.csv").open() as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    for cv in f.complaints:
        r = rows[cv.complaint.id]
        if cv.episode is None:
            assert r["LAeq"] == r["rule"] == ""
        else:
            assert float(r["LAeq"]) == pytest.approx(cv.episode.laeq_db, abs=0.05)
            assert r["rule"] == cv.episode.rule
    with (out / "en" / "visits.csv").open() as fh:
        va = next(r for r in csv.DictReader(fh) if r["id"] == "VA")
    first = min(c1.received_ms, c2.received_ms)
    assert float(va["response_minutes"]) == pytest.approx(
        (answer.arrived_ms - first) / MIN_MS, abs=0.05
    )
    assert float(va["minutes_after_start"]) >= 0 and va["verdict"] == "during"


def test_trace_residual_per_window_equals_the_whole_series() -> None:
    """The residual is computed per trace window; it must equal the residual over the
    whole series at those minutes (windowed = whole-signal). Levels: 40 dB with a
    ±1 dB saw, 65 dB from minute 120 to 150 (an episode judged against 40.0 dB). The
    residual stays at the quiet 40 dB (energy mean of 39, 40, 41 dB: 40.1 dB) after the
    episode instead of rising to its 65 dB, and is held at 40.0 dB during it."""
    import numpy as np

    from klankkast.analysis.episodes import Episode, SiteGrid, residual_db

    n = 300
    t0 = T0_MS
    la = 40.0 + np.tile([-1.0, 0.0, 1.0], n // 3)
    la[120:150] = 65.0
    grid = SiteGrid("y", t0, 60, la, la + 5, la + 8, la - 3)
    ep = Episode(
        "y", t0 + 120 * MIN_MS, t0 + 150 * MIN_MS, 65.0, 73.0, 5.0, "day", "absolute", 40.0, 65.0
    )
    rules = default_rules()
    s = level_series(grid, rules, [ep])
    quiet = la.copy()
    quiet[120:150] = np.nan
    whole = residual_db(quiet, 10, 1.0, 5)
    whole[120:150] = 40.0
    for i0, i1 in ((0, 300), (5, 60), (100, 220), (149, 151), (290, 300)):
        _, res, limit = s.window(i0, i1)
        np.testing.assert_allclose(res, whole[i0:i1], atol=1e-9, equal_nan=True)
        assert limit.shape == (i1 - i0,)
    _, res, _ = s.window(0, 300)
    expected = 10 * np.log10(np.mean(10 ** (np.array([39.0, 40.0, 41.0]) / 10)))
    assert abs(res[200] - expected) < 0.05 and abs(expected - 40.1) < 0.05
    # right after the episode the quiet window needs 5 of its 10 minutes: a short gap
    # (no residual is defined there), then the quiet level again, not the episode's
    assert np.isnan(res[150:155]).all()
    assert np.all(res[155:170] < 41.0)


def test_trace_limit_line_is_where_the_source_alone_reaches_the_limit() -> None:
    """The limit applies to the specific level (residual subtracted by energy), so the
    trace draws it at the total where that happens: 10·log10(10^5.0 + 10^4.0) = 50.41 dB
    on a 40 dB residual. On a 55 dB street the energy sum is 56.19 dB, but the specific
    level is only determined 3 dB above the residual: 58.0 dB; likewise a 45 dB limit on
    a 49 dB residual: 52.0 dB."""
    import numpy as np

    from klankkast.analysis.report_html import limit_threshold_db

    rules = default_rules()
    got = limit_threshold_db(
        np.array([50.0, 50.0, 45.0, 40.0]), np.array([40.0, 55.0, 49.0, np.nan]), rules
    )
    np.testing.assert_allclose(got, [50.41, 58.0, 52.0, 40.0], atol=0.01)
