"""``check`` and ``calibrate`` against real PortAudio (the unpaced test mic: exact samples)."""

from __future__ import annotations

import csv
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from support.node_harness import SENSOR, write_config

from klankkast.sensor.config import load_config

FS = 48000


def sine(f_hz: float, amp: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return amp * np.sin(2 * np.pi * f_hz * t)


class NoBroker:
    url = "mqtt://127.0.0.1:9"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SENSOR, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_calibrate_writes_offset_and_history(tmp_path: Path, test_mic_unpaced: Any) -> None:
    """A 94.0 dB calibrator producing a sine of amplitude 0.1 (mean square 0.005):
    offset = 94 - 10 lg 0.005 = 117.01 dB, written to the config, history appended
    with the drift from the old offset (100.0)."""
    mic = test_mic_unpaced(sine(1000.0, 0.1, 8.0), FS)
    cfg = write_config(tmp_path, NoBroker(), device=mic.device, offset_db=100.0)
    res = run(["calibrate", "--config", str(cfg), "--reference-db", "94.0"], mic.env)
    assert res.returncode == 0, res.stderr
    expected = 94.0 - 10 * math.log10(0.005)
    c = load_config(cfg)
    assert abs(c.calibration.offset_db - expected) <= 0.02
    assert c.calibration.calibrated_at
    with (tmp_path / "calibration-history.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert float(row["old_offset_db"]) == 100.0
    assert abs(float(row["drift_db"]) - (expected - 100.0)) <= 0.02


def test_calibrate_refuses_a_500_hz_tone(tmp_path: Path, test_mic_unpaced: Any) -> None:
    mic = test_mic_unpaced(sine(500.0, 0.1, 8.0), FS)
    cfg = write_config(tmp_path, NoBroker(), device=mic.device, offset_db=100.0)
    before = cfg.read_text()
    res = run(["calibrate", "--config", str(cfg), "--reference-db", "94.0"], mic.env)
    assert res.returncode == 2
    assert "refused" in res.stderr and "500" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert cfg.read_text() == before


def test_check_reports_audio_broker_clock_disk_and_outbox(
    tmp_path: Path, test_mic_unpaced: Any, mosquitto: Any
) -> None:
    """1 kHz sine of mean square 0.01 with offset 100 dB reads LAeq 80.0 dB."""
    mic = test_mic_unpaced(sine(1000.0, math.sqrt(0.02), 12.0), FS)
    cfg = write_config(tmp_path, mosquitto, device=mic.device, offset_db=100.0)
    res = run(["check", "--config", str(cfg), "--seconds", "3"], mic.env)
    out = res.stdout
    assert "OK   audio" in out and "LAeq 80.0 dB" in out, out + res.stderr
    assert "OK   broker" in out
    assert "clock:" in out and "disk:" in out and "outbox:" in out
    # healthy unless this machine's clock is not NTP-synchronised
    assert res.returncode == (2 if "FAIL clock" in out else 0), out


def test_check_is_unhealthy_without_broker(tmp_path: Path, test_mic_unpaced: Any) -> None:
    mic = test_mic_unpaced(sine(1000.0, 0.1, 8.0), FS)
    cfg = write_config(tmp_path, NoBroker(), device=mic.device)
    res = run(["check", "--config", str(cfg), "--seconds", "2", "--timeout", "2"], mic.env)
    assert res.returncode == 2
    assert "FAIL broker" in res.stdout and "UNHEALTHY" in res.stdout


def test_devices_lists_the_test_microphone_with_its_rates(test_mic_unpaced: Any) -> None:
    import json

    mic = test_mic_unpaced(sine(1000.0, 0.1, 1.0), FS)
    res = run(["devices", "--json"], mic.env)
    assert res.returncode == 0, res.stderr
    devices = [json.loads(line) for line in res.stdout.splitlines()]
    (ours,) = [d for d in devices if d["name"] == mic.device]
    assert 48000 in ours["rates_hz"] and ours["channels"] >= 1
    text = run(["devices"], mic.env).stdout
    assert mic.device in text and "48000" in text
