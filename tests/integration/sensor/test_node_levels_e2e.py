"""A known signal through the real PortAudio test microphone and a real Mosquitto:
the levels on MQTT equal ``replay`` of the same signal within 0.1 dB, seq contiguous."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from pathlib import Path
from typing import Any

from support.node_harness import (
    Collector,
    NodeProcess,
    assert_contiguous,
    env_without_notify,
    replay,
    tones,
    write_config,
    write_wav,
)

FS = 48000
OFFSET_DB = 100.0


def test_known_signal_levels_on_mqtt_match_replay(
    tmp_path: Path, mosquitto: Any, test_mic_paced: Any
) -> None:
    """Three steady tones (100 Hz, 1 kHz, 4 kHz; rms 0.05, 0.02, 0.01) for 8 s.
    Every 1-s interval that lies wholly inside the playback sees the same steady
    signal, so its levels equal replay's steady-state seconds within 0.1 dB."""
    signal = tones(FS, 8.0, [(100.0, 0.05), (1000.0, 0.02), (4000.0, 0.01)])
    wav = tmp_path / "tones.wav"
    write_wav(wav, signal, FS)
    expected = replay(wav, OFFSET_DB)[3]  # a steady second in the middle
    cfg = write_config(
        tmp_path / "node", mosquitto, device=test_mic_paced.device, offset_db=OFFSET_DB
    )
    col = Collector(mosquitto)
    # systemd's notify socket, as Type=notify + WatchdogSec=2 would provide it
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(0.2)
    datagrams: list[str] = []
    reading = threading.Event()
    reading.set()

    def read_notify() -> None:
        while reading.is_set():
            with contextlib.suppress(TimeoutError):
                datagrams.append(notify.recv(4096).decode())

    reader = threading.Thread(target=read_notify, daemon=True)
    reader.start()
    env = env_without_notify(test_mic_paced.env)
    env.update(NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="2000000")
    node = NodeProcess(cfg, env).start()
    try:
        col.wait_for(lambda: len(col.of("second")) >= 2, 20, "the first frames")
        player = test_mic_paced.play(wav)
        player.wait(timeout=30)
        time.sleep(2.0)
    finally:
        rc = node.stop()
    assert rc == 0, node.log()
    reading.clear()
    reader.join(5)
    notify.close()
    # (libraries in the process may send their own lines, e.g. ERRNO=; keep ours)
    datagrams = [
        d for d in datagrams if d.split("=")[0] in ("READY", "WATCHDOG", "STATUS", "STOPPING")
    ]
    assert datagrams[0] == "READY=1", datagrams
    assert datagrams.count("WATCHDOG=1") >= 4  # >= 8 s at one ping per second
    assert any(d.startswith("STATUS=") for d in datagrams)
    assert datagrams[-1] == "STOPPING=1"
    col.wait_for(lambda: any(s["state"] == "offline" for s in col.of("status")), 10, "offline")
    seconds = col.of("second")
    col.close()
    assert_contiguous(seconds)
    loud = [s for s in seconds if s["LAeq"] > expected["LAeq"] - 0.3 and s["dur_ms"] == 1000]
    steady = loud[1:-1]  # drop the seconds that straddle the start or end of playback
    assert len(steady) >= 4, [s["LAeq"] for s in seconds]
    for s in steady:
        for key in ("LAeq", "LCeq", "LZeq"):
            assert abs(s[key] - expected[key]) <= 0.1, (key, s[key], expected[key])
        for band in ("100", "1000", "4000"):
            assert abs(s["bands"][band] - expected["bands"][band]) <= 0.1, band
    offline = [s for s in col.of("status") if s["state"] == "offline"]
    assert offline and offline[-1]["outbox_depth"] == 0
    # Times come from the sample count: consecutive seconds are 1000 ms apart, except
    # where the node re-anchored to the wall clock (PulseAudio shifts its monitor when
    # a player connects) and reported it in status.
    ts = [s["t"] for s in sorted(seconds, key=lambda s: s["seq"])][:-1]  # last: partial
    steps = [b - a for a, b in itertools.pairwise(ts)]
    irregular = [d for d in steps if d != 1000]
    assert len(irregular) <= offline[-1]["reanchors"], (steps, offline[-1])
    assert all(abs(d - 1000) < 250 for d in irregular), steps
    assert offline[-1]["xruns"] == 0
