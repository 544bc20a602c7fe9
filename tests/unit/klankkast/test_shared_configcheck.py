"""The one config checker: typed keys, ranges, allowed values, "did you mean", every
problem of a file in one run, one message form ``key = value: allowed`` — and every part
(node, ingest, alerts, rules) uses it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from klankkast import configcheck as cc

SCHEMA: cc.Schema = {
    "ingest": {
        "batch_ms": cc.integer(1000, 1, 60000, " ms"),
        "timeout_s": cc.number(10.0, 0.1, 600.0, " s"),
        "topic": cc.string("t"),
        "acks": cc.boolean(True),
        "mode": cc.choice("fast", ("fast", "plain")),
        "site": cc.string(cc.MISSING),
    }
}


def check(doc: dict[str, Any], **kw: Any) -> tuple[dict[str, dict[str, Any]], list[str]]:
    problems = cc.Problems()
    values = cc.check_all(doc, SCHEMA, problems, **kw)
    return values, [str(e) for e in problems.errors]


def test_defaults_and_types() -> None:
    values, errors = check({"ingest": {"site": "yard1", "timeout_s": 5}})
    assert errors == []
    assert values["ingest"] == {
        "batch_ms": 1000,
        "timeout_s": 5.0,
        "topic": "t",
        "acks": True,
        "mode": "fast",
        "site": "yard1",
    }
    assert isinstance(values["ingest"]["timeout_s"], float)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch_ms", -5, "ingest.batch_ms = -5: must be an integer from 1 to 60000 ms"),
        ("batch_ms", True, "ingest.batch_ms = True: must be an integer from 1 to 60000 ms"),
        ("batch_ms", 1.0, "ingest.batch_ms = 1.0: must be an integer from 1 to 60000 ms"),
        ("timeout_s", math.nan, "ingest.timeout_s = nan: must be a number from 0.1 to 600 s"),
        ("timeout_s", "5", "ingest.timeout_s = '5': must be a number from 0.1 to 600 s"),
        ("topic", "", "ingest.topic = '': must be a non-empty string"),
        ("acks", 1, "ingest.acks = 1: must be true or false"),
        ("mode", "slow", "ingest.mode = 'slow': must be one of fast, plain"),
        ("mdoe", "fast", "ingest.mdoe = 'fast': unknown key; did you mean 'mode'? allowed: "
                         "batch_ms, timeout_s, topic, acks, mode, site"),
    ],
)  # fmt: skip
def test_one_message_form(key: str, value: Any, message: str) -> None:
    _, errors = check({"ingest": {"site": "s", key: value}})
    assert errors == [message]


def test_missing_required_and_unknown_tables() -> None:
    _, errors = check({"ingset": {}})
    assert errors == [
        "ingset = {}: unknown table; did you mean 'ingest'? allowed: [ingest]",
        "ingest.site = (missing): required; add it to [ingest]",
    ]
    _, errors = check({"ingest": {"site": "s"}, "alerts": {}}, other_tables="ignore")
    assert errors == []


def test_every_problem_in_one_error_each_on_its_own_line() -> None:
    """Four problems in one file: one ConfigError whose ``errors`` holds all four and whose
    message has one line each, in the order of the file's tables and the schema's keys."""
    problems = cc.Problems("central.toml")
    cc.check_all({"ingest": {"batch_ms": 0, "acks": "yes", "bogus": 1}}, SCHEMA, problems)
    with pytest.raises(cc.ConfigError) as err:
        problems.raise_as(cc.ConfigError)
    assert [e.key for e in err.value.errors] == [
        "ingest.bogus",
        "ingest.batch_ms",
        "ingest.acks",
        "ingest.site",
    ]
    lines = str(err.value).splitlines()
    assert len(lines) == 4 and all(line.startswith("central.toml: ingest.") for line in lines)
    assert (err.value.key, err.value.value) == ("ingest.bogus", 1)  # the first


def test_no_problem_raises_nothing_and_a_check_runs_after_the_type() -> None:
    cc.Problems().raise_as(cc.ConfigError)
    even = cc.integer(2, 0, 10, check=lambda v: None if v % 2 == 0 else "must be even")
    assert even.parse(4) == (4, None)
    assert even.parse(3) == (3, "must be even")
    assert even.parse("3") == ("3", "must be an integer from 0 to 10")


def test_present_only_leaves_out_absent_and_bad_keys() -> None:
    problems = cc.Problems()
    values = cc.check_all(
        {"ingest": {"acks": False, "mode": 3}}, SCHEMA, problems, present_only=True
    )
    assert values == {"ingest": {"acks": False}}
    assert [e.key for e in problems.errors] == ["ingest.mode", "ingest.site"]


def test_resolve_path(tmp_path: Path) -> None:
    assert cc.resolve_path(None, tmp_path) is None
    assert cc.resolve_path("a/b", tmp_path) == tmp_path / "a" / "b"
    assert cc.resolve_path("/etc/x", tmp_path) == Path("/etc/x")


# -- every part uses it ------------------------------------------------------------
def test_the_parts_raise_their_own_config_error_as_a_checker_error(tmp_path: Path) -> None:
    """Each part's ConfigError is the checker's (so one ``except`` fits all) and each part
    reports several problems of one file in one run."""
    from klankkast.alerts.service import parse_alerts_config
    from klankkast.analysis.errors import ConfigError as AnalysisConfigError
    from klankkast.analysis.rules import load_rules
    from klankkast.ingest.config import parse_central_config
    from klankkast.ingest.errors import ConfigError as IngestConfigError
    from klankkast.sensor.config import parse_config
    from klankkast.sensor.errors import ConfigError as SensorConfigError

    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[absolute]\nnight_db = 500\nnigth_db = 40\n[periods]\ntimezone = 'Mars/Olympus'\n"
    )
    cases = [
        (SensorConfigError, lambda: parse_config({"node": {"id": "!"}, "mqtt": {}}), 3),
        (
            IngestConfigError,
            lambda: parse_central_config({"ingest": {"batch_ms": 0, "workers": 99}}),
            2,
        ),
        (
            IngestConfigError,
            lambda: parse_alerts_config({"confirm_s": -1, "webhooks": [{"url": "ftp://x"}]}),
            2,
        ),
        (AnalysisConfigError, lambda: load_rules(rules), 3),
    ]
    for cls, parse, n in cases:
        assert issubclass(cls, cc.ConfigError)
        with pytest.raises(cls) as err:
            parse()
        assert len(err.value.errors) == n, str(err.value)
        assert len(str(err.value).splitlines()) == n
        assert all(" = " in line and ": " in line for line in str(err.value).splitlines())
