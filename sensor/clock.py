"""Time on the node: interval starts from the sample count, and clock-sync checks.

An interval's ``t`` is the UTC time of its first sample, computed from the number of
samples since the stream started and the wall-clock time of the stream start, not
from each block's arrival time (which jitters with scheduling). The anchor is
checked against the wall clock on every block; when the two disagree by more than
``max_drift_ms`` (50 ms: the sound card's clock runs fast or slow, or NTP stepped
the system clock) for a few blocks in a row, the anchor is moved and the re-anchor
is counted and reported in the node status.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SampleClock", "cpu_temp_c", "ntp_synchronized"]


@dataclass
class SampleClock:
    """Maps sample indices of one stream to UTC milliseconds.

    Parameters
    ----------
    fs_hz
        Sample rate of the stream.
    max_drift_ms
        Re-anchor when the sample clock and the wall clock disagree by more.
    confirm_blocks
        Number of consecutive blocks the disagreement must last (one late
        callback is scheduling jitter, not drift).
    """

    fs_hz: int
    max_drift_ms: float = 50.0
    confirm_blocks: int = 3
    anchor_ms: float | None = None
    reanchors: int = 0
    drift_ms: float | None = None
    _over: int = 0

    def observe(self, end_sample: int, wall_ms: float) -> None:
        """Record that sample ``end_sample`` (exclusive end of a block) arrived at ``wall_ms``.

        The first call anchors the stream: sample 0 was captured
        ``end_sample / fs`` before ``wall_ms``.
        """
        span_ms = end_sample * 1000.0 / self.fs_hz
        if self.anchor_ms is None:
            self.anchor_ms = wall_ms - span_ms
            self.drift_ms = 0.0
            return
        drift = wall_ms - (self.anchor_ms + span_ms)
        self.drift_ms = drift
        if abs(drift) > self.max_drift_ms:
            self._over += 1
            if self._over >= self.confirm_blocks:
                self.anchor_ms += drift
                self.reanchors += 1
                self._over = 0
        else:
            self._over = 0

    def t_ms(self, sample: int) -> int:
        """UTC milliseconds of sample index ``sample``."""
        if self.anchor_ms is None:
            raise RuntimeError("clock not anchored: observe() the first block first")
        return round(self.anchor_ms + sample * 1000.0 / self.fs_hz)


def ntp_synchronized(
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> bool | None:
    """Whether the system clock is NTP-synchronised; None when it cannot be told.

    Asks systemd (``timedatectl show -p NTPSynchronized --value``) and falls back to
    the kernel's ``adjtimex`` (``TIME_ERROR``, 5, means unsynchronised).
    """
    if shutil.which("timedatectl"):
        try:
            out = run(
                ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            )
            value = out.stdout.strip().lower()
            if out.returncode == 0 and value in ("yes", "no"):
                return value == "yes"
        except (OSError, subprocess.SubprocessError):
            pass
    return _adjtimex_synced()


def _adjtimex_synced() -> bool | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0 (read only)
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != 5)  # TIME_ERROR


def cpu_temp_c(path: str = "/sys/class/thermal/thermal_zone0/temp") -> float | None:
    """CPU temperature in °C (Raspberry Pi thermal zone), None when unavailable."""
    try:
        with open(path, encoding="ascii") as fh:
            return round(int(fh.read().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def now_ms() -> float:
    """Wall-clock UTC milliseconds."""
    return time.time() * 1000.0
