"""Ingest-side validation and the mapping of frames to InfluxDB points."""

from __future__ import annotations

import json
from typing import Any

import pytest

from klankkast.ingest.validate import (
    T_MIN_MS,
    is_ignored_topic,
    rejection_payload,
    to_points,
    to_points_generic,
    validate_message,
)
from klankkast.sensor import wire

NOW_MS = 1_800_000_000_000  # 2027-01-15, the ingest's clock in these tests


def second(**over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "schema": 1, "site": "yard1", "node": "n1", "t": NOW_MS - 60_000, "seq": 42, "dur_ms": 1000,
        "LAeq": 60, "LCeq": 63.5, "LZeq": 70.0, "LAFmax": 66.0, "LAFmin": 55.0, "LASmax": 64.0,
        "LCpeak": 90.0, "bands": {"31.5": 50.0, "1000": 57}, "overload": 0, "nonfinite": 0,
        "bass": 3.5, "impulsive": 0.0, "tonality": -1.0,
    }  # fmt: skip
    p.update(over)
    return p


def decode(payload: dict[str, Any], topic: str = "klankkast/v1/yard1/n1/second") -> wire.Message:
    return validate_message(topic, json.dumps(payload).encode(), NOW_MS)


def fields(lp: str) -> dict[str, str]:
    _head, body, _t = lp.split(" ")
    return dict(kv.split("=", 1) for kv in body.split(","))


def test_second_frame_point() -> None:
    (pt,) = to_points(decode(second()))
    assert pt.rp == "raw"
    head, _body, t = pt.line.split(" ")
    assert head == "second,node=n1,site=yard1"
    assert int(t) == NOW_MS - 60_000  # the interval start, so redelivery overwrites
    f = fields(pt.line)
    assert f["LAeq"] == "60.0"  # JSON 60 is written as a float field
    assert f["LZeq_1000"] == "57.0"
    assert f["LZeq_31p5"] == "50.0"
    assert f["seq"] == "42i" and f["overload"] == "0i" and f["dur_ms"] == "1000i"
    assert "tonal_band" not in f
    assert not {"schema", "site", "node", "t", "bands"} & set(f)


def test_energy_companions() -> None:
    """L = 60 dB is a mean square 10^6 times the reference: LAeq_e = 1e6 (10^(L/10))."""
    f = fields(to_points(decode(second(LAeq=60.0, LCeq=70.0, LZeq=-10.0)))[0].line)
    assert float(f["LAeq_e"]) == pytest.approx(1e6, rel=1e-12)
    assert float(f["LCeq_e"]) == pytest.approx(1e7, rel=1e-12)
    assert float(f["LZeq_e"]) == pytest.approx(0.1, rel=1e-12)
    assert "LAFmax_e" not in f


def test_energy_average_of_companions_is_the_correct_leq() -> None:
    """30 s at 40 dB + 30 s at 70 dB: 10*log10(mean(10^(L/10))) = 67.0 dB, not 55."""
    import math

    es = [
        float(fields(to_points(decode(second(LAeq=L)))[0].line)["LAeq_e"])
        for L in [40.0] * 30 + [70.0] * 30
    ]
    assert 10 * math.log10(sum(es) / len(es)) == pytest.approx(67.0, abs=0.02)


def test_tonal_band_is_a_string_field_only_when_present() -> None:
    f = fields(to_points(decode(second(tonal_band="1000")))[0].line)
    assert f["tonal_band"] == '"1000"'
    f = fields(to_points(decode(second(tonal_band=None)))[0].line)
    assert "tonal_band" not in f


def test_fast_encoder_equals_generic_encoder() -> None:
    for payload in (second(), second(tonal_band="31.5", LAeq=-20, LCpeak=200)):
        msg = decode(payload)
        fast, generic = to_points(msg)[0], to_points_generic(msg)[0]
        assert fast.rp == generic.rp
        assert fields(fast.line) == fields(generic.line)
        assert fast.line.split(" ")[0] == generic.line.split(" ")[0]


def test_minute_and_status_points() -> None:
    minute = {k: v for k, v in second().items() if k not in ("LASmax", "LCpeak")}
    minute.update({"LA10": 62.0, "LA50": 58.0, "LA90": 55.5, "LA95": 55.0, "dur_ms": 60_000})
    (pt,) = to_points(decode(minute, "klankkast/v1/yard1/n1/minute"))
    assert pt.rp == "forever" and pt.line.startswith("minute,node=n1,site=yard1 ")
    assert fields(pt.line)["LA90"] == "55.5"
    status = {"schema": 1, "site": "yard1", "node": "n1", "t": NOW_MS, "state": "online",
              "version": "0.1.0", "uptime_s": 12, "clock_synced": True, "xruns": 2, "error": None}  # fmt: skip
    (pt,) = to_points(decode(status, "klankkast/v1/yard1/n1/status"))
    assert pt.rp is None  # the database's default policy
    f = fields(pt.line)
    assert f["state"] == '"online"' and f["clock_synced"] == "true" and f["xruns"] == "2i"
    assert f["uptime_s"] == "12.0" and "error" not in f


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"LAeq": 200.01}, "level_range"),
        ({"LAFmin": -20.5}, "level_range"),
        ({"bands": {"1000": 250.0}}, "level_range"),
        ({"t": NOW_MS + 5 * 60_000 + 1}, "t_future"),
        ({"t": T_MIN_MS - 1}, "t_past"),
        ({"schema": 2}, "schema_version"),
        ({"node": "n2"}, "topic_mismatch"),
        ({"LAeq": "60"}, "bad_type"),
    ],
)
def test_rejections_have_reasons(over: dict[str, Any], reason: str) -> None:
    with pytest.raises(wire.SchemaError) as info:
        decode(second(**over))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "over",
    [
        {"LAeq": 200.0, "LCpeak": 200},
        {"LAFmin": -20.0},
        {"t": NOW_MS + 5 * 60_000},
        {"t": T_MIN_MS},
    ],
)
def test_boundaries_are_inclusive(over: dict[str, Any]) -> None:
    decode(second(**over))


def test_beyond_retention_second_frames() -> None:
    msg = json.dumps(second(t=NOW_MS - 31 * 86_400_000)).encode()
    with pytest.raises(wire.SchemaError) as info:
        validate_message("klankkast/v1/yard1/n1/second", msg, NOW_MS, 30 * 86_400_000)
    assert info.value.reason == "beyond_retention"


def test_alert_topic_is_ignored_not_rejected() -> None:
    assert is_ignored_topic("klankkast/v1/yard1/alerts")
    assert not is_ignored_topic("klankkast/v1/yard1/n1/second")
    assert not is_ignored_topic("klankkast/v1/yard1/n1/alerts")


def test_rejection_payload_truncates() -> None:
    body = rejection_payload("bad_json", "klankkast/v1/a/b/second", b"x" * 5000 + b"\xff", 100)
    assert body["reason"] == "bad_json" and body["topic"] == "klankkast/v1/a/b/second"
    assert len(body["payload"]) == 101 and body["payload"].startswith("x" * 100)
    json.dumps(body)
