"""Node config: every bad value, unknown key and unreadable file gives one line naming
the key, the value and what is allowed, and the CLI exits 1 before any I/O."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from klankkast.sensor import cli
from klankkast.sensor.config import load_config, parse_config, update_calibration
from klankkast.sensor.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "deploy" / "pi" / "node.example.toml"

GOOD: dict[str, Any] = {
    "node": {"id": "n1", "site": "yard1"},
    "mqtt": {"url": "mqtt://127.0.0.1:1883"},
}


def with_(table: str, key: str, value: Any) -> dict[str, Any]:
    data = {t: dict(v) for t, v in GOOD.items()}
    data.setdefault(table, {})[key] = value
    return data


def test_defaults() -> None:
    cfg = parse_config(GOOD)
    assert cfg.audio.samplerate == 48000
    assert cfg.outbox.max_mb == 2048
    assert cfg.mqtt.port == 1883 and not cfg.mqtt.tls
    assert cfg.client_id == "klankkast-yard1-n1"


def test_mqtts_url_and_default_port() -> None:
    cfg = parse_config(with_("mqtt", "url", "mqtts://broker.example.nl"))
    assert cfg.mqtt.tls and cfg.mqtt.port == 8883 and cfg.mqtt.host == "broker.example.nl"


@pytest.mark.parametrize(
    ("table", "key", "value", "allowed"),
    [
        ("node", "id", "bad id!", "A-Za-z0-9"),
        ("node", "site", "", "A-Za-z0-9"),
        ("audio", "samplerate", 22050, "16000, 32000, 44100, 48000"),
        ("audio", "samplerate", "48000", "16000, 32000, 44100, 48000"),
        ("audio", "block_ms", 3, "from 10 to 1000"),
        ("audio", "block_ms", 30, "divisor of 1000"),
        ("audio", "channel", -1, "from 0 to 31"),
        ("audio", "device", True, "device name"),
        ("calibration", "offset_db", "94", "number"),
        ("calibration", "offset_db", float("nan"), "number"),
        ("calibration", "calibrated_at", "yesterday", "ISO 8601"),
        ("mqtt", "url", "http://broker:1883", "mqtt://host:port or mqtts://host:port"),
        ("mqtt", "url", "mqtt://broker:99999", "mqtt://host:port"),
        ("mqtt", "ca_file", "ca.pem", "mqtts://"),
        ("mqtt", "keepalive_s", 1, "from 5 to 3600"),
        ("mqtt", "password_file", "pw", "set when mqtt.password_file is set"),
        ("outbox", "max_mb", 0, "from 0.01"),
        ("outbox", "max_mb", -5, "from 0.01"),
    ],
)
def test_bad_value_names_key_value_and_allowed(
    table: str, key: str, value: Any, allowed: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_(table, key, value))
    msg = str(err.value)
    assert "\n" not in msg
    assert allowed in msg
    if key != "password_file":
        assert f"{table}.{key}" in msg
        assert repr(value) in msg


def test_unknown_key_and_table_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"audio\.rate = 48000: unknown key.*samplerate"):
        parse_config(with_("audio", "rate", 48000))
    with pytest.raises(
        ConfigError, match=r"audio\.sampelrate = 48000: unknown key; did you mean 'samplerate'\?"
    ):
        parse_config(with_("audio", "sampelrate", 48000))
    with pytest.raises(ConfigError, match=r"influx = \{\}: unknown table"):
        parse_config({**GOOD, "influx": {}})


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.url = \(missing\): required"):
        parse_config({"node": {"id": "n1", "site": "s"}})


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "node.toml"
    p.write_text(text)
    return p


BASE = '[node]\nid = "n1"\nsite = "yard1"\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'


def test_unreadable_password_file(tmp_path: Path) -> None:
    p = write(tmp_path, BASE + 'username = "yard1-n1"\npassword_file = "missing.pw"\n')
    with pytest.raises(
        ConfigError, match=r"mqtt\.password_file = '.*missing\.pw': must be a readable"
    ):
        load_config(p)
    (tmp_path / "dir.pw").mkdir()  # a directory: unreadable even for root
    p = write(tmp_path, BASE + 'username = "yard1-n1"\npassword_file = "dir.pw"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.password_file"):
        load_config(p)


def test_relative_paths_resolve_against_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    p = write(
        tmp_path, BASE + 'username = "u"\npassword_file = "pw"\n[outbox]\npath = "o.sqlite"\n'
    )
    cfg = load_config(p)
    assert cfg.mqtt.password_file == tmp_path / "pw"
    assert cfg.outbox.path == tmp_path / "o.sqlite"


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[node\nid=1"))
    assert "must be valid TOML" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("command", ["run", "check", "simulate", "calibrate"])
def test_cli_exits_1_with_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = write(tmp_path, BASE.replace('"n1"', '"bad id"'))
    extra = {"simulate": ["--duration", "1"], "calibrate": ["--reference-db", "94"]}
    assert cli.main([command, "--config", str(p), *extra.get(command, [])]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "node.id" in err and "'bad id'" in err


def test_example_config_documents_and_loads(tmp_path: Path) -> None:
    """deploy/pi/node.example.toml parses, and every key of the schema appears in it."""
    from klankkast.sensor.config import SCHEMA

    data = tomllib.loads(EXAMPLE.read_text())
    cfg = parse_config(data, tmp_path)
    assert cfg.node.site and cfg.mqtt.url
    text = EXAMPLE.read_text()
    for table, keys in SCHEMA.items():
        assert f"[{table}]" in text
        for key in keys:
            assert f"{key} =" in text, f"{table}.{key} is not documented in the example"


def test_update_calibration_keeps_comments_and_other_keys(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "# my node\n"
        + BASE
        + "\n[calibration]\n# from the lab\noffset_db = 120.0\n\n[outbox]\nmax_mb = 10\n",
    )
    update_calibration(p, 118.25, "2026-11-29T21:00:00+00:00")
    text = p.read_text()
    assert "# my node" in text and "# from the lab" in text
    cfg = load_config(p)
    assert cfg.calibration.offset_db == 118.25
    assert cfg.calibration.calibrated_at == "2026-11-29T21:00:00+00:00"
    assert cfg.outbox.max_mb == 10
    p2 = write(tmp_path, BASE)
    update_calibration(p2, 100.0, "2026-11-29")
    assert load_config(p2).calibration.offset_db == 100.0


def test_every_problem_of_the_file_in_one_run() -> None:
    """Four bad values, an unknown key and two missing required keys: one ConfigError with
    seven lines, table by table, each ``key = value: allowed`` (the shared checker, klankkast.configcheck)."""
    data = {
        "node": {"id": "bad id!"},
        "audio": {"samplerate": 22050, "block_ms": 30, "chanel": 1},
        "outbox": {"max_mb": -5},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    lines = str(err.value).splitlines()
    assert [e.key for e in err.value.errors] == [
        "node.id",
        "node.site",
        "audio.chanel",
        "audio.samplerate",
        "audio.block_ms",
        "mqtt.url",
        "outbox.max_mb",
    ]
    assert len(lines) == 7
    assert lines[1] == "node.site = (missing): required; add it to [node]"
    assert "audio.chanel = 1: unknown key; did you mean 'channel'?" in lines[2]
    assert (
        lines[4] == "audio.block_ms = 30: must be a divisor of 1000 (10, 20, 25, 40, 50, 100, ...)"
    )
