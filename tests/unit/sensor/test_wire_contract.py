"""The wire contract: topics, required fields, levels only."""

from __future__ import annotations

import json

import pytest

from klankkast.sensor import wire


def _second(**over: object) -> dict[str, object]:
    frame: dict[str, object] = {
        "site": "yard1",
        "node": "n1",
        "t": 1_764_000_000_000,
        "seq": 7,
        "dur_ms": 1000,
        "LAeq": 45.2,
        "LCeq": 52.0,
        "LZeq": 55.1,
        "LAFmax": 50.3,
        "LAFmin": 40.0,
        "LASmax": 48.0,
        "LCpeak": 70.0,
        "bands": {"31.5": 40.0, "1000": 38.5},
        "overload": 0,
        "nonfinite": 0,
        "bass": 6.8,
        "impulsive": 1.2,
        "tonality": -3.0,
        "tonal_band": None,
    }
    frame.update(over)
    return frame


def test_topic_layout() -> None:
    assert wire.topic("yard1", "n1", "second") == "klankkast/v1/yard1/n1/second"
    assert wire.parse_topic("klankkast/v1/yard1/n1/minute") == ("yard1", "n1", "minute")
    assert wire.ALERT_TOPIC_FMT.format(site="yard1") == "klankkast/v1/yard1/alerts"


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "x" * 65, "-lead"])
def test_topic_refuses_ids_that_could_escape_the_tree(bad: str) -> None:
    with pytest.raises(wire.SchemaError):
        wire.topic(bad, "n1", "second")


def test_round_trip_adds_schema() -> None:
    data = wire.encode("second", _second())
    msg = wire.decode("klankkast/v1/yard1/n1/second", data)
    assert msg.payload["schema"] == 1
    assert (msg.kind, msg.site, msg.node) == ("second", "yard1", "n1")


def test_encoder_refuses_unknown_fields_so_audio_cannot_leave() -> None:
    with pytest.raises(wire.SchemaError) as err:
        wire.encode("second", _second(samples=[0.1, -0.2, 0.3]))
    assert err.value.reason == "unknown_field"
    assert "samples" in str(err.value)


def test_bands_finer_than_third_octave_are_refused() -> None:
    # 1100 Hz is not an IEC nominal one-third-octave frequency
    with pytest.raises(wire.SchemaError) as err:
        wire.encode("second", _second(bands={"1100": 30.0}))
    assert err.value.reason == "bad_band"


def test_band_values_must_be_numbers_not_arrays() -> None:
    with pytest.raises(wire.SchemaError):
        wire.encode("second", _second(bands={"1000": [1.0, 2.0]}))


def test_topic_and_payload_must_agree() -> None:
    data = wire.encode("second", _second())
    with pytest.raises(wire.SchemaError) as err:
        wire.decode("klankkast/v1/yard1/n2/second", data)
    assert err.value.reason == "topic_mismatch"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("LAeq", float("nan"), "bad_type"),
        ("LAeq", "loud", "bad_type"),
        ("seq", -1, "bad_type"),
        ("seq", True, "bad_type"),
        ("overload", 1.5, "bad_type"),
    ],
)
def test_field_types(field: str, value: object, reason: str) -> None:
    with pytest.raises(wire.SchemaError) as err:
        wire.validate("second", {"schema": 1, **_second(**{field: value})})
    assert err.value.reason == reason


def test_unknown_schema_version() -> None:
    raw = json.dumps({**_second(), "schema": 2}).encode()
    with pytest.raises(wire.SchemaError) as err:
        wire.decode("klankkast/v1/yard1/n1/second", raw)
    assert err.value.reason == "schema_version"


def test_nan_literal_in_json_is_refused() -> None:
    raw = json.dumps(_second()).replace("45.2", "NaN").encode()
    with pytest.raises(wire.SchemaError) as err:
        wire.decode("klankkast/v1/yard1/n1/second", raw)
    assert err.value.reason == "bad_json"


def test_status_states() -> None:
    status = {
        "site": "yard1",
        "node": "n1",
        "t": 0,
        "state": "offline",
        "version": "0.1.0",
        "uptime_s": 3.0,
    }
    wire.encode("status", status)
    with pytest.raises(wire.SchemaError):
        wire.encode("status", {**status, "state": "sleeping"})


def test_band_field_names() -> None:
    assert wire.band_field("31.5") == "LZeq_31p5"
    assert wire.band_field("1000") == "LZeq_1000"
    assert len(wire.BAND_NOMINALS) == 31
