"""Benchmark of the node loop: CPU per audio second, against the pure core, and RSS.

Two figures, both printed with their targets (issue 4):

1. **CPU seconds per audio second** of the whole node loop — capture queue (blocks
   copied as the PortAudio callback does) → sample clock → metrology core →
   wire encode → SQLite outbox (WAL, fsync per append, as on the node) → QoS 1
   publish to a real local Mosquitto with PUBACK-driven deletes — against the pure
   core (``Meter.process``) on the same audio measured in the same run. Target:
   ratio ≤ 1.5. CPU is ``time.process_time()`` of this process (all threads:
   worker, delivery, paho's network thread), from the node's READY (outbox open,
   broker client started, meter designed) until the outbox has drained after the
   last block; the one-off start-up is printed separately.
2. **Resident memory of a running node**: ``klankkast-sensor run`` as a subprocess
   capturing from a private PulseAudio test microphone (``tests/_services.py``),
   publishing to the same broker; ``VmRSS`` after it has run for a while.
   Target: < 120 MB. Skipped (reported) when PulseAudio is not installed.

Usage: ``.venv/bin/python bench/bench_node.py [--seconds 120] [--quick]``
"""

from __future__ import annotations

import os

# As the node does (service.main, the systemd unit): one BLAS thread. OpenBLAS's
# extra threads spin-wait after every call, burning CPU a 1-s streaming meter never
# gains from.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "local"))
sys.path.insert(0, str(REPO / "tests"))

from services import Broker  # type: ignore[import-not-found]  # noqa: E402

from klankkast.sensor.capture import Block, Gap  # noqa: E402
from klankkast.sensor.config import parse_config  # noqa: E402
from klankkast.sensor.dsp import Meter  # noqa: E402
from klankkast.sensor.outbox import SqliteOutbox  # noqa: E402
from klankkast.sensor.service import (  # noqa: E402
    Node,
    SystemdNotifier,
    make_meter,
    make_publisher,
)

FS = 48000
BLOCK_MS = 100


def test_signal(seconds: float, seed: int = 1) -> np.ndarray:
    """Pink-ish noise plus a 1 kHz tone and some bass, about -30 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    white = rng.normal(0, 1, n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / FS)
    spec[1:] /= np.sqrt(f[1:])
    pink = np.fft.irfft(spec, n)
    pink *= 0.02 / pink.std()
    t = np.arange(n) / FS
    x = pink + 0.01 * np.sin(2 * np.pi * 1000 * t) + 0.02 * np.sin(2 * np.pi * 63 * t)
    return x.astype(np.float32)


def blocks_of(x: np.ndarray) -> list[np.ndarray]:
    step = FS * BLOCK_MS // 1000
    # 2-D frames x channels, as PortAudio hands them to the callback
    return [x[i : i + step].reshape(-1, 1) for i in range(0, len(x), step)]


def bench_core(blocks: list[np.ndarray]) -> float:
    meter = Meter(FS, offset_db=120.0)
    t0 = time.process_time()
    for b in blocks:
        meter.process(b[:, 0])
    meter.flush()
    return time.process_time() - t0


class QueueSource:
    """The capture side of :class:`SoundDeviceSource` without a device.

    Each read does what the PortAudio callback and the worker do for one block:
    copy the block out of the driver's buffer into a :class:`Block`, put it on the
    capture queue, and take it off again. (Doing the copy in a racing feeder thread
    instead would measure GIL contention that a real-time callback, which runs ten
    times a second, does not cause.)
    """

    def __init__(self, blocks: list[np.ndarray], node_holder: dict[str, Any]) -> None:
        self.fs_hz = FS
        self.blocks = blocks
        self.q: queue.Queue[Block | Gap] = queue.Queue(maxsize=64)
        self.state = "stopped"
        self.last_error: str | None = None
        self.holder = node_holder
        self.i = 0
        self.t0 = 0.0

    @property
    def xruns(self) -> int:
        return 0

    def start(self) -> None:
        self.state = "running"
        self.t0 = time.time() * 1000

    def read(self, timeout_s: float) -> Block | Gap | None:
        if self.i >= len(self.blocks):
            self.holder["node"].stop_event.set()
            return None
        b = self.blocks[self.i]
        self.i += 1
        self.q.put_nowait(Block(b[:, 0].copy(), self.t0 + self.i * BLOCK_MS))  # the callback
        return self.q.get(timeout=timeout_s)

    def reopen(self) -> None:
        self.start()

    def stop(self) -> None:
        self.state = "stopped"


class ReadyClock(SystemdNotifier):
    """Notes the CPU time when the node says READY=1 (set-up done, before audio)."""

    def __init__(self) -> None:
        super().__init__({})
        self.ready_cpu: float | None = None

    def notify(self, message: str) -> bool:
        if message == "READY=1" and self.ready_cpu is None:
            self.ready_cpu = time.process_time()
        return False


def bench_loop(
    blocks: list[np.ndarray], broker: Any, workdir: Path
) -> tuple[float, float, int, float]:
    """(CPU from READY to the end, CPU including start-up, frames, wall seconds)."""
    cfg = parse_config(
        {
            "node": {"id": "bench", "site": "lab", "status_interval_s": 60},
            "audio": {"samplerate": FS, "block_ms": BLOCK_MS},
            "calibration": {"offset_db": 120.0},
            "mqtt": {"url": broker.url},
            "outbox": {"path": str(workdir / "outbox.sqlite")},
        },
        workdir,
    )
    holder: dict[str, Any] = {}
    source = QueueSource(blocks, holder)
    outbox = SqliteOutbox(cfg.outbox.path, synchronous="FULL")
    publisher = make_publisher(cfg)
    node = Node(
        cfg,
        source=source,
        outbox=outbox,
        publisher=publisher,
        meter_factory=lambda: make_meter(cfg),
        clock_synced=lambda: None,
        drain_s=60.0,
        notifier=(notifier := ReadyClock()),
    )
    holder["node"] = node
    publisher.will = node.will()
    wall0 = time.monotonic()
    t0 = time.process_time()
    node.run()  # returns after the outbox drained (drain_s) and the offline status
    end = time.process_time()
    ready = notifier.ready_cpu if notifier.ready_cpu is not None else t0
    return end - ready, end - t0, node.frames, time.monotonic() - wall0


def rss_of_running_node(broker: Any, workdir: Path, run_s: float) -> float | None:
    try:
        from _services import start_paced_mic
    except Exception as err:  # pragma: no cover
        print(f"  (RSS: test microphone helpers unavailable: {err})")
        return None
    try:
        mic = start_paced_mic()
    except Exception as err:
        print(f"  (RSS: PulseAudio test microphone unavailable: {err})")
        return None
    cfg = workdir / "node.toml"
    cfg.write_text(
        f'[node]\nid = "rss"\nsite = "lab"\nstatus_interval_s = 5\n'
        f'[audio]\ndevice = "pulse"\nsamplerate = {FS}\n'
        f'[calibration]\noffset_db = 120.0\n[mqtt]\nurl = "{broker.url}"\n'
        f'[outbox]\npath = "rss-outbox.sqlite"\n'
    )
    exe = Path(sys.executable).with_name("klankkast-sensor")
    proc = subprocess.Popen(
        [str(exe), "run", "--config", str(cfg)],
        env=mic.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        player = mic.play(test_signal(run_s + 5), FS)
        time.sleep(run_s)
        rss_kb = None
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
        player.terminate()
        return rss_kb / 1024 if rss_kb is not None else None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        mic.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="audio seconds (default 120)")
    ap.add_argument("--rss-seconds", type=float, default=20.0, help="run time before RSS")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 s of audio, 5 s RSS")
    args = ap.parse_args()
    seconds = 10.0 if args.quick else args.seconds
    rss_s = 5.0 if args.quick else args.rss_seconds
    x = test_signal(seconds)
    blocks = blocks_of(x)
    print(f"node loop benchmark: {seconds:g} s of 48 kHz audio in {BLOCK_MS}-ms blocks")
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp, Broker.launch() as broker:
        work = Path(tmp)
        bench_core(blocks[:20])  # warm-up: filter design caches, FFT plans
        core = bench_core(blocks)
        loop, loop_all, frames, wall = bench_loop(blocks, broker, work)
        core2 = bench_core(blocks)  # again, after the loop: CPU contention check
        core_best = min(core, core2)
        ratio = loop / core_best
        print(
            f"  pure core (Meter.process):   {core_best / seconds * 1000:7.2f} ms CPU per audio s"
        )
        print(
            f"  whole node loop:             {loop / seconds * 1000:7.2f} ms CPU per audio s "
            f"({frames} frames published and acknowledged, {wall:.1f} s wall)"
        )
        print(
            f"  (with start-up: import-free set-up, connect, meter design: "
            f"{loop_all / seconds * 1000:.2f} ms per audio s)"
        )
        print(f"  ratio loop / core:           {ratio:7.2f}   (target <= 1.5)  "
              f"{'OK' if ratio <= 1.5 else 'OVER'}")  # fmt: skip
        print(f"  real-time load on this CPU:  {loop / seconds:7.1%} of one core")
        rss = rss_of_running_node(broker, work, rss_s)
        if rss is not None:
            print(f"  RSS of a running node:       {rss:7.1f} MB  (target < 120)  "
                  f"{'OK' if rss < 120 else 'OVER'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
