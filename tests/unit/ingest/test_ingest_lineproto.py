"""Line-protocol encoder and the write-status sorting of ``InfluxHTTP`` (no network).

Expected strings follow the InfluxDB line protocol reference: tag keys/values and
field keys escape comma, equals sign and space with a backslash; measurements escape
comma and space; string field values are double-quoted with ``"`` and ``\\`` escaped;
integers carry an ``i`` suffix; timestamps are integers in the write precision.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from klankkast.influx import (
    InfluxHTTP,
    PayloadTooLargeError,
    PermanentWriteError,
    QueryError,
    RetryableWriteError,
    escape_measurement,
    escape_tag,
    format_field_value,
    line,
    parse_duration_ms,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("yard1", "yard1"),
        ("a b", r"a\ b"),
        ("a,b", r"a\,b"),
        ("a=b", r"a\=b"),
        ('a"b', 'a"b'),
        ("café ☕", r"café\ ☕"),
    ],
)
def test_escape_tag(raw: str, escaped: str) -> None:
    assert escape_tag(raw) == escaped


def test_measurement_keeps_equals_sign() -> None:
    assert escape_measurement("m=1 x,y") == r"m=1\ x\,y"
    with pytest.raises(ValueError):
        escape_measurement("#comment")
    # InfluxDB skips leading whitespace of a line: a name starting with a tab cannot be written
    with pytest.raises(ValueError):
        escape_measurement("\tsecond")


@pytest.mark.parametrize("bad", ["", "a\nb", "ends\\"])
def test_unrepresentable_tag_values_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        escape_tag(bad)


def test_levels_are_always_float_fields() -> None:
    """A JSON ``60`` level must not create an integer field: floats never get ``i``."""
    assert format_field_value(60.0) == "60.0"
    assert format_field_value(-20.0) == "-20.0"
    assert format_field_value(7) == "7i"
    assert format_field_value(True) == "true"
    assert format_field_value(False) == "false"
    assert format_field_value('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    # shortest round-trip decimal: float(text) gives back the same double
    for x in (0.1, 1e-300, 1e300, 10 ** (61.3 / 10)):
        assert float(format_field_value(x)) == x


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        format_field_value(bad)


def test_line_sorts_tags_skips_empty_and_needs_fields() -> None:
    lp = line(
        "second",
        {"site": "yard 1", "node": "n1", "empty": ""},
        {"LAeq": 60.0, "seq": 3},
        1_700_000_000_123,
    )
    assert lp == r"second,node=n1,site=yard\ 1 LAeq=60.0,seq=3i 1700000000123"
    with pytest.raises(ValueError):
        line("second", {}, {}, 0)


class FakeInflux(InfluxHTTP):
    """InfluxHTTP whose transport returns canned responses (our own test double)."""

    def __init__(self, responses: list[Any]) -> None:
        super().__init__("http://127.0.0.1:1", "kk")
        self.responses = responses
        self.requests: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def _request(
        self,
        method: str,
        path: str,
        params: Any,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:  # type: ignore[override]
        self.requests.append((method, path, dict(params), body))
        r = self.responses.pop(0)
        if isinstance(r, BaseException):
            raise r
        return r


def test_write_204_sends_lines_with_precision_and_rp() -> None:
    fake = FakeInflux([(204, {}, b"")])
    fake.write(["m f=1.0 1", "m f=2.0 2"], rp="raw")
    method, path, params, body = fake.requests[0]
    assert (method, path) == ("POST", "/write")
    assert params == {"db": "kk", "precision": "ms", "rp": "raw"}
    assert body == b"m f=1.0 1\nm f=2.0 2\n"


@pytest.mark.parametrize(
    ("response", "error", "retry_after"),
    [
        ((429, {"retry-after": "7"}, b"slow down"), RetryableWriteError, 7.0),
        ((503, {}, b"down"), RetryableWriteError, None),
        ((500, {"retry-after": "2.5"}, b"oops"), RetryableWriteError, 2.5),
        (ConnectionRefusedError(111, "refused"), RetryableWriteError, None),
        ((413, {}, b"too large"), PayloadTooLargeError, None),
        ((400, {}, b'{"error":"unable to parse"}'), PermanentWriteError, None),
    ],
)
def test_write_failures_are_sorted(
    response: Any, error: type[Exception], retry_after: float | None
) -> None:
    fake = FakeInflux([response])
    with pytest.raises(error) as info:
        fake.write(["m f=1.0 1"])
    if isinstance(info.value, RetryableWriteError):
        assert info.value.retry_after_s == retry_after


def test_query_flattens_series_and_raises_on_errors() -> None:
    doc = (
        b'{"results":[{"statement_id":0,"series":[{"name":"second","tags":{"node":"n1"},'
        b'"columns":["time","LAeq"],"values":[[1000,60.5],[2000,61.0]]}]}]}'
    )
    fake = FakeInflux(
        [(200, {}, doc), (200, {}, b'{"results":[{"error":"database not found: kk"}]}')]
    )
    assert fake.query("SELECT * FROM second GROUP BY node") == [
        {"name": "second", "node": "n1", "time": 1000, "LAeq": 60.5},
        {"name": "second", "node": "n1", "time": 2000, "LAeq": 61.0},
    ]
    with pytest.raises(QueryError, match="database not found"):
        fake.query("SELECT 1")


def test_token_and_basic_auth_headers() -> None:
    assert InfluxHTTP("http://h:8086", "d", token="abc")._headers["Authorization"] == "Token abc"
    basic = InfluxHTTP("http://h:8086", "d", username="u", password="p")._headers["Authorization"]
    assert basic == "Basic dTpw"  # base64("u:p")


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("720h0m0s", 30 * 86_400_000),
        ("1h30m0s", 5_400_000),
        ("0s", None),
        ("", None),
        ("168h0m0s", 7 * 86_400_000),
    ],
)
def test_retention_durations(text: str, ms: int | None) -> None:
    """InfluxDB reports policy durations as Go durations; 0s means infinite."""
    assert parse_duration_ms(text) == ms
