"""``klankkast-analyze run``: the schedule in local time, the [analysis] table, and runs on
files (a dated folder per night, the plan weekly, latest moved atomically, old runs
removed). Expected times are written out by hand from the Amsterdam offsets."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from support.analysis_scenario import make_scenario, write_files

from klankkast.analysis.cli import main as analyze
from klankkast.analysis.errors import ConfigError
from klankkast.analysis.service import Schedule, load_config, parse_config, run_once

AMS = "Europe/Amsterdam"


def _ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)


@pytest.mark.parametrize(
    ("now", "at", "expected"),
    [
        # Thursday 22:37 CET -> Friday 06:00 CET
        ("2026-12-03T22:37:00+01:00", "06:00", "2026-12-04T06:00:00+01:00"),
        # exactly at the time: the next day's
        ("2026-12-04T06:00:00+01:00", "06:00", "2026-12-05T06:00:00+01:00"),
        # the spring night: 06:00 is CEST already
        ("2026-03-28T23:00:00+01:00", "06:00", "2026-03-29T06:00:00+02:00"),
        # 02:30 does not exist on 29 March: read with the offset before the gap (03:30 CEST)
        ("2026-03-28T23:00:00+01:00", "02:30", "2026-03-29T03:30:00+02:00"),
        # 02:30 happens twice on 25 October: the first time (CEST)
        ("2026-10-24T23:00:00+02:00", "02:30", "2026-10-25T02:30:00+02:00"),
        # New Year's Eve
        ("2026-12-31T23:59:00+01:00", "06:00", "2027-01-01T06:00:00+01:00"),
    ],
)
def test_next_run_in_local_time(now: str, at: str, expected: str) -> None:
    s = Schedule(dt.time.fromisoformat(at), 0, AMS)
    assert s.next_run(_ms(now)) == _ms(expected)


def test_plan_due_weekly_on_its_weekday() -> None:
    s = Schedule(dt.time(6, 0), 0, AMS)  # Monday
    monday = _ms("2026-12-07T06:00:00+01:00")
    assert s.plan_due(monday, None)
    assert s.plan_due(monday, _ms("2026-12-03T00:00:00+01:00"))  # a Thursday's plan
    assert not s.plan_due(monday, _ms("2026-12-07T00:00:00+01:00"))  # made today
    friday = _ms("2026-12-11T06:00:00+01:00")
    assert not s.plan_due(friday, _ms("2026-12-07T00:00:00+01:00"))
    # a week without a plan (a Monday missed) makes one on any day
    assert s.plan_due(friday, _ms("2026-12-04T00:00:00+01:00"))


def test_every_problem_of_the_table_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"levels": "http://influx:8086/klankkast", "out_dir": "reports", "lang": "de",
             "report_at": "25:00", "plan_weekday": "maandag", "capacity": 0, "hystory_days": 3},
            base=tmp_path,
        )  # fmt: skip
    lines = str(info.value).splitlines()
    assert len(lines) == 6, lines
    text = "\n".join(lines)
    assert "analysis.levels = 'http://influx:8086/klankkast': write influxdb+http://" in text
    assert "analysis.hystory_days = 3: unknown key; did you mean 'history_days'?" in text
    for key in ("lang", "report_at", "plan_weekday", "capacity"):
        assert f"analysis.{key} = " in text
    cfg_file = tmp_path / "central.toml"
    cfg_file.write_text('[analysis]\nlevels = "levels.csv"\nout_dir = "out"\n')
    cfg = load_config(cfg_file)
    assert cfg.levels == str(tmp_path / "levels.csv") and cfg.out_dir == tmp_path / "out"


def test_nightly_runs_on_files(tmp_path: Path) -> None:
    sc = make_scenario(5, sites=2, days=21, founded=12, unfounded=3, gap_day=None)
    paths = write_files(sc, tmp_path / "in", two_nodes=False)
    cfg = parse_config(
        {"levels": paths["levels"], "out_dir": str(tmp_path / "reports"),
         "complaints": paths["complaints"], "visits": paths["visits"], "lang": "en",
         "keep_days": 2},
        base=tmp_path,
    )  # fmt: skip
    schedule = Schedule(dt.time(6, 0), 0, AMS)
    said: list[str] = []
    # Monday 23 March 06:00: the first run makes a plan
    r1 = run_once(cfg, _ms("2026-03-23T06:00:00+01:00"), schedule, analyze=analyze, say=said.append)
    assert r1.folder.name == "2026-03-23" and r1.plan_made
    assert (r1.folder / "plan" / "plan.json").is_file()
    assert (r1.folder / "report" / "report.html").is_file()
    assert r1.summary["complaints"]["total"] == 15
    latest = tmp_path / "reports" / "latest"
    assert latest.is_symlink() and latest.resolve() == r1.folder.resolve()
    current = tmp_path / "reports" / "current-plan" / "plan.json"
    assert current.resolve() == (r1.folder / "plan" / "plan.json").resolve()
    # Tuesday: a report, no new plan; the report carries Monday's plan
    r2 = run_once(cfg, _ms("2026-03-24T06:00:00+01:00"), schedule, analyze=analyze, say=said.append)
    assert not r2.plan_made and not (r2.folder / "plan").exists()
    assert latest.resolve() == r2.folder.resolve()
    html = (r2.folder / "report" / "report.html").read_text()
    plan = json.loads((r1.folder / "plan" / "plan.json").read_text())
    assert plan["windows"] and "plan" in html.lower()
    # Friday, keep_days = 2: Tuesday's run (3 days old) is removed; Monday's holds the
    # current plan and stays until a newer plan replaces it
    r3 = run_once(cfg, _ms("2026-03-27T06:00:00+01:00"), schedule, analyze=analyze, say=said.append)
    assert not r3.plan_made
    assert r1.folder.exists() and not r2.folder.exists()
    assert any("removed" in line and "2026-03-24" in line for line in said)
    # the next Monday a new plan; then Monday 23's run goes too
    r4 = run_once(cfg, _ms("2026-03-30T06:00:00+02:00"), schedule, analyze=analyze, say=said.append)
    assert r4.plan_made
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "2026-03-30",
        "current-plan",
        "latest",
    ]
    assert current.resolve() == (r4.folder / "plan" / "plan.json").resolve()


def test_an_export_not_delivered_yet_is_left_out(tmp_path: Path) -> None:
    sc = make_scenario(6, sites=1, days=14, founded=4, unfounded=1, gap_day=None)
    paths = write_files(sc, tmp_path / "in", two_nodes=False)
    cfg = parse_config(
        {"levels": paths["levels"], "out_dir": str(tmp_path / "r"),
         "complaints": str(tmp_path / "inbox" / "complaints.csv"), "visits": paths["visits"]},
        base=tmp_path,
    )  # fmt: skip
    said: list[str] = []
    r = run_once(cfg, _ms("2026-03-16T06:00:00+01:00"), Schedule(dt.time(6, 0), 0, AMS),
                 analyze=analyze, say=said.append)  # fmt: skip
    assert r.summary["complaints"]["total"] == 0 and r.summary["visits"]["total"] > 0
    assert any("complaints file" in line and "not found" in line for line in said)


@pytest.mark.parametrize("name", ["central.example.toml", "central.compose.toml"])
def test_the_shipped_configs_have_a_valid_analysis_table(name: str) -> None:
    import tomllib

    path = Path(__file__).resolve().parents[3] / "deploy" / "central" / name
    table = tomllib.loads(path.read_text())["analysis"]
    cfg = parse_config(table, base=path.parent)
    assert cfg.password_file is not None and "://" in cfg.levels
