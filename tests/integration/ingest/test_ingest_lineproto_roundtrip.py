"""Property: whatever tags, field values and measurement names the encoder accepts,
the real InfluxDB stores and returns exactly (line protocol escaping is right)."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klankkast.influx import InfluxHTTP, line, quote_ident

SPECIALS = [" ", ",", "=", '"', "'", "\\", "é", "漢", "☕", "\t"]
# printable unicode plus the characters line protocol must escape; no control characters
# other than tab, no surrogates; a value may not end with a backslash (not expressible)
_chars = st.one_of(
    st.sampled_from(SPECIALS),
    st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x2FFFF),
)
tag_text = st.text(_chars, min_size=1, max_size=20).filter(lambda s: not s.endswith("\\"))
field_value = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(
        st.one_of(
            st.sampled_from([*SPECIALS, "\n"]), st.characters(blacklist_categories=("Cs", "Cc"))
        ),
        max_size=30,
    ),
)


def test_line_protocol_round_trips_through_influxdb(influxdb: Any) -> None:
    client = InfluxHTTP(influxdb.url, "prop")
    client.query_raw('CREATE DATABASE "prop"', db="")
    times = itertools.count(1_700_000_000_000)

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        # measurement names are klankkast's own constants; exercise the characters the
        # encoder escapes (space, comma) and unicode. Names line protocol cannot express
        # (leading '#' or whitespace) are refused, checked in tests/unit/ingest.
        measurement=st.text(st.sampled_from("ab_0 ,é漢"), min_size=1, max_size=12).filter(
            lambda s: not s[:1].isspace()
        ),
        site=tag_text,
        node=tag_text,
        level=st.floats(min_value=-20, max_value=200),
        other=field_value,
    )
    def roundtrip(measurement: str, site: str, node: str, level: float, other: Any) -> None:
        t_ms = next(times)
        # one field name per type: a field's type is fixed per shard in InfluxDB
        key = f"v_{type(other).__name__}"
        client.write(
            [line(measurement, {"site": site, "node": node}, {"LAeq": level, key: other}, t_ms)]
        )
        rows = client.query(f"SELECT * FROM {quote_ident(measurement)} WHERE time = {t_ms}ms")
        assert len(rows) == 1, rows
        row = rows[0]
        assert row["name"] == measurement
        assert row["site"] == site and row["node"] == node
        # InfluxDB's JSON prints an integral float without a point ("23407425222202470"),
        # which Python parses as an int: compare floats as floats
        assert float(row["LAeq"]) == level
        assert (float(row[key]) if isinstance(other, float) else row[key]) == other

    roundtrip()
    client.close()
