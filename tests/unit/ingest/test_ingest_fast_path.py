"""The fast path of ``encode_chunk`` decides exactly as the general path.

``klankkast.ingest._fastframe.fast_frame`` only ever accepts; whatever it does not
accept takes the general path (``wire.decode`` -> ``check_ranges`` -> ``_fast_line``).
The reference here is that general path alone (the fast path switched off), so every
result tuple -- accept/reject, reason, message, the line's point -- must be identical.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klankkast.ingest import validate as v
from klankkast.ingest._fastframe import fast_frame
from klankkast.sensor import wire

NOW_MS = 1_800_000_000_000
RAW_MS = 30 * 86_400_000
TOPIC = "klankkast/v1/yard1/n1/second"


def second(**over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "schema": 1, "site": "yard1", "node": "n1", "t": NOW_MS - 60_000, "seq": 42,
        "dur_ms": 1000, "LAeq": 60, "LCeq": 63.5, "LZeq": 70.0, "LAFmax": 66.0,
        "LAFmin": 55.0, "LASmax": 64.0, "LCpeak": 90.0,
        "bands": {n: 40.0 + k * 0.7 for k, n in enumerate(wire.BAND_NOMINALS)},
        "overload": 0, "nonfinite": 0, "bass": 3.5, "impulsive": 0, "tonality": -1.0,
    }  # fmt: skip
    p.update(over)
    return p


def minute(**over: Any) -> dict[str, Any]:
    p = second(t=NOW_MS - 120_000, LA10=62.0, LA50=58.0, LA90=52.5, LA95=51)
    p.update(over)
    return p


def general(items: list[tuple[str, bytes]], raw_ms: int | None = RAW_MS) -> list[Any]:
    """The general path alone: ``encode_chunk`` with ``[ingest] fast_paths = false``."""
    return list(v.encode_chunk(items, NOW_MS, raw_ms, fast=False))


def parse_line(lp: str) -> tuple[str, list[tuple[str, Any]], int]:
    """A line of the encoders as (head, [(field, value)] sorted, t).

    The fast path writes the same fields with the same values, grouped by type: line
    protocol does not care about the order of fields.
    """
    head, body, t = lp.split(" ")
    out: list[tuple[str, Any]] = []
    for kv in body.split(","):
        key, text = kv.split("=", 1)
        if text.endswith("i"):
            out.append((key, ("int", int(text[:-1]))))
        elif text.startswith('"'):
            out.append((key, ("str", text)))
        else:
            assert text.lstrip("-")[:1].isdigit() and "E" not in text, text
            out.append((key, ("float", float(text))))
    assert len(out) == len({k for k, _ in out})
    return head, sorted(out), int(t)


def normal(results: list[Any]) -> list[Any]:
    return [
        (*r[:2], parse_line(r[2]), *r[3:]) if r[0] is True else r  # type: ignore[misc]
        for r in results
    ]


def assert_same(items: list[tuple[str, bytes]], raw_ms: int | None = RAW_MS) -> list[Any]:
    fast = v.encode_chunk(items, NOW_MS, raw_ms)
    assert normal(fast) == normal(general(items, raw_ms))
    return fast


def enc(p: Any) -> bytes:
    return json.dumps(p).encode()


def test_valid_frames_take_the_fast_path_and_match() -> None:
    cases = [
        (TOPIC, enc(second())),
        (TOPIC, enc(second(tonal_band=None))),
        (TOPIC, enc(second(tonal_band="31.5"))),
        (TOPIC, enc(second(bands={}))),
        (TOPIC, enc(second(bands={"1000": 57, "31.5": -20, "20": 200}))),
        ("klankkast/v1/yard1/n1/minute", enc(minute())),
        ("klankkast/v1/yard1/n1/minute", enc(minute(LASmax=None))),
        ("klankkast/v1/yard1/n1/minute", enc(minute(tonal_band="1000"))),
    ]
    for topic, data in cases:
        assert fast_frame(topic, data, NOW_MS, RAW_MS) is not None or b"null" in data
    out = assert_same(cases)
    assert all(r[0] is True for r in out[:5])


@pytest.mark.parametrize(
    "over",
    [
        {"schema": 2}, {"schema": True}, {"schema": 1.0}, {"site": "yard2"}, {"node": 1},
        {"t": NOW_MS + 300_001}, {"t": NOW_MS + 300_000}, {"t": 1_577_836_799_999},
        {"t": NOW_MS - RAW_MS - 1}, {"t": -1}, {"t": 1.5}, {"t": True}, {"seq": -1},
        {"seq": None}, {"dur_ms": "1000"}, {"overload": False}, {"LAeq": 200.0001},
        {"LAeq": -20.0}, {"LAeq": 200}, {"LAeq": -20.5}, {"LAeq": True}, {"LAeq": None},
        {"LAeq": "60"}, {"LCpeak": 1e999}, {"LCpeak": -1e999}, {"bass": 1e999},
        {"bass": 1e308}, {"tonality": None}, {"impulsive": [1]}, {"tonal_band": "999"},
        {"tonal_band": 1000}, {"tonal_band": ["1000"]}, {"tonal_band": {"a": 1}},
        {"bands": []}, {"bands": None}, {"bands": {"999": 40.0}}, {"bands": {"1000": True}},
        {"bands": {"1000": 201.0}}, {"bands": {"1000": 1e999}}, {"bands": {"1000": None}},
        {"extra": 1}, {"LA10": 50.0}, {"bass": 10**400},
    ],
)  # fmt: skip
def test_mutations_decide_as_the_general_path(over: dict[str, Any]) -> None:
    assert_same([(TOPIC, enc(second(**over)))])
    assert_same([(TOPIC, enc(second(**over)))], raw_ms=None)


def test_missing_fields_bad_json_topics_sizes_and_number_spellings() -> None:
    items: list[tuple[str, bytes]] = []
    for key in second():
        p = second()
        del p[key]
        items.append((TOPIC, enc(p)))
    items += [
        (TOPIC, b"{"),
        (TOPIC, b"[]"),
        (TOPIC, b"\xef\xbb\xbf" + enc(second())),
        (TOPIC, enc(second()).replace(b"63.5", b"NaN")),
        (TOPIC, enc(second()).replace(b"63.5", b"Infinity")),
        (TOPIC, enc(second()).replace(b"63.5", b"1e999")),  # a finite literal parsed as inf
        (TOPIC, enc(second()).replace(b"3.5", b"-1e999")),
        (TOPIC, enc(second()).replace(b'"seq": 42', b'"seq": 1e2')),
        (TOPIC, enc(second()) + b" " * 20_000),
        (TOPIC, "\ufeff".encode("utf-16") + enc(second())),
        ("klankkast/v1/yard1/n1/status", enc(second())),
        ("klankkast/v1/yard1/alerts", enc(second())),
        ("klankkast/v1/yard1/n 1/second", enc(second())),
        ("klankkast/v2/yard1/n1/second", enc(second())),
        ("klankkast/v1/yard1/n1/hour", enc(second())),
    ]
    assert_same(items)
    spellings = [
        (TOPIC, enc(second()).replace(b"63.5", b"6.35E1")),
        (TOPIC, enc(second()).replace(b"63.5", b"6.35e+1")),
        (TOPIC, enc(second()).replace(b"63.5", b"63.50000000000000000000000001")),
        (TOPIC, enc(second()).replace(b"63.5", b"-0.0")),
        (TOPIC, enc(second(tonal_band="x")).replace(b'"x"', b"31.5")),  # a number, not a band
        (TOPIC, enc(second(site="1.5")).replace(b'"1.5"', b"1.5")),
    ]
    out = assert_same(spellings)
    assert [r[0] for r in out] == [True, True, True, True, False, False]


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.sampled_from([-20.0, 200.0, -20.000001, 200.000001, 0, 60, "60", "1000"]),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(sorted({*wire.MINUTE_REQUIRED, *wire.MINUTE_OPTIONAL, "x"})),
    value=_values,
    band=st.sampled_from([*wire.BAND_NOMINALS, "21"]),
    band_value=_values,
    kind=st.sampled_from(["second", "minute"]),
)
def test_random_mutations_decide_as_the_general_path(
    key: str, value: Any, band: str, band_value: Any, kind: str
) -> None:
    p = second() if kind == "second" else minute()
    p[key] = value
    p2 = second() if kind == "second" else minute()
    p2["bands"] = {**p2["bands"], band: band_value}
    topic = f"klankkast/v1/yard1/n1/{kind}"
    assert_same([(topic, enc(p)), (topic, enc(p2))])
