"""The broker keeps the ingest's session over a weekend (issue 17)."""

from __future__ import annotations

from pathlib import Path


def test_session_expiry_outlasts_a_weekend() -> None:
    """Issue 17: the default (and the example) kept a session 1 h, so an ingest down
    for more than an hour lost the frames queued for it. Friday 18:00 to Monday 09:00
    is 63 h; the default is 3 days = 259200 s."""
    import tomllib

    from klankkast.ingest.config import MqttConfig

    weekend_s = 63 * 3600
    assert MqttConfig().session_expiry_s == 3 * 86_400 >= weekend_s
    example = Path(__file__).resolve().parents[3] / "deploy/central/central.example.toml"
    text = example.read_text()
    assert tomllib.loads(text)["mqtt"]["session_expiry_s"] == 259_200
    assert "DROPS the messages" in text  # the reason stands next to the value
    conf = (example.parents[1] / "mosquitto/mosquitto.conf").read_text()
    assert "persistent_client_expiration 14d" in conf  # the broker keeps it that long
