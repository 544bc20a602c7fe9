"""``klankkast-analyze report`` end to end: files in, summary/CSVs/HTML out, Chromium renders it.

The scenario (``tests/support/analysis_scenario.py``) plants episodes far above
every limit, so the truth is known: the summary counts must equal it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.analysis_scenario import make_scenario, write_files
from support.stack import require

REPO = Path(__file__).resolve().parents[3]
ANALYZE = [sys.executable, "-m", "klankkast.analysis.cli"]


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory):
    sc = make_scenario(21, sites=2, days=21)
    out = tmp_path_factory.mktemp("scenario")
    return sc, write_files(sc, out), out


def _report(paths, out, *extra):
    cmd = [
        *ANALYZE, "report", "--levels", paths["levels"], "--complaints", paths["complaints"],
        "--visits", paths["visits"], "--out", str(out), *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)


@pytest.fixture(scope="module")
def report_dir(scenario_files):
    sc, paths, base = scenario_files
    plan = {
        "windows": [
            {"site": "yard1", "weekday": "Friday", "start": "22:00", "end": "23:00", "probability": 0.8}
        ],
        "backtest": {
            "hit_rate_plan": 0.7, "hit_rate_historical": 0.2, "hit_rate_random": 0.1, "weeks": 4,
        },
    }  # fmt: skip
    (base / "plan.json").write_text(json.dumps(plan))
    out = base / "out"
    r = _report(paths, out, "--lang", "en", "--plan", str(base / "plan.json"))
    assert r.returncode == 0, r.stderr
    assert "100%" in r.stderr  # the progress bar reached its end
    return sc, out


def test_summary_keys_and_counts_equal_truth(report_dir):
    sc, out = report_dir
    s = json.loads((out / "summary.json").read_text())
    t = sc.truth
    for key in (
        "complaints.total", "complaints.corroborated", "complaints.corroboration_rate",
        "visits.total", "visits.during_nuisance", "visits.hit_rate",
        "visits.median_minutes_after_end", "episodes.count", "episodes.without_complaint_rate",
        "association.p_value", "association.method",
    ):  # fmt: skip
        section, name = key.split(".")
        assert name in s[section], key
    assert s["episodes"]["count"] == t["episodes"]
    assert s["complaints"]["total"] == len(sc.complaints)
    assert s["complaints"]["corroborated"] == t["corroborated"]
    assert s["complaints"]["no_data"] == t["complaints_no_data"]
    assert s["visits"]["total"] == len(sc.visits)
    assert s["visits"]["during_nuisance"] == t["visits_during"]
    assert s["visits"]["median_minutes_after_end"] == pytest.approx(t["median_minutes_after_end"])
    assert s["association"]["p_value"] < 0.01


def test_csv_outputs_carry_a_verdict_per_row(report_dir):
    sc, out = report_dir
    with (out / "complaints.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(sc.complaints)
    assert sum(r["verdict"] == "corroborated" for r in rows) == sc.truth["corroborated"]
    with (out / "visits.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["verdict"] for r in rows} <= {"during", "after", "nothing", "no_data"}
    assert sum(r["verdict"] == "after" for r in rows) == sc.truth["visits_after"]
    with (out / "episodes.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    planted = sorted((site, a, b) for site, v in sc.planted.items() for a, b in v)
    assert sorted((r["site"], int(r["start_ms"]), int(r["end_ms"])) for r in rows) == planted
    # yard1 was written as two nodes at +1 and -1.30 dB: their energy mean is the site level
    laeq = [float(r["LAeq"]) for r in rows if r["site"] == "yard1"]
    assert np.allclose(laeq, 62.0, atol=0.2)
    assert all(r["verdict"] in ("complained", "without_complaint") for r in rows)


def test_report_html_is_self_contained_and_renders_in_chromium(report_dir, tmp_path):
    """Headless Chromium opens it without console errors; the screenshot is not blank."""
    _, out = report_dir
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html  # nothing fetched
    assert "Patrol plan" in html and "<td>Fri</td><td>22:00</td>" in html
    require("chromium")
    shot = tmp_path / "shot.png"
    cmd = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
        "--window-size=1280,2000", "--enable-logging=stderr", "--v=0",
        (out / "report.html").as_uri(),
    ]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env={**os.environ})
    console = [line for line in r.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    assert shot.exists(), r.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    assert float(pixels[..., :3].std()) > 0.05  # text, heat maps and timelines, not blank


def test_dutch_report_and_rules_file(scenario_files, tmp_path):
    """--lang nl writes Dutch findings; with limits of 70 dB and no emergence rule the
    62 dB episodes no longer count, so nothing is found or corroborated."""
    _, paths, _ = scenario_files
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[absolute]\nday_db = 70\nevening_db = 70\nnight_db = 70\n[emergence]\nenabled = false\n"
    )
    out = tmp_path / "nl"
    r = _report(paths, out, "--lang", "nl", "--rules", str(rules), "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    s = json.loads((out / "summary.json").read_text())
    assert s["episodes"]["count"] == 0
    assert s["complaints"]["corroborated"] == 0
    html = (out / "report.html").read_text()
    assert 'lang="nl"' in html and "klachten" in html


def test_bad_input_one_line_errors(scenario_files, tmp_path):
    _, paths, _ = scenario_files
    bad = tmp_path / "c.csv"
    bad.write_text(
        "id,received_at,incident_start,incident_end,site,category,source\n"
        "a,2026-03-10T22:00,2026-03-29T02:30,,yard1,,\n"
    )
    r = subprocess.run(
        [*ANALYZE, "report", "--levels", paths["levels"], "--complaints", str(bad),
         "--out", str(tmp_path / "o"), "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 1
    assert f"{bad}:2: column incident_start" in r.stderr
    rules = tmp_path / "r.toml"
    rules.write_text("[absolute]\nnight_db = -5\n")
    r = subprocess.run(
        [*ANALYZE, "report", "--levels", paths["levels"], "--rules", str(rules),
         "--out", str(tmp_path / "o"), "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "absolute.night_db" in r.stderr and "-5" in r.stderr


def test_without_complaints_the_cli_says_so(scenario_files, tmp_path):
    """No --complaints: the one-line summary says 'no complaints in the period', not
    'p = None'."""
    _, paths, _ = scenario_files
    r = subprocess.run(
        [*ANALYZE, "report", "--levels", paths["levels"], "--out", str(tmp_path / "o"),
         "--quiet", "--lang", "en"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "no complaints in the period" in r.stdout and "None" not in r.stdout
    html = (tmp_path / "o" / "report.html").read_text()
    assert "No complaints in the period." in html
