"""Audio capture: the :class:`AudioSource` role and its sounddevice (PortAudio) adapter.

The PortAudio callback only copies the block into a queue and counts overflows
(python-sounddevice's ``rec_unlimited.py`` pattern); all processing runs in the
node's worker. A lost device (USB unplugged, ALSA error, callbacks that stop
coming) is reported by :meth:`SoundDeviceSource.read` returning a :class:`Gap`;
the caller reopens with :meth:`SoundDeviceSource.reopen` and backs off, so the
process never dies of it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from klankkast.sensor.errors import AudioDeviceError

__all__ = ["AudioSource", "Block", "FakeSource", "Gap", "SoundDeviceSource", "record"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Block:
    """Samples of one channel (float32, full scale 1.0) and when the callback got them."""

    samples: np.ndarray
    wall_ms: float


@dataclass(frozen=True, slots=True)
class Gap:
    """The stream stopped (device lost or callbacks stalled); ``reason`` says why."""

    reason: str


class AudioSource(Protocol):
    """Role: a stream of sample blocks from one microphone channel."""

    fs_hz: int

    @property
    def xruns(self) -> int: ...

    def start(self) -> None: ...

    def read(self, timeout_s: float) -> Block | Gap | None: ...

    def reopen(self) -> None: ...

    def stop(self) -> None: ...


class SoundDeviceSource:
    """:class:`AudioSource` on python-sounddevice's ``InputStream``.

    Parameters
    ----------
    device
        PortAudio device name (substring) or index.
    fs_hz, block_ms, channel
        Sample rate, block length and the 0-based input channel to measure.
    max_queue_s
        Audio the queue holds before blocks are dropped (and counted as xruns) when
        the worker falls behind. The callback never blocks.
    stall_s
        No block for this long while the stream runs means the device is lost.
    """

    def __init__(
        self,
        device: str | int,
        fs_hz: int,
        *,
        block_ms: int = 100,
        channel: int = 0,
        max_queue_s: float = 30.0,
        stall_s: float = 3.0,
    ) -> None:
        self.device = device
        self.fs_hz = fs_hz
        self.block_ms = block_ms
        self.channel = channel
        self.blocksize = fs_hz * block_ms // 1000
        self.stall_s = max(stall_s, 3 * block_ms / 1000.0)
        self._queue: queue.Queue[Block | Gap] = queue.Queue(
            maxsize=max(4, int(max_queue_s * 1000 / block_ms))
        )
        self._xruns = 0
        self._dropped = 0
        self._stream: Any = None
        self._last_block = 0.0
        self._lock = threading.Lock()
        self.opens = 0
        self.state = "stopped"
        self.last_error: str | None = None

    @property
    def xruns(self) -> int:
        return self._xruns + self._dropped

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        wall_ms = time.time() * 1000.0
        if status and status.input_overflow:
            self._xruns += 1
        try:
            self._queue.put_nowait(Block(indata[:, self.channel].copy(), wall_ms))
        except queue.Full:
            self._dropped += 1

    def _finished(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(Gap("stream finished"))

    def start(self) -> None:
        """Open and start the stream; raises :class:`AudioDeviceError` on failure."""
        import sounddevice as sd

        with self._lock:
            try:
                stream = sd.InputStream(
                    device=self.device,
                    samplerate=self.fs_hz,
                    blocksize=self.blocksize,
                    channels=self.channel + 1,
                    dtype="float32",
                    callback=self._callback,
                    finished_callback=self._finished,
                )
                stream.start()
            except Exception as err:  # PortAudioError, ValueError (no such device)
                self.state = "lost"
                self.last_error = f"{type(err).__name__}: {err}"
                raise AudioDeviceError(
                    f"audio device {self.device!r} at {self.fs_hz} Hz cannot be opened: {err}"
                ) from None
            self._stream = stream
            self._last_block = time.monotonic()
            self.opens += 1
            self.state = "running"
            self.last_error = None

    def read(self, timeout_s: float) -> Block | Gap | None:
        """Next block; a :class:`Gap` when the device is lost; None on timeout."""
        try:
            item = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            if self._stream is not None and time.monotonic() - self._last_block > self.stall_s:
                self.state = "lost"
                self.last_error = f"no audio for {self.stall_s:.1f} s"
                return Gap(self.last_error)
            return None
        if isinstance(item, Gap):
            self.state = "lost"
            self.last_error = item.reason
        else:
            self._last_block = time.monotonic()
        return item

    def reopen(self) -> None:
        """Close the stream and open it again (raises :class:`AudioDeviceError`)."""
        self.stop()
        import sounddevice as sd

        # PortAudio enumerates devices once; a re-plugged USB mic needs a re-scan.
        try:
            sd._terminate()
            sd._initialize()
        except Exception as err:
            log.warning("PortAudio re-initialisation failed: %s", err)
        self.start()

    def stop(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
            if stream is not None:
                try:
                    stream.abort(ignore_errors=True)
                    stream.close(ignore_errors=True)
                except Exception as err:
                    log.warning("closing the audio stream failed: %s", err)
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self.state = "stopped"


class FakeSource:
    """:class:`AudioSource` that yields a given signal in blocks (tests, benchmarks)."""

    def __init__(self, signal: np.ndarray, fs_hz: int, *, block_ms: int = 100) -> None:
        self.signal = np.asarray(signal, dtype=np.float32)
        self.fs_hz = fs_hz
        self.blocksize = fs_hz * block_ms // 1000
        self.pos = 0
        self.t0_ms = time.time() * 1000.0
        self.state = "stopped"
        self.last_error: str | None = None

    @property
    def xruns(self) -> int:
        return 0

    def start(self) -> None:
        self.state = "running"

    def read(self, timeout_s: float) -> Block | Gap | None:
        if self.pos >= len(self.signal):
            return None
        block = self.signal[self.pos : self.pos + self.blocksize]
        self.pos += len(block)
        return Block(block, self.t0_ms + self.pos * 1000.0 / self.fs_hz)

    def reopen(self) -> None:
        self.start()

    def stop(self) -> None:
        self.state = "stopped"


def record(source: AudioSource, seconds: float, *, timeout_s: float | None = None) -> np.ndarray:
    """Capture ``seconds`` of audio from a started-or-not source; raises on a lost device.

    Used by ``check`` and ``calibrate``. Raises :class:`AudioDeviceError` when the
    stream is lost or delivers too little within ``timeout_s`` (default 2 × + 5 s).
    """
    need = round(seconds * source.fs_hz)
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else 2 * seconds + 5)
    source.start()
    parts: list[np.ndarray] = []
    got = 0
    try:
        while got < need:
            if time.monotonic() > deadline:
                raise AudioDeviceError(
                    f"audio device delivered {got / source.fs_hz:.1f} s of {seconds:.1f} s in time"
                )
            item = source.read(0.5)
            if item is None:
                continue
            if isinstance(item, Gap):
                raise AudioDeviceError(f"audio device lost: {item.reason}")
            parts.append(item.samples)
            got += len(item.samples)
    finally:
        source.stop()
    return np.concatenate(parts)[:need] if parts else np.zeros(0, dtype=np.float32)
