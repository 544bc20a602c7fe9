"""``[courtyard.influxdb] url`` takes the one address form too (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from klankkast.courtyard.config import parse_config
from klankkast.courtyard.errors import ConfigError


def _doc(influxdb: dict[str, object]) -> dict[str, object]:
    return {"courtyard": {"secret_file": "key", "sites": {"yard1": "Hof"}, "influxdb": influxdb}}


def test_address_form_names_read_user_and_database() -> None:
    cfg = parse_config(
        _doc({"url": "influxdb+https://courtyard_read@db.example.nl:8086/noise"}), base=Path("/")
    )
    i = cfg.influxdb
    assert (i.url, i.database, i.username) == (
        "https://db.example.nl:8086",
        "noise",
        "courtyard_read",
    )


def test_older_form_still_works() -> None:
    cfg = parse_config(_doc({"url": "http://h:8086", "database": "d"}), base=Path("/"))
    assert (cfg.influxdb.url, cfg.influxdb.database) == ("http://h:8086", "d")


@pytest.mark.parametrize(
    "url", ["http://h:8086/klankkast", "influxdb+http://h/klankkast", "influxdb+http://u:pw@h:1/d"]
)
def test_other_forms_are_one_line(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_doc({"url": url}), base=Path("/"))
    msg = str(info.value)
    assert "influxdb.url" in msg and "influxdb+http(s)://" in msg
    assert "\n" not in msg and ":pw@" not in msg


@pytest.mark.parametrize(
    "influxdb",
    [{"url": "http://h:8086", "database": "noise"}, {"url": "influxdb+http://u@h:8086/noise"}],
)
def test_the_influx_database_is_not_the_invitation_store(influxdb: dict[str, object]) -> None:
    """[courtyard] database (SQLite) and [courtyard.influxdb] database are two things."""
    doc = _doc(influxdb)
    doc["courtyard"]["database"] = "inv.sqlite"  # type: ignore[index]
    cfg = parse_config(doc, base=Path("/srv"))
    assert cfg.database == Path("/srv/inv.sqlite")
    assert cfg.influxdb.database == "noise"
