"""Nothing lost: broker outages (clean stop and SIGKILL) and a SIGKILLed node, with real
PortAudio (the paced test mic, real time) and a real Mosquitto with persistence."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest
from support.node_harness import (
    Collector,
    NodeProcess,
    assert_contiguous,
    env_without_notify,
    seqs,
    write_config,
)

OUTAGE_S = 60.0


@pytest.mark.slow
@pytest.mark.parametrize("kill", [False, True], ids=["clean-stop", "sigkill"])
def test_broker_outage_of_60_s_loses_nothing(
    kill: bool, tmp_path: Path, mosquitto: Any, test_mic_paced: Any
) -> None:
    """The broker goes away for 60 s while the node measures. Afterwards every 1-s frame
    from the first to the last has arrived (duplicates only as identical QoS 1
    redeliveries), and capture never blocked: no xruns."""
    cfg = write_config(tmp_path / "node", mosquitto, device=test_mic_paced.device)
    col = Collector(mosquitto)
    time.sleep(1.5)  # let the broker autosave the collector's session (autosave 1 s)
    node = NodeProcess(cfg, env_without_notify(test_mic_paced.env)).start()
    try:
        col.wait_for(lambda: len(col.of("second")) >= 3, 20, "the first frames")
        mosquitto.stop(kill=kill)
        time.sleep(OUTAGE_S)
        assert node.alive(), node.log()
        mosquitto.start()
        target = max(seqs(col.of("second"))) + int(OUTAGE_S)
        col.wait_for(
            lambda: len(seqs(col.of("second"))) >= target + 1, 60, f"seq 0..{target} after restart"
        )
    finally:
        rc = node.stop()
    assert rc == 0, node.log()
    col.wait_for(lambda: any(s["state"] == "offline" for s in col.of("status")), 15, "offline")
    seconds = col.of("second")
    col.close()
    assert_contiguous(seconds)
    assert len(seqs(seconds)) >= OUTAGE_S + 3
    offline = [s for s in col.of("status") if s["state"] == "offline"][-1]
    assert offline["xruns"] == 0, node.log()
    assert offline["outbox_depth"] == 0
    assert offline["outbox_evictions"] == 0


def test_node_killed_mid_stream_delivers_its_outbox_after_restart(
    tmp_path: Path, mosquitto: Any, test_mic_paced: Any
) -> None:
    """Frames measured while the broker is down wait in the outbox; the node is then
    SIGKILLed (no flush, no goodbye) and started again: those frames are delivered
    and seq continues where it stopped (no gap, no reuse)."""
    cfg = write_config(tmp_path / "node", mosquitto, device=test_mic_paced.device)
    col = Collector(mosquitto)
    time.sleep(1.5)
    env = env_without_notify(test_mic_paced.env)
    first = NodeProcess(cfg, env).start()
    col.wait_for(lambda: len(col.of("second")) >= 2, 20, "the first frames")
    mosquitto.stop()
    time.sleep(5.0)
    first.kill()
    delivered_before = max(seqs(col.of("second")))
    mosquitto.start()
    second = NodeProcess(cfg, env).start()
    try:
        # the killed run measured about 5 more seconds: they arrive, then new ones
        col.wait_for(
            lambda: len(seqs(col.of("second"))) >= delivered_before + 9, 30, "backlog + new frames"
        )
    finally:
        rc = second.stop()
    assert rc == 0, second.log()
    col.wait_for(lambda: any(s["state"] == "offline" for s in col.of("status")), 15, "offline")
    seconds = col.of("second")
    col.close()
    assert_contiguous(seconds)
    by_seq = {s["seq"]: s for s in seconds}
    assert max(by_seq) > delivered_before + 6
    # the restart shows as a jump in t, not in seq
    ts = [by_seq[k]["t"] for k in sorted(by_seq)]
    assert max(b - a for a, b in itertools.pairwise(ts)) >= 1500


def test_lost_audio_device_is_retried_and_the_node_survives(
    tmp_path: Path, mosquitto: Any, test_mic_paced: Any
) -> None:
    """The sound server dies under the node (as a USB microphone being unplugged):
    the node keeps running, says ``audio: lost`` in a degraded status, retries with
    back-off, and measures again once the device is back; seq has no gap."""
    cfg = write_config(tmp_path / "node", mosquitto, device=test_mic_paced.device)
    col = Collector(mosquitto)
    node = NodeProcess(cfg, env_without_notify(test_mic_paced.env)).start()
    try:
        col.wait_for(lambda: len(col.of("second")) >= 2, 20, "the first frames")
        assert test_mic_paced._proc is not None
        test_mic_paced._proc.kill()  # the device disappears
        test_mic_paced._proc.wait(timeout=10)
        col.wait_for(
            lambda: any(s.get("audio") == "lost" for s in col.of("status")), 15, "audio lost"
        )
        assert node.alive(), node.log()
        lost = [s for s in col.of("status") if s.get("audio") == "lost"][-1]
        assert lost["state"] == "degraded" and lost["error"]
        before = len(seqs(col.of("second")))
        test_mic_paced.start()  # plugged in again
        col.wait_for(
            lambda: len(seqs(col.of("second"))) >= before + 2, 30, "frames after re-opening"
        )
    finally:
        rc = node.stop()
    assert rc == 0, node.log()
    assert_contiguous(col.of("second"))
    col.close()
