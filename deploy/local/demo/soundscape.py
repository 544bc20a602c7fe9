"""Synthesised courtyard audio for the demo: traffic hum, voices, a neighbour's bass-heavy
music, door slams, and a Friday/Saturday party reverberating in a closed courtyard.

Pure numpy/scipy, no audio device. The signal is in pascal-proportional units scaled so
that, with the node's calibration ``offset_db`` (the level in dB that a signal of mean
square 1.0 reads, see ``klankkast.sensor``), each source has the unweighted sound
pressure level its :class:`Source` asks for:

    L = offset_db + 10·log10(mean(x²))   ⇔   rms(x) = 10^((L − offset_db)/20)

Levels are set as unweighted (Z) levels of each source while it sounds; the A-weighted
level the node reports is lower for the bass-heavy sources (that difference is what
``LCeq − LAeq`` shows). Rough, plausible figures for an inner-city courtyard:
distant traffic 45-55 dB(Z) by day, 8-10 dB less at night; conversation 55-65 dB at a
few metres; a neighbour's music 60-70 dB(Z) with most energy below 100 Hz; a party
75-80 dB(Z); a door slam 80-90 dB peak.

The courtyard's reverberation (a closed courtyard of hard facades: RT60 around 1.2 s)
is an exponentially decaying noise impulse response, −60 dB after ``rt60_s``
(ISO 3382-1 definition of the reverberation time), applied by a streaming overlap-add
convolution (:class:`OverlapAdd`) whose tail is carried from chunk to chunk.

Rendering is chunked (default 60 s) and deterministic for a given chunk length:
chunk ``k`` draws its random events from ``seed`` and ``k``, so a long file is
written with little memory (:func:`write_wav`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal

__all__ = [
    "Activity",
    "OverlapAdd",
    "Scene",
    "courtyard_scene",
    "render",
    "render_chunks",
    "reverb_ir",
    "rms_for_level",
    "write_wav",
]

Array = np.ndarray


def rms_for_level(level_db: float, offset_db: float) -> float:
    """RMS of a signal that reads ``level_db`` on a node calibrated with ``offset_db``."""
    return float(10.0 ** ((level_db - offset_db) / 20.0))


# --------------------------------------------------------------------------- sources
def _noise(n: int, rng: np.random.Generator) -> Array:
    return rng.standard_normal(n)


def _normalise(x: Array) -> Array:
    """Scale to unit RMS (zero stays zero)."""
    ms = float(np.mean(x * x)) if x.size else 0.0
    return x / math.sqrt(ms) if ms > 0 else x


def _traffic(n: int, fs: int, rng: np.random.Generator) -> Array:
    """Distant road traffic: red-ish noise (−6 dB/octave above 60 Hz) below ~1 kHz."""
    x = _noise(n, rng)
    sos = signal.butter(1, 60.0, "lowpass", fs=fs, output="sos")
    x = signal.sosfilt(sos, x)
    sos2 = signal.butter(2, [25.0, 1200.0], "bandpass", fs=fs, output="sos")
    return _normalise(signal.sosfilt(sos2, x))


def _voices(n: int, fs: int, rng: np.random.Generator) -> Array:
    """Speech-like noise: 300-3400 Hz band, syllabic (≈4 Hz) amplitude modulation."""
    x = _noise(n, rng)
    sos = signal.butter(2, [300.0, 3400.0], "bandpass", fs=fs, output="sos")
    x = signal.sosfilt(sos, x)
    t = np.arange(n) / fs
    rate = rng.uniform(3.0, 5.0)
    env = np.clip(np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)), 0.0, None) ** 2
    pauses = np.repeat(rng.random(n // fs + 1) < 0.75, fs)[:n]  # talk 75 % of the seconds
    return _normalise(x * env * pauses)


def _music(n: int, fs: int, rng: np.random.Generator, t0_s: float) -> Array:
    """Pop music through a wall: kick drum and bass line carry most of the energy."""
    t = t0_s + np.arange(n) / fs
    bpm = 124.0
    beat = 60.0 / bpm
    phase = np.mod(t, beat)
    # kick drum: pitch falling from 150 to 50 Hz, 120 ms decay
    kick_phase = 50.0 * phase + 100.0 * 0.03 * (1.0 - np.exp(-phase / 0.03))
    kick = np.sin(2 * np.pi * kick_phase) * np.exp(-phase / 0.12)
    bar = np.floor(t / (4 * beat)).astype(np.int64)
    notes = np.array([41.2, 41.2, 55.0, 49.0])  # E1 E1 A1 G1
    f_bass = notes[bar % 4]
    bass = np.sign(np.sin(2 * np.pi * f_bass * t)) * 0.5
    sos = signal.butter(2, 150.0, "lowpass", fs=fs, output="sos")
    bass = signal.sosfilt(sos, bass)
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.05
    hats = _noise(n, rng) * np.exp(-np.mod(t, beat / 2) / 0.01) * 0.03
    sos_h = signal.butter(2, 6000.0, "highpass", fs=fs, output="sos")
    hats = signal.sosfilt(sos_h, hats)
    return _normalise(1.0 * kick + 0.7 * bass + chord + hats)


def _door_slam(fs: int, rng: np.random.Generator) -> Array:
    """A door slam: a broadband thud decaying in ~80 ms with a low resonance."""
    n = int(0.4 * fs)
    t = np.arange(n) / fs
    thud = _noise(n, rng) * np.exp(-t / 0.03)
    body = np.sin(2 * np.pi * rng.uniform(70.0, 110.0) * t) * np.exp(-t / 0.08)
    sos = signal.butter(2, 4000.0, "lowpass", fs=fs, output="sos")
    x = signal.sosfilt(sos, thud) + 0.8 * body
    return np.asarray(x / float(np.max(np.abs(x))))


def reverb_ir(rt60_s: float, fs: int, rng: np.random.Generator) -> Array:
    """Exponentially decaying noise impulse response: −60 dB after ``rt60_s``.

    The energy envelope is exp(−t·6·ln10/RT60) (ISO 3382-1: RT60 is the time for a
    60 dB decay); amplitude decays at half that rate. Normalised to unit energy so the
    reverberant field carries the direct sound's energy.
    """
    n = max(1, int(rt60_s * fs))
    t = np.arange(n) / fs
    decay = np.exp(-t * 3.0 * math.log(10.0) / rt60_s)
    ir = _noise(n, rng) * decay
    ir[0] += 1.0  # the direct sound
    return ir / math.sqrt(float(np.sum(ir * ir)))


# --------------------------------------------------------------------------- scene
@dataclass(frozen=True)
class Activity:
    """A source active from ``start_s`` to ``end_s`` (scene time) at ``level_db`` (Z)."""

    kind: str  # "voices" | "music" | "party" | "slams"
    start_s: float
    end_s: float
    level_db: float
    #: door slams per hour (kind "slams") -- slams are events, not a continuous sound
    rate_per_h: float = 0.0


@dataclass(frozen=True)
class Scene:
    """What sounds when, for one node. Times in seconds from the scene's start.

    ``traffic_db(t_s)`` gives the traffic level at scene time ``t_s``; activities add
    voices, music, a reverberant party and door slams on top.
    """

    fs_hz: int
    offset_db: float
    activities: Sequence[Activity]
    traffic_db: Callable[[float], float]
    rt60_s: float = 1.2
    seed: int = 1
    slams_per_h: float = 4.0
    slam_db: float = 85.0
    extra: dict[str, float] = field(default_factory=dict)


def courtyard_scene(
    start_local_hour: float,
    duration_s: float,
    party: tuple[float, float] | None,
    *,
    fs_hz: int = 16000,
    offset_db: float = 110.0,
    seed: int = 1,
) -> Scene:
    """A courtyard evening: traffic falling off at night, voices, a neighbour's music,
    door slams, and optionally a party from ``party[0]`` to ``party[1]`` (seconds from
    the scene start) that reverberates in the closed courtyard.

    ``start_local_hour`` (0-24, Europe/Amsterdam) shapes the traffic's daily profile.
    """
    rng = np.random.default_rng(seed)

    def traffic_db(t_s: float) -> float:
        hour = (start_local_hour + t_s / 3600.0) % 24.0
        # busy 07-19, falling to a night minimum around 03:00 (≈10 dB lower)
        return 44.0 + 8.0 * 0.5 * (1 + math.cos(2 * math.pi * (hour - 14.0) / 24.0))

    acts: list[Activity] = []
    # people talking in the courtyard now and then
    t = 0.0
    while t < duration_s:
        t += float(rng.exponential(900.0))
        length = float(rng.uniform(60.0, 300.0))
        acts.append(Activity("voices", t, min(duration_s, t + length), float(rng.uniform(54, 62))))
        t += length
    # the neighbour's music for a while, windows open
    m0 = float(rng.uniform(0.05, 0.3)) * duration_s
    acts.append(Activity("music", m0, m0 + min(1800.0, 0.2 * duration_s), 64.0))
    if party is not None:
        p0, p1 = party
        acts.append(Activity("party", p0, p1, 78.0))
        acts.append(Activity("voices", p0, p1, 68.0))
        acts.append(Activity("slams", p0, p1, 86.0, rate_per_h=20.0))
    return Scene(
        fs_hz=fs_hz,
        offset_db=offset_db,
        activities=tuple(acts),
        traffic_db=traffic_db,
        seed=seed,
    )


def _chunk(scene: Scene, k: int, t0_s: float, n: int) -> Array:
    """The dry (direct) and wet (to be reverberated) signals of chunk ``k``."""
    fs = scene.fs_hz
    rng = np.random.default_rng([scene.seed, k])
    t1_s = t0_s + n / fs
    dry = np.zeros(n)
    wet = np.zeros(n)
    tr = _traffic(n, fs, rng)
    # traffic level follows the daily profile (linearly interpolated within the chunk)
    lv = np.interp(
        np.arange(n) / fs, [0.0, n / fs], [scene.traffic_db(t0_s), scene.traffic_db(t1_s)]
    )
    dry += tr * 10.0 ** ((lv - scene.offset_db) / 20.0)
    # default door slams (someone coming home) at a low rate
    slams = [(scene.slams_per_h, scene.slam_db, 0.0, math.inf)]
    for act in scene.activities:
        a, b = max(act.start_s, t0_s), min(act.end_s, t1_s)
        if act.kind == "slams":
            slams.append((act.rate_per_h, act.level_db, act.start_s, act.end_s))
            continue
        if b <= a:
            continue
        i0, i1 = int((a - t0_s) * fs), int((b - t0_s) * fs)
        if i1 <= i0:
            continue
        m = i1 - i0
        gain = rms_for_level(act.level_db, scene.offset_db)
        if act.kind == "voices":
            dry[i0:i1] += _voices(m, fs, rng) * gain
        elif act.kind == "music":
            dry[i0:i1] += _music(m, fs, rng, a) * gain
        elif act.kind == "party":
            # party music in the courtyard itself: heard mostly as reverberant field
            wet[i0:i1] += _music(m, fs, rng, a) * gain
        else:
            raise ValueError(
                f"activity kind must be voices, music, party or slams; got {act.kind!r}"
            )
    for rate_per_h, level_db, a_s, b_s in slams:
        a, b = max(a_s, t0_s), min(b_s, t1_s)
        if b <= a or rate_per_h <= 0:
            continue
        count = rng.poisson(rate_per_h * (b - a) / 3600.0)
        for _ in range(int(count)):
            at = int((rng.uniform(a, b) - t0_s) * fs)
            s = _door_slam(fs, rng) * math.sqrt(2.0) * rms_for_level(level_db, scene.offset_db)
            end = min(n, at + s.size)
            wet[at:end] += s[: end - at]
    return np.stack([dry, wet])


def render_chunks(scene: Scene, duration_s: float, chunk_s: float = 60.0) -> Iterator[Array]:
    """Yield the scene as float64 blocks of ``chunk_s`` seconds (the last may be shorter).

    The reverberant tail of each chunk is carried into the next (:class:`OverlapAdd`).
    """
    fs = scene.fs_hz
    ir = reverb_ir(scene.rt60_s, fs, np.random.default_rng([scene.seed, 1_000_000_007]))
    total = round(duration_s * fs)
    step = round(chunk_s * fs)
    k = 0
    done = 0
    reverb = OverlapAdd(ir)
    while done < total:
        n = min(step, total - done)
        dry, wet = _chunk(scene, k, done / fs, n)
        yield dry + reverb.process(wet)
        done += n
        k += 1


class OverlapAdd:
    """Streaming convolution with a fixed impulse response (overlap-add).

    State in, state out, like ``scipy.signal.lfilter``'s ``zi``/``zf``: the part of
    each block's convolution that rings past the block is kept and added to the next,
    so convolving block by block equals convolving the whole signal.
    """

    def __init__(self, ir: Array) -> None:
        self.ir = np.asarray(ir, dtype=float)
        self.tail = np.zeros(self.ir.size - 1)

    def process(self, block: Array) -> Array:
        n = block.size
        if n == 0:
            return np.zeros(0)
        conv = signal.fftconvolve(block, self.ir)  # n + len(ir) - 1 >= len(tail)
        conv[: self.tail.size] += self.tail
        self.tail = conv[n:]
        return np.asarray(conv[:n])


def render(scene: Scene, duration_s: float, chunk_s: float = 60.0) -> Array:
    """The whole scene in one array (for short scenes and tests)."""
    return np.concatenate(list(render_chunks(scene, duration_s, chunk_s)))


def write_wav(
    path: Path | str,
    scene: Scene,
    duration_s: float,
    chunk_s: float = 60.0,
    progress: Callable[[float], None] | None = None,
) -> Path:
    """Write the scene as a mono 32-bit float WAV (WAVE_FORMAT_IEEE_FLOAT), chunk by chunk.

    Float samples keep quiet night-time levels far above the quantisation floor of
    16-bit PCM. ``progress(fraction)`` is called after each chunk.
    """
    path = Path(path)
    fs = scene.fs_hz
    total = round(duration_s * fs)
    data_bytes = total * 4
    with open(path, "wb") as f:
        # RIFF header with a 'fact' chunk, as required for non-PCM formats
        f.write(b"RIFF")
        f.write(struct.pack("<I", 4 + 26 + 12 + 8 + data_bytes))
        f.write(b"WAVE")
        f.write(b"fmt ")
        f.write(struct.pack("<IHHIIHHH", 18, 3, 1, fs, fs * 4, 4, 32, 0))
        f.write(b"fact")
        f.write(struct.pack("<II", 4, total))
        f.write(b"data")
        f.write(struct.pack("<I", data_bytes))
        done = 0
        for block in render_chunks(scene, duration_s, chunk_s):
            peak = float(np.max(np.abs(block))) if block.size else 0.0
            if peak > 1.0:
                block = np.clip(block, -1.0, 1.0)  # the node would count this as overload
            f.write(block.astype("<f4").tobytes())
            done += block.size
            if progress is not None:
                progress(done / total)
    return path
