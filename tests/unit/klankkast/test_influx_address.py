"""One InfluxDB address form everywhere: ``influxdb+http(s)://[user@]host:port/db``
(issue 17: three spellings, and ``http://host:8086/db`` gave a traceback)."""

from __future__ import annotations

import pytest

from klankkast.influx import ADDRESS_FORM, AddressError, InfluxAddress, parse_address


def test_full_address() -> None:
    a = parse_address("influxdb+https://ingest@influx.example.nl:8443/klankkast")
    assert a == InfluxAddress("https", "influx.example.nl", 8443, "klankkast", "ingest")
    assert a.url == "https://influx.example.nl:8443"
    assert str(a) == "influxdb+https://ingest@influx.example.nl:8443/klankkast"


def test_without_user_and_ipv6() -> None:
    a = parse_address("influxdb+http://[::1]:8086/db")
    assert (a.host, a.port, a.database, a.username) == ("::1", 8086, "db", None)
    assert a.url == "http://[::1]:8086"
    assert parse_address(str(a)) == a


def test_user_is_percent_decoded() -> None:
    assert parse_address("influxdb+http://r%40x@h:1/db").username == "r@x"


def test_allowed_options_only() -> None:
    a = parse_address("influxdb+http://h:8086/db?measurement=second", options=("measurement",))
    assert a.option("measurement") == "second"
    assert a.option("other", "x") == "x"
    with pytest.raises(AddressError, match="unknown option 'measurement'"):
        parse_address("influxdb+http://h:8086/db?measurement=second")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("http://127.0.0.1:8086/klankkast", "write influxdb+http:// instead of http://"),
        ("https://h:8086", "write influxdb+https:// instead of https://"),
        ("influxdb://h:8086/db", "scheme must be influxdb+http or influxdb+https"),
        ("influxdb+http://h/db", "the port is missing"),
        ("influxdb+http://h:99999/db", "the port is not a number"),
        ("influxdb+http://h:8086", "the database is missing"),
        ("influxdb+http://h:8086/", "the database is missing"),
        ("influxdb+http://h:8086/a/b", "one name"),
        ("influxdb+http://:8086/db", "the host is missing"),
        ("influxdb+http://@h:8086/db", "user name before '@' is empty"),
        ("influxdb+http://h:8086/db#x", "fragment"),
        ("influxdb+http://h:8086/d b", "white space"),
        ("", "empty"),
    ],
)
def test_other_forms_get_one_line(text: str, why: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_address(text)
    msg = str(info.value)
    assert why in msg
    assert ADDRESS_FORM in msg
    assert "\n" not in msg


def test_a_password_in_the_address_is_refused_and_never_shown() -> None:
    with pytest.raises(AddressError) as info:
        parse_address("influxdb+http://ingest:s3cret@h:8086/db")
    assert "password" in str(info.value)
    assert "s3cret" not in str(info.value)
    assert "***" in info.value.shown


def test_client_takes_the_password_only_with_a_user() -> None:
    with_user = parse_address("influxdb+http://u@h:8086/db").client("pw")
    assert with_user._headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in parse_address("influxdb+http://h:8086/db").client("pw")._headers


@pytest.mark.parametrize("text", ["influxdb+http://[::1:8086/db", "http://[::1"])
def test_an_unclosed_ipv6_bracket_is_one_line_not_a_traceback(text: str) -> None:
    from klankkast.influx import AddressError, check_url_value, parse_address

    with pytest.raises(AddressError, match="influxdb\\+http\\(s\\)://"):
        parse_address(text)
    assert check_url_value(text) is not None
