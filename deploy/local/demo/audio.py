"""Real audio through the node's code: a Friday night in the courtyard synthesised as
audio (:mod:`demo.soundscape`) and measured by the node's metrology core
(``klankkast-sensor simulate --wav``), in a worker process beside the synthesis of the
levels (both are CPU-bound: on two cores they run side by side)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import multiprocessing
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services import spawn

from ._common import AUDIO_FS_HZ, AUDIO_OFFSET_DB, Options, say
from .children import Children, check_exit, tool
from .scenario import Timeline, iso_local, local

__all__ = ["audio_worker", "render_audio", "start_audio"]

#: one WAV file at most (a multiple of the 60-s render chunk)
PIECE_S = 1800.0


def render_audio(
    site: str, audio_s: float, seed: int, tl: Timeline, audio_dir: Path
) -> Iterator[Path]:
    """Synthesise the real-audio window as WAV files of at most 30 minutes, one at a
    time (the caller measures and deletes each before the next is written)."""
    from . import soundscape

    fs_hz, offset_db = AUDIO_FS_HZ, AUDIO_OFFSET_DB
    p0 = round(audio_s * 0.4)
    start_hour = local(tl.audio_start_ms).hour + local(tl.audio_start_ms).minute / 60
    scene = soundscape.courtyard_scene(
        start_hour, audio_s, (p0, audio_s + 1), fs_hz=fs_hz, offset_db=offset_db, seed=seed
    )
    blocks = soundscape.render_chunks(scene, audio_s, chunk_s=60.0)
    for k in range(math.ceil(audio_s / PIECE_S)):
        length = min(PIECE_S, audio_s - k * PIECE_S)
        path = audio_dir / f"{site}-evening-{k + 1:02d}.wav"
        _write_piece(path, blocks, fs_hz, length)
        say(f"  audio: {path.name} ({length / 60:.0f} min, {fs_hz} Hz float) synthesised")
        yield path


def _write_piece(path: Path, blocks: Iterator[Any], fs_hz: int, length_s: float) -> Path:
    import numpy as np
    from scipy.io import wavfile

    need = round(length_s * fs_hz)
    parts = []
    have = 0
    while have < need:
        b = next(blocks)
        parts.append(b)
        have += b.size
    data = np.concatenate(parts)
    wavfile.write(path, fs_hz, np.clip(data[:need], -1, 1).astype(np.float32))
    return path


def _wav_seconds(path: Path) -> float:
    from scipy.io import wavfile

    fs, data = wavfile.read(path, mmap=True)
    return float(len(data) / fs)


def audio_worker(
    site: str,
    audio_s: float,
    seed: int,
    tl: Timeline,
    audio_dir: Path,
    node_cfg: Path,
    log: Path,
    t0: float,
) -> tuple[int, int]:
    """Synthesise the audio piece by piece and stream each through the node's code
    (``klankkast-sensor simulate --wav``); returns (seconds measured, pieces).

    Runs in a worker process: SIGTERM (the parent stopping) ends the running
    ``simulate`` too; Ctrl-C is left to the parent.
    """
    current: list[subprocess.Popen[bytes]] = []

    def on_term(_signum: int, _frame: Any) -> None:
        for proc in current:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    say.t0 = t0  # same clock as the parent (CLOCK_MONOTONIC is system-wide)
    t = tl.audio_start_ms
    n = 0
    for wav in render_audio(site, audio_s, seed, tl, audio_dir):
        say(f"  klankkast-sensor simulate --wav {wav.name} --start {iso_local(t)}")
        cmd = [*tool("klankkast-sensor"), "simulate", "--config", str(node_cfg),
               "--nodes", "1", "--rate", "max", "--wav", str(wav), "--start", iso_local(t),
               "--quiet"]  # fmt: skip
        current[:] = [spawn(cmd, log)]
        returncode = current[0].wait()
        current.clear()
        check_exit("klankkast-sensor simulate --wav", returncode, log)
        t += round(_wav_seconds(wav) * 1000)
        wav.unlink()
        n += 1
    return round((t - tl.audio_start_ms) / 1000), n


def start_audio(
    opts: Options, tl: Timeline, audio_dir: Path, node_cfg: Path, log: Path, children: Children
) -> tuple[concurrent.futures.ProcessPoolExecutor, concurrent.futures.Future[tuple[int, int]]]:
    """Start :func:`audio_worker` in a worker process (forked: it inherits the demo's
    imports and progress clock); the pool is stopped with the children."""
    ctx = multiprocessing.get_context("fork")
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
    children.pools.append(pool)
    job = pool.submit(
        audio_worker, opts.sites[0][0], opts.audio_s, opts.seed, tl, audio_dir, node_cfg, log,
        say.t0,
    )  # fmt: skip
    return pool, job
