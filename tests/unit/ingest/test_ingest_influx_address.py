"""``[influxdb] url`` takes the one address form; the older url + database still work;
anything else is one line naming the key (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from klankkast.ingest.config import ConfigError, parse_central_config


def _influx(section: dict[str, object]) -> object:
    return parse_central_config({"influxdb": section}, Path("/etc/klankkast")).influxdb


def test_address_form() -> None:
    cfg = _influx(
        {"url": "influxdb+http://ingest@10.0.0.5:8086/noise", "password_file": "secrets/p"}
    )
    assert (cfg.url, cfg.database, cfg.username) == ("http://10.0.0.5:8086", "noise", "ingest")
    assert cfg.password_file == Path("/etc/klankkast/secrets/p")


def test_older_form_still_works() -> None:
    cfg = _influx({"url": "http://10.0.0.5:8086", "database": "noise", "username": "u"})
    assert (cfg.url, cfg.database, cfg.username) == ("http://10.0.0.5:8086", "noise", "u")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:8086/klankkast", "a plain http(s):// URL names only host and port"),
        ("influxdb+http://127.0.0.1/klankkast", "the port is missing"),
        ("influxdb+http://u:pw@127.0.0.1:8086/k", "must not be in the address"),
        ("ftp://h:1", "must be influxdb+http(s)://"),
    ],
)
def test_other_forms_are_one_line_naming_the_key(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _influx({"url": url})
    msg = str(info.value)
    assert msg.startswith("influxdb.url = ")
    assert words in msg
    assert "\n" not in msg and "pw@" not in msg


def test_database_twice_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"influxdb\.database = 'b': give it in influxdb\.url only"
    ):
        _influx({"url": "influxdb+http://h:8086/a", "database": "b"})
