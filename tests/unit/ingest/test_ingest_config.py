"""Central configuration: the sample loads, bad keys and values are named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from klankkast.ingest.cli import main as ingest_main
from klankkast.ingest.config import load_central_config, parse_central_config, read_secret
from klankkast.ingest.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "deploy" / "central" / "central.example.toml"


def test_example_config_loads_with_documented_defaults() -> None:
    cfg = load_central_config(EXAMPLE)
    assert cfg.mqtt.url.startswith("mqtt")
    assert cfg.mqtt.share_group and cfg.mqtt.session_expiry_s > 0
    assert cfg.mqtt.receive_maximum > cfg.ingest.batch_points
    assert cfg.ingest.batch_points == 5000 and cfg.ingest.batch_ms == 1000
    assert cfg.influxdb.database


def test_defaults_and_other_sections_kept_raw(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(
        '[alerts]\nanything = 1\n[analysis]\nx = "y"\n[influxdb]\npassword_file = "s/pw"\nusername = "u"\n'
    )
    cfg = load_central_config(p)
    assert cfg.ingest.batch_points == 5000 and cfg.ingest.batch_ms == 1000
    assert cfg.raw == {"alerts": {"anything": 1}, "analysis": {"x": "y"}}
    assert cfg.influxdb.password_file == tmp_path / "s" / "pw"  # relative to the file


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"mqtt": {"urll": "mqtt://x"}}, "mqtt.urll"),
        ({"mqtt": {"url": "http://x"}}, "mqtt.url"),
        ({"mqtt": {"share_group": "a/b"}}, "mqtt.share_group"),
        ({"mqtt": {"receive_maximum": 70000}}, "mqtt.receive_maximum"),
        ({"mqtt": {"session_expiry_s": -1}}, "mqtt.session_expiry_s"),
        ({"influxdb": {"url": "mqtt://x"}}, "influxdb.url"),
        ({"influxdb": {"token_file": "t", "username": "u"}}, "influxdb.token_file"),
        ({"influxdb": {"password_file": "p"}}, "influxdb.username"),
        ({"ingest": {"batch_points": 0}}, "ingest.batch_points"),
        ({"ingest": {"batch_ms": "1000"}}, "ingest.batch_ms"),
        ({"ingest": {"bogus": True}}, "ingest.bogus"),
    ],
)
def test_bad_config_names_the_key(doc: dict[str, dict[str, object]], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_central_config(doc)
    assert info.value.key == key
    assert str(info.value).startswith(key) and "\n" not in str(info.value)


def test_cli_config_error_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[ingest]\nbatch_points = -5\n")
    assert ingest_main(["check", "--config", str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ingest.batch_points" in err and "-5" in err


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ingest_main(["--config", str(tmp_path / "nope.toml")]) == 1
    assert "config" in capsys.readouterr().err


def test_read_secret(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    assert read_secret("k", tmp_path / "pw") == "s3cret"
    with pytest.raises(ConfigError, match=r"influxdb\.password_file"):
        read_secret("influxdb.password_file", tmp_path / "missing")


def test_subscription_shared_or_plain() -> None:
    assert parse_central_config({}).mqtt.subscription == "$share/ingest/klankkast/v1/+/+/#"
    cfg = parse_central_config({"mqtt": {"share_group": "g2"}, "ingest": {"workers": 0}})
    assert cfg.mqtt.subscription == "$share/g2/klankkast/v1/+/+/#" and cfg.ingest.workers == 0
    assert (
        parse_central_config({"mqtt": {"share_group": ""}}).mqtt.subscription
        == "klankkast/v1/+/+/#"
    )
    with pytest.raises(ConfigError):
        parse_central_config({"ingest": {"workers": 99}})
