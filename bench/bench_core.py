#!/usr/bin/env python3
"""Benchmark of the sensor metrology core against acoustic-toolbox, and replay's memory.

Prints:

1. The real-time factor of :class:`klankkast.sensor.dsp.Meter` computing the
   complete per-second set (LAeq, LCeq, LZeq, LAFmax/min, LASmax, LCpeak,
   31 one-third-octave bands 20 Hz-20 kHz, indicators) on 48 kHz mono noise;
2. the real-time factor of acoustic-toolbox 0.2.2 computing only A-weighted 1-s
   Leq plus one-third-octave band 1-s Leq (its ``Signal.weigh('A').leq_levels`` and
   ``Signal.third_octaves().leq_levels``) on the same audio in the same run;
3. the ratio of the two (target: core >= 500x real time and >= 10x the peer);
4. peak resident memory (ru_maxrss) of ``klankkast-sensor replay`` on a 30-minute
   48 kHz 16-bit WAV written to a temporary file (target: < 150 MB).

acoustic-toolbox must run with ``pyoctaveband==1.2.3`` pinned (the dev extra does):
its unpinned dependency otherwise changes and breaks its A-weighting.

Everything runs on one core: the process pins itself to one CPU and BLAS/OpenMP
pools are limited to one thread before numpy loads. Rates are audio seconds per
second of the process's CPU time (robust on a shared machine): for the core the
median over 1-s blocks (mean alongside), for the peer its one long run; wall-clock
rates are printed alongside. ``--quick`` runs a seconds-long
smoke version (used by a test); figures from it are not meaningful.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
from importlib.metadata import PackageNotFoundError, version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

FS = 48000


def _pin_one_core() -> str:
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return f"pinned to CPU {cpus[-1]}"
    except (AttributeError, OSError):
        return "not pinned"


def _noise(seconds: float, seed: int = 7) -> np.ndarray:
    """Pink-ish noise (white through a gentle low-pass) with a few impulses, ~-20 dBFS."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(round(seconds * FS))
    x = np.cumsum(x) * 0.02
    x -= np.convolve(x, np.ones(480) / 480, mode="same")
    x *= 0.1 / np.sqrt(np.mean(x**2))
    x[:: FS // 3] += 0.5
    return x


def bench_core(x: np.ndarray, repeats: int) -> tuple[float, float, float]:
    """Real-time factors of the core: (median, mean) over 1-s blocks of CPU time, and wall.

    Each 1-s ``Meter.process`` call is timed on its own; the median is robust to
    the bursts of contention of a shared machine, the mean is the plain average.
    """
    from klankkast.sensor.dsp import Meter

    cpu: list[float] = []
    wall = 0.0
    for _ in range(repeats):
        meter = Meter(FS, offset_db=94.0)
        meter.process(x[:FS])  # warm caches (filter design, band weights)
        meter = Meter(FS, offset_db=94.0)
        t0 = time.perf_counter()
        for i in range(0, len(x), FS):
            c0 = time.process_time()
            meter.process(x[i : i + FS])
            cpu.append(time.process_time() - c0)
        wall += time.perf_counter() - t0
    n_s = len(cpu)
    return 1.0 / float(np.median(cpu)), n_s / float(np.sum(cpu)), n_s / wall


def bench_peer(x: np.ndarray) -> tuple[float, float]:
    from acoustic_toolbox import Signal

    t0 = time.perf_counter()
    s = Signal(x, FS)
    c0 = time.process_time()
    _, la = s.weigh("A").leq_levels(1.0)
    _, bands = s.third_octaves()
    _, lb = bands.leq_levels(1.0)
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    assert np.all(np.isfinite(la)) and np.asarray(lb).shape[0] >= 30
    return len(x) / FS / cpu, len(x) / FS / wall


def a_weighting_at_10k() -> tuple[float, float]:
    """A(10 kHz) - A(1 kHz) as read by the core and by the peer (Table 3 goal: -2.5 dB)."""
    from acoustic_toolbox import Signal

    from klankkast.sensor.dsp import Meter

    t = np.arange(2 * FS) / FS
    out = []
    for reader in ("core", "peer"):
        levels = []
        for f in (1000.0, 10000.0):
            x = np.sqrt(2) * 0.1 * np.sin(2 * np.pi * f * t)
            if reader == "core":
                m = Meter(FS, offset_db=100.0)
                seconds = [r for r in m.process(x) + m.flush() if r.kind == "second"]
                levels.append(float(seconds[1].fields["LAeq"]))  # the second second
            else:
                levels.append(float(Signal(x[FS:], FS).weigh("A").leq()))
        out.append(levels[1] - levels[0])
    return out[0], out[1]


def write_long_wav(path: Path, seconds: int) -> None:
    """A 16-bit mono WAV written in 10-s chunks (never held whole in memory)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FS)
        chunk = np.clip(_noise(10.0) * 32767, -32768, 32767).astype("<i2").tobytes()
        for _ in range(seconds // 10):
            w.writeframes(chunk)


def replay_peak_rss_mb(path: Path) -> tuple[float, float, int]:
    cmd = [sys.executable, "-m", "klankkast.sensor.cli", "replay", str(path)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"replay failed: {proc.stderr.decode().strip()}")
    lines = proc.stdout.count(b"\n")
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return kb / 1024.0, dt, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio for the speed test (30)")
    ap.add_argument("--replay-minutes", type=float, default=30.0, help="WAV length for memory (30)")
    args = ap.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    minutes = 0.25 if args.quick else args.replay_minutes
    print(f"# bench_core: {_pin_one_core()}, BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}")
    try:
        peer_version = f"acoustic-toolbox {version('acoustic-toolbox')}, pyoctaveband {version('pyoctaveband')}"
    except PackageNotFoundError:
        peer_version = "acoustic-toolbox not installed"
    print(f"# peer: {peer_version} (pin pyoctaveband==1.2.3)")
    # memory first, while this process is small: a child's ru_maxrss includes the
    # parent's pages it shared between fork and exec
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        write_long_wav(path, int(minutes * 60))
        size_mb = path.stat().st_size / 1e6
        rss, dt, lines = replay_peak_rss_mb(path)
    x = _noise(seconds)
    core, core_mean, core_wall = bench_core(x, repeats=1 if args.quick else 3)
    print(
        f"core_realtime_factor      {core:10.1f}x   (median CPU time per 1-s block; mean "
        f"{core_mean:.1f}x, wall {core_wall:.1f}x) complete per-second set, 31 bands, 48 kHz mono"
    )
    peer, peer_wall = bench_peer(x)
    print(
        f"peer_realtime_factor      {peer:10.1f}x   (CPU time; wall {peer_wall:.1f}x) "
        "acoustic-toolbox: A-weighted 1-s Leq + 1/3-octave 1-s Leq"
    )
    ratio = core / peer
    print(
        f"core_over_peer            {ratio:10.1f}x   (mean/mean {core_mean / peer:.1f}x, "
        f"wall {core_wall / peer_wall:.1f}x)"
    )
    a_core, a_peer = a_weighting_at_10k()
    print(
        f"A(10k)-A(1k) core/peer    {a_core:+.2f} / {a_peer:+.2f} dB   "
        "(IEC 61672-1 Table 3 design goal -2.49 dB, class 1 +2/-3 dB)"
    )
    print(
        f"replay_peak_rss_mb        {rss:10.1f}    ({minutes:g}-min {size_mb:.0f} MB WAV, "
        f"{lines} lines, {dt:.1f} s wall)"
    )
    ok = core >= 500 and ratio >= 10 and rss < 150
    print(f"targets (>=500x, >=10x peer, <150 MB): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
