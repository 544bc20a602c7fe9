"""Sample-count time anchoring (interval starts from the sample clock, re-anchored past 50 ms)."""

from __future__ import annotations

import subprocess

from klankkast.sensor.clock import SampleClock, ntp_synchronized

FS = 48000
BLOCK = 4800  # 100 ms


def test_times_come_from_the_sample_count_not_block_arrival() -> None:
    """Blocks arrive 0-30 ms late (scheduling jitter; never early, a block cannot
    arrive before its last sample was captured); t of sample n stays t0 + n/fs."""
    clock = SampleClock(FS)
    t0 = 1_700_000_000_000.0
    jitter = [0, 20, 15, 5, 18, 30, 0, 10, 25, 3, 12, 0, 29, 7]
    for i, j in enumerate(jitter, start=1):
        clock.observe(i * BLOCK, t0 + i * 100 + j)
    assert clock.reanchors == 0
    assert clock.t_ms(0) == t0
    assert clock.t_ms(FS) == t0 + 1000
    assert clock.t_ms(60 * FS) == t0 + 60_000


def test_sound_card_running_fast_is_reanchored_and_counted() -> None:
    """A card 200 ppm fast delivers 1 s of samples in 0.9998 s of wall time: after
    250 s the sample clock is 50 ms ahead; the next blocks re-anchor (counted)."""
    clock = SampleClock(FS)
    t0 = 0.0
    wall_per_block = 100 * (1 - 200e-6)
    n_blocks = 3000  # 300 s
    for i in range(1, n_blocks + 1):
        clock.observe(i * BLOCK, t0 + i * wall_per_block)
    assert clock.reanchors >= 1
    # after re-anchoring, the mapping agrees with the wall clock within 50 ms
    assert abs(clock.t_ms(n_blocks * BLOCK) - (t0 + n_blocks * wall_per_block)) <= 50
    assert clock.drift_ms is not None and abs(clock.drift_ms) <= 60


def test_late_blocks_are_jitter_not_drift() -> None:
    """Half a second of blocks 300 ms late (a scheduling hiccup) is not drift."""
    clock = SampleClock(FS)
    for i in range(1, 40):
        clock.observe(i * BLOCK, i * 100.0 + (300 if 15 <= i < 20 else 0))
    assert clock.reanchors == 0


def test_startup_burst_does_not_set_the_anchor() -> None:
    """The first 5 blocks were buffered and arrive together at 500 ms; later blocks
    arrive on time. The anchor is the earliest possible start (0), not 400 ms."""
    clock = SampleClock(FS)
    for i in range(1, 6):
        clock.observe(i * BLOCK, 500.0)
    for i in range(6, 50):
        clock.observe(i * BLOCK, i * 100.0)
    assert clock.anchor_ms == 0.0
    assert clock.reanchors == 0


def test_ntp_step_of_the_system_clock_reanchors() -> None:
    clock = SampleClock(FS)
    for i in range(1, 21):
        clock.observe(i * BLOCK, i * 100.0)
    for i in range(21, 40):
        clock.observe(i * BLOCK, i * 100.0 + 2000)  # NTP stepped the clock 2 s forward
    assert clock.reanchors == 1
    assert clock.t_ms(39 * BLOCK) == 3900 + 2000


def test_ntp_synchronized_reads_timedatectl() -> None:
    def fake(answer: str):  # type: ignore[no-untyped-def]
        def run(*a, **k):  # type: ignore[no-untyped-def]
            return subprocess.CompletedProcess(a, 0, stdout=answer + "\n", stderr="")

        return run

    import shutil

    if shutil.which("timedatectl"):
        assert ntp_synchronized(fake("yes")) is True
        assert ntp_synchronized(fake("no")) is False
    assert ntp_synchronized() in (True, False, None)
