"""``[alerts]``: the example config loads; bad values name the key; message formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.alert_sample import sample_alert

from klankkast.alerts import service as alerts
from klankkast.alerts.engine import Alert
from klankkast.ingest.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "central" / "central.example.toml"


def test_example_config_loads() -> None:
    _central, acfg, rules = alerts.load(EXAMPLE)
    s = acfg.settings
    assert (s.confirm_s, s.update_s, s.min_gap_s, s.late_after_s) == (300, 60, 900, 600)
    assert s.quiet.ranges["yard1"] == [(120, 420)]
    assert acfg.frames == "second" and acfg.username == "alerts"
    assert rules.window_s == 300  # the analysis' documented default


@pytest.mark.parametrize("path", sorted(EXAMPLE.parent.glob("*.toml")), ids=lambda p: p.name)
def test_every_central_sample_config_is_valid_for_the_alerts(path: Path) -> None:
    alerts.load(path)  # validation only: check would also read secrets and connect


@pytest.mark.parametrize("argv", [["check"], ["--check"]], ids=["check", "deprecated --check"])
def test_check_fails_where_a_start_would(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: ``--check`` said "configuration OK" for the example, whose secret files
    do not exist here, and a start with it then exited 1. check builds what start
    builds, so it names the missing file before any connection."""
    assert alerts.main([*argv, "--config", str(EXAMPLE)]) == 1
    err = capsys.readouterr().err
    assert "alerts.password_file = " in err and ": must be a readable file" in err
    assert "mqtt-alerts.password" in err
    assert ("deprecated" in err) == (argv == ["--check"])


def test_defaults_without_a_section() -> None:
    acfg = alerts.parse_alerts_config(None)
    assert acfg.settings.confirm_s == 300 and acfg.webhooks == ()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"confirm_s": -1}, "alerts.confirm_s"),
        ({"confirm_s": "300"}, "alerts.confirm_s"),
        ({"update_s": 0}, "alerts.update_s"),
        ({"hysteresis_db": True}, "alerts.hysteresis_db"),
        ({"quiet_hours": {"yard1": ["25:00-07:00"]}}, "alerts.quiet_hours.yard1"),
        ({"quiet_hours": ["02:00-07:00"]}, "alerts.quiet_hours"),
        ({"webhooks": [{"url": "ftp://x"}]}, "alerts.webhooks[0].url"),
        ({"webhooks": [{"url": "http://x", "format": "teams"}]}, "alerts.webhooks[0].format"),
        ({"webhooks": [{"url": "http://x", "secret": 1}]}, "alerts.webhooks[0].secret"),
        ({"frames": "hour"}, "alerts.frames"),
        ({"confrim_s": 300}, "alerts.confrim_s"),
        ({"password_file": "x"}, "alerts.username"),
    ],
)
def test_bad_values_name_the_key(raw: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        alerts.parse_alerts_config(raw)
    assert err.value.key == key
    assert "\n" not in str(err.value)


def test_cli_config_error_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "central.toml"
    cfg.write_text('[alerts]\nconfirm_s = "soon"\n')
    assert alerts.main(["--config", str(cfg)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "alerts.confirm_s" in err and "soon" in err
    rules = tmp_path / "rules.toml"
    rules.write_text("[absolute]\nnight_db = 500\n")
    cfg.write_text(f'[alerts]\nrules = "{rules}"\n')
    assert alerts.main(["--config", str(cfg)]) == 1
    assert "night_db" in capsys.readouterr().err


def test_webhook_bodies() -> None:
    assert json.loads(alerts.webhook_body(sample_alert(), "json"))["LAeq"] == 72.9
    text = json.loads(alerts.webhook_body(sample_alert(), "slack"))["text"]
    assert "yard1" in text and "started" in text and "72.9" in text


def test_influx_line() -> None:
    ln = alerts.alert_line(sample_alert("update"))
    assert ln.startswith("alert,site=yard1,state=update ")
    assert ln.endswith(" 1780000300000")
    assert "LAeq=72.9" in ln and "nodes=2i" in ln and "late=false" in ln


def test_quiet_hours_and_webhook_text_follow_the_rules_time_zone(tmp_path: Path) -> None:
    """Issue 13: the rules' timezone, not a hard-coded Europe/Amsterdam, for quiet hours
    and the webhook text. 2026-06-01T22:30Z is 23:30 in London (BST), 00:30 in Amsterdam."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[periods]\ntimezone = "Europe/London"\n')
    central = tmp_path / "central.toml"
    central.write_text(f'[alerts]\nrules = "{rules}"\nquiet_hours = {{ "*" = ["23:00-23:59"] }}\n')
    _c, acfg, r = alerts.load(central)
    assert r.timezone == "Europe/London"
    t = 1_780_353_000_000  # 2026-06-01T22:30:00Z
    assert acfg.settings.quiet.tz == "Europe/London"
    assert acfg.settings.quiet.is_quiet("yard1", t)  # 23:30 London; 00:30 Amsterdam is not
    alert = Alert("yard1", "start", {"site": "yard1", "started": t, "duration_s": 300.0,
                                     "LAeq": 61.0, "LAFmax": 75.0, "bass": 8.0, "rule": "absolute",
                                     "nodes": ["n1"]})  # fmt: skip
    text = json.loads(alerts.webhook_body(alert, "slack", r.timezone))["text"]
    assert "since Mon 01 Jun 23:30" in text
    assert "00:30" in json.loads(alerts.webhook_body(alert, "slack", "Europe/Amsterdam"))["text"]
