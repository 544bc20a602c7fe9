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

    A block whose last sample is ``n`` cannot arrive before ``T0 + n / fs`` (T0 the
    capture time of sample 0); it arrives later by the audio latency plus
    scheduling jitter. So the anchor is the *smallest* ``wall - n / fs`` seen during
    the first ``warmup_s`` of the stream (start-up bursts of buffered blocks arrive
    late and must not set it), and afterwards a disagreement counts as drift only
    when every block of ``confirm_s`` of audio is off by more than ``max_drift_ms``
    in the same direction; the anchor then moves by the smallest of those offsets.

    Parameters
    ----------
    fs_hz
        Sample rate of the stream.
    max_drift_ms
        Re-anchor when the sample clock and the wall clock disagree by more.
    warmup_s, confirm_s
        Seconds of audio for the initial anchor and to confirm a drift.
    """

    fs_hz: int
    max_drift_ms: float = 50.0
    warmup_s: float = 1.0
    confirm_s: float = 1.0
    anchor_ms: float | None = None
    reanchors: int = 0
    drift_ms: float | None = None
    _run_start: int | None = None
    _run_min: float = 0.0

    def observe(self, end_sample: int, wall_ms: float) -> None:
        """Record that sample ``end_sample`` (exclusive end of a block) arrived at ``wall_ms``."""
        span_ms = end_sample * 1000.0 / self.fs_hz
        candidate = wall_ms - span_ms
        if self.anchor_ms is None:
            self.anchor_ms = candidate
            self.drift_ms = 0.0
            return
        if end_sample <= self.warmup_s * self.fs_hz:
            self.anchor_ms = min(self.anchor_ms, candidate)
            self.drift_ms = 0.0
            return
        drift = candidate - self.anchor_ms
        self.drift_ms = drift
        if abs(drift) <= self.max_drift_ms or (
            self._run_start is not None and (drift > 0) != (self._run_min > 0)
        ):
            self._run_start = None
            if abs(drift) <= self.max_drift_ms:
                return
        if self._run_start is None:
            self._run_start, self._run_min = end_sample, drift
            return
        self._run_min = min(self._run_min, drift, key=abs)
        if end_sample - self._run_start >= self.confirm_s * self.fs_hz:
            self.anchor_ms += self._run_min
            self.reanchors += 1
            self._run_start = None

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
