"""The officer's report in a real browser: Debian's Chromium driven by Playwright.

An 8-week scenario with known truth (:mod:`klankkast.analysis.scenario`) is analysed
and written in Dutch and English, with a plan section. For screen and for print
(print media emulated, A4 width, 12 mm margins as the page's ``@page`` rule) the page
must load without console errors, show every complaint's and visit's trace, and no
plot, table or trace may run past the right edge of the page (a cut plot). The print
also goes through Chromium's PDF writer on A4.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import chromium

from klankkast.analysis.correlate import Coverage, analyse
from klankkast.analysis.episodes import detect_many
from klankkast.analysis.levels import build_grids
from klankkast.analysis.report import write_outputs
from klankkast.analysis.report_html import level_series
from klankkast.analysis.rules import default_rules
from klankkast.analysis.scenario import T0_MS, WEEK_MS, generate, reports

REPO = Path(__file__).resolve().parents[3]

#: A4 is 210 mm wide; the page's @page margin is 12 mm each side: 186 mm at 96 px/in
A4_CONTENT_PX = round(186 / 25.4 * 96)


@pytest.fixture(scope="module")
def reports_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    sc = generate("courtyard", weeks=8, sites=3, seed=11)
    rep = reports(sc, seed=5)
    rules = default_rules()
    grids = build_grids(sc.rows, step_s=sc.step_s, node_combine=rules.node_combine)
    f = analyse(
        detect_many(grids, rules), rep.complaints, rep.visits, Coverage(grids), rules,
        (T0_MS, T0_MS + 8 * WEEK_MS),
    )  # fmt: skip
    series = {g.site: level_series(g, rules, f.episodes) for g in grids}
    plan = {
        "windows": [
            {"site": "yard1", "weekday": "Friday", "start": "22:00", "end": "02:00",
             "probability": 0.8},
            {"site": "yard2", "weekday": "Wednesday", "start": "22:30", "end": "00:30",
             "probability": 0.4},
        ],
        "backtest": {"weeks": 0, "hit_rate_plan": None, "reason_code": "too_few_weeks",
                     "history_weeks": 2, "complete_weeks": 1, "reason": "x"},
    }  # fmt: skip
    out = tmp_path_factory.mktemp("browser")
    for lang in ("nl", "en"):
        write_outputs(
            f, rules, {"from": "", "to": "", "sites": sc.sites}, out / lang, lang=lang,
            plan=plan, series=series,
        )  # fmt: skip
    return out, len(rep.complaints), len(rep.visits)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


_OVERFLOW = """() => {
  const limit = document.documentElement.clientWidth;
  const bad = [];
  for (const el of document.querySelectorAll('svg, img, table, section, pre')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > limit + 1) bad.push(el.tagName + ' ' + (el.id || el.className.baseVal || el.className || '') + ' ' + Math.round(r.right));
  }
  return {limit, scroll: document.documentElement.scrollWidth, bad};
}"""


@pytest.mark.parametrize("lang", ["nl", "en"])
@pytest.mark.parametrize("media", ["screen", "print"])
def test_report_renders_without_errors_and_nothing_is_cut(
    browser: Any, reports_dir: tuple[Path, int, int], lang: str, media: str, tmp_path: Path
) -> None:
    out, n_complaints, n_visits = reports_dir
    width = A4_CONTENT_PX if media == "print" else 1280
    page = browser.new_page(viewport={"width": width, "height": 1100})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.emulate_media(media=media)
    page.goto((out / lang / "report.html").as_uri())
    page.wait_for_load_state("load")
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # self-contained
    assert page.evaluate("document.documentElement.lang") == lang
    traces = page.locator("svg.trace")
    assert traces.count() == n_complaints + n_visits
    assert page.locator("section.site").count() == 3
    geometry = page.evaluate(_OVERFLOW)
    assert geometry["bad"] == [], geometry
    assert geometry["scroll"] <= geometry["limit"] + 1, geometry
    shot = tmp_path / f"{lang}-{media}.png"
    page.screenshot(path=str(shot), full_page=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[1] == width and pixels.shape[0] > 3000
    assert float(pixels[..., :3].std()) > 0.05  # text, traces and heat maps, not blank
    if media == "print":
        pdf = page.pdf(format="A4", prefer_css_page_size=True)
        assert pdf.startswith(b"%PDF")
        pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
        assert pages >= 3  # every complaint and visit with its trace takes pages
    page.close()
