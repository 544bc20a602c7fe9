"""``klankkast-sensor simulate``: synthetic frames for N virtual nodes.

For load tests, the ingest/alert tests and the demo. The frames go through the
node's own path: :func:`klankkast.sensor.wire.encode`, the durable outbox
(:class:`SqliteOutbox`, a separate file next to the node's: ``<outbox>.simulate``
unless ``--outbox`` is given) and :class:`PahoPublisher` with the node's flow
control (:class:`Dispatcher`).

Virtual nodes
-------------
Node ``i`` (1-based) is ``{node.id}-{i:03d}``; with ``--sites K`` (K > 1) the nodes
are spread round-robin over the sites ``{node.site}-{j}`` (j = 1..K), otherwise all
are under ``[node] site``. Each virtual node publishes a retained ``online`` status
at the start and ``offline`` at the end.

Levels
------
A quiet background with a day/night profile in Europe/Amsterdam local time
(about 39-42 dB(A) by day, 37-40 in the evening, 35-38 at night). During a planted
``--episode OFFSET_S:DURATION_S:LAEQ_DB`` (seconds from the first frame; repeatable;
every node of every site hears it) LAeq is LAEQ_DB ± 0.3 dB with a bass-heavy
music spectrum. Band levels are drawn first and LAeq, LCeq, LZeq follow from them
with the IEC 61672-1 A and C weightings, so bands, levels and ``bass`` (LCeq − LAeq)
are consistent; ``minute`` summaries are energy means of their seconds (LAFmax the
maximum, LA10...LA95 the exceedance levels of the 1-s LAeq values).

With ``--wav FILE`` the frames come from the real metrology core on the file's
samples instead (each virtual node gets the same frames), timestamped from
``--start``: real audio through the real node code, compressed in time with
``--rate max``.

Time
----
``--start`` is the ISO time of the first frame (naive means Europe/Amsterdam).
Without it: ``--rate max`` starts at now − duration (whole seconds) so that no frame
lies in the future; ``--rate realtime`` starts now and publishes each second when
it has passed.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from klankkast.decibel import energy_mean_level, energy_sum_level
from klankkast.sensor import wire
from klankkast.sensor.config import NodeConfig, load_config
from klankkast.sensor.errors import ConfigError, SensorError

__all__ = [
    "Episode",
    "SyntheticNode",
    "add_arguments",
    "band_nominals_for",
    "main",
    "minute_summary",
    "parse_episode",
    "parse_start",
    "virtual_nodes",
]

AMS = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True, slots=True)
class Episode:
    offset_s: float
    duration_s: float
    laeq_db: float

    def covers(self, t_s: float) -> bool:
        return self.offset_s <= t_s < self.offset_s + self.duration_s


def parse_episode(text: str) -> Episode:
    """``OFFSET_S:DURATION_S:LAEQ_DB`` → :class:`Episode`; ValueError with the reason."""
    parts = text.split(":")
    allowed = "OFFSET_S:DURATION_S:LAEQ_DB, e.g. 600:1200:72"
    if len(parts) != 3:
        raise ValueError(f"--episode must be {allowed}; got {text!r}")
    try:
        offset, duration, level = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--episode must be {allowed}; got {text!r}") from None
    if not (math.isfinite(offset) and offset >= 0):
        raise ValueError(f"--episode OFFSET_S must be >= 0; got {parts[0]!r}")
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"--episode DURATION_S must be > 0; got {parts[1]!r}")
    if not (20.0 <= level <= 130.0):
        raise ValueError(f"--episode LAEQ_DB must be from 20 to 130; got {parts[2]!r}")
    return Episode(offset, duration, level)


def parse_start(text: str) -> int:
    """ISO 8601 time → UTC ms. Naive times are Europe/Amsterdam local time."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--start must be an ISO 8601 time like 2026-11-27T22:00:00+01:00; got {text!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=AMS)
    return round(dt.timestamp() * 1000)


def virtual_nodes(site: str, node_id: str, n: int, sites: int = 1) -> list[tuple[str, str]]:
    """``(site, node)`` of the N virtual nodes (see the module docstring)."""
    out = []
    for i in range(1, n + 1):
        s = site if sites <= 1 else f"{site}-{(i - 1) % sites + 1}"
        out.append((s, f"{node_id}-{i:03d}"))
    return out


def band_nominals_for(fs_hz: int) -> tuple[str, ...]:
    """Nominal one-third-octave bands whose upper edge lies below Nyquist."""
    out = []
    for nominal in wire.BAND_NOMINALS:
        fm = _exact_mid_hz(nominal)
        if fm * 10 ** (1 / 20) < fs_hz / 2:
            out.append(nominal)
    return tuple(out)


def _exact_mid_hz(nominal: str) -> float:
    """IEC 61260-1 base-10 exact mid-band frequency of a nominal band."""
    f = float(nominal)
    x = round(10 * math.log10(f / 1000.0))
    return float(1000.0 * 10 ** (x / 10))


def _db_sum(levels: np.ndarray) -> float:
    return float(energy_sum_level(levels))


class SyntheticNode:
    """Synthetic 1-s frames of one virtual node (pure: seeded RNG, no I/O)."""

    def __init__(
        self,
        site: str,
        node: str,
        *,
        fs_hz: int = 48000,
        episodes: Sequence[Episode] = (),
        seed: int = 0,
    ) -> None:
        from klankkast.sensor.weighting import analogue_weighting_db

        self.site, self.node = site, node
        self.episodes = tuple(episodes)
        self.rng = np.random.default_rng(seed)
        self.nominals = band_nominals_for(fs_hz)
        f = np.array([_exact_mid_hz(n) for n in self.nominals])
        self.a_db = np.asarray(analogue_weighting_db("A", f))
        self.c_db = np.asarray(analogue_weighting_db("C", f))
        octaves = np.log2(f / 1000.0)
        # Background: traffic/ventilation hum, falling ~3 dB per octave above 250 Hz.
        self.shape_quiet = np.where(octaves < -2, -2.0 * (-2 - octaves), -3.0 * (octaves + 2))
        # Music: a bass hump around 63-125 Hz, falling above.
        self.shape_music = 8.0 - 4.0 * np.abs(np.log2(f / 90.0)) - 1.5 * np.maximum(octaves, 0)

    @staticmethod
    def background_db(t_ms: int) -> float:
        """Mean background LAeq by local time: day 40.5, evening 38.5, night 36.5 dB(A)."""
        hour = datetime.fromtimestamp(t_ms / 1000, AMS).hour
        if 7 <= hour < 19:
            return 40.5
        if 19 <= hour < 23:
            return 38.5
        return 36.5

    def frame(self, t_ms: int, offset_s: float) -> dict[str, Any]:
        """The ``second`` payload fields (without ``seq``) of the second at ``t_ms``."""
        rng = self.rng
        episode = next((e for e in self.episodes if e.covers(offset_s)), None)
        if episode is not None:
            target = episode.laeq_db + rng.uniform(-0.3, 0.3)
            shape = self.shape_music + rng.normal(0, 1.0, len(self.nominals))
            impulsive = rng.uniform(0.0, 2.0)
        else:
            target = self.background_db(t_ms) + rng.uniform(-1.5, 1.5)
            shape = self.shape_quiet + rng.normal(0, 1.0, len(self.nominals))
            impulsive = rng.uniform(0.0, 0.5)
        k = target - _db_sum(shape + self.a_db)
        bands = shape + k
        laeq = _db_sum(bands + self.a_db)
        lceq = _db_sum(bands + self.c_db)
        lzeq = _db_sum(bands)
        return {
            "site": self.site,
            "node": self.node,
            "t": int(t_ms),
            "dur_ms": 1000,
            "LAeq": round(laeq, 2),
            "LCeq": round(lceq, 2),
            "LZeq": round(lzeq, 2),
            "LAFmax": round(laeq + rng.uniform(2.0, 6.0), 2),
            "LAFmin": round(laeq - rng.uniform(2.0, 4.0), 2),
            "LASmax": round(laeq + rng.uniform(1.0, 3.0), 2),
            "LCpeak": round(lceq + rng.uniform(12.0, 18.0), 2),
            "bands": {n: round(float(v), 2) for n, v in zip(self.nominals, bands, strict=True)},
            "overload": 0,
            "nonfinite": 0,
            "bass": round(lceq - laeq, 2),
            "impulsive": round(impulsive, 2),
            "tonality": round(rng.uniform(-6.0, -1.0), 2),
            "tonal_band": None,
        }


def minute_summary(seconds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``minute`` payload fields (without ``seq``) summarising consecutive seconds.

    Equivalent levels are energy means (ISO 1996-1 §3.1.7); LAFmax/LASmax/LCpeak the
    maxima, LAFmin the minimum; LAN the level exceeded N % of the time, from the
    1-s LAeq values.
    """
    first = seconds[0]
    la = np.array([s["LAeq"] for s in seconds])
    out: dict[str, Any] = {
        "site": first["site"],
        "node": first["node"],
        "t": first["t"],
        "dur_ms": int(sum(s["dur_ms"] for s in seconds)),
    }
    for key in ("LAeq", "LCeq", "LZeq"):
        out[key] = round(energy_mean_level([s[key] for s in seconds]), 2)
    out["LAFmax"] = max(s["LAFmax"] for s in seconds)
    out["LAFmin"] = min(s["LAFmin"] for s in seconds)
    for n in (10, 50, 90, 95):
        out[f"LA{n}"] = round(float(np.percentile(la, 100 - n)), 2)
    out["LASmax"] = max(s["LASmax"] for s in seconds)
    out["LCpeak"] = max(s["LCpeak"] for s in seconds)
    out["bands"] = {
        n: round(energy_mean_level([s["bands"][n] for s in seconds]), 2) for n in first["bands"]
    }
    out["overload"] = int(sum(s["overload"] for s in seconds))
    out["nonfinite"] = int(sum(s["nonfinite"] for s in seconds))
    out["bass"] = round(out["LCeq"] - out["LAeq"], 2)
    out["impulsive"] = round(max(s["impulsive"] for s in seconds), 2)
    out["tonality"] = round(max(s["tonality"] for s in seconds), 2)
    out["tonal_band"] = None
    return out


# ------------------------------------------------------------------------ frame sources


def synthetic_frames(
    nodes: Sequence[tuple[str, str]],
    *,
    start_ms: int,
    duration_s: int,
    fs_hz: int,
    episodes: Sequence[Episode],
    summary_s: int,
    seed: int,
) -> Iterator[tuple[float, list[tuple[str, dict[str, Any]]]]]:
    """Yield ``(stream_offset_s_at_end, [(kind, payload), ...])`` one second at a time."""
    gens = [
        SyntheticNode(s, n, fs_hz=fs_hz, episodes=episodes, seed=seed * 100_003 + i)
        for i, (s, n) in enumerate(nodes)
    ]
    pending: list[list[dict[str, Any]]] = [[] for _ in gens]
    for i in range(duration_s):
        t = start_ms + i * 1000
        out: list[tuple[str, dict[str, Any]]] = []
        last = i == duration_s - 1
        for g, acc in zip(gens, pending, strict=True):
            f = g.frame(t, float(i))
            out.append(("second", f))
            acc.append(f)
            if len(acc) >= summary_s or last:
                out.append(("minute", minute_summary(acc)))
                acc.clear()
        yield float(i + 1), out


def wav_frames(
    cfg: NodeConfig,
    path: Path,
    nodes: Sequence[tuple[str, str]],
    *,
    start_ms: int,
    duration_s: float | None,
) -> Iterator[tuple[float, list[tuple[str, dict[str, Any]]]]]:
    """Frames of a WAV file measured by the real metrology core, block by block.

    The file is streamed (:class:`klankkast.sensor.wavio.WavReader`), never loaded
    whole; the meter uses the config's calibration and summary interval at the file's
    sample rate. Yields ``(stream_offset_s, [(kind, payload), ...])``.
    """
    from klankkast.sensor.service import KIND_OF_REPORT, make_meter
    from klankkast.sensor.wavio import WavReader

    with WavReader(path) as reader:
        fs = reader.info.fs_hz
        meter_cfg = NodeConfig(
            node=cfg.node,
            audio=replace(cfg.audio, samplerate=fs, channel=0),
            calibration=cfg.calibration,
            mqtt=cfg.mqtt,
            outbox=cfg.outbox,
        )
        meter = make_meter(meter_cfg)
        limit = None if duration_s is None else int(duration_s * fs)
        pos = 0
        block = fs * cfg.audio.block_ms // 1000
        chunks = reader.blocks(block)
        while True:
            chunk = next(chunks, None)
            if chunk is not None and limit is not None and pos + len(chunk) > limit:
                chunk = chunk[: max(0, limit - pos)]
            done = chunk is None or len(chunk) == 0
            reports = meter.flush() if done else meter.process(chunk)
            if chunk is not None:
                pos += len(chunk)
            out: list[tuple[str, dict[str, Any]]] = []
            for r in reports:
                kind = KIND_OF_REPORT.get(r.kind)
                if kind is None:
                    continue
                base = {
                    "t": start_ms + round(r.start_sample * 1000 / fs),
                    "dur_ms": round(r.n_samples * 1000 / fs),
                    **r.fields,
                }
                out.extend((kind, {"site": site, "node": node, **base}) for site, node in nodes)
            if out or done:
                yield pos / fs, out
            if done:
                return


def wav_duration_s(path: Path) -> float:
    """Length of a WAV file in seconds (header only)."""
    from klankkast.sensor.wavio import WavReader

    with WavReader(path) as reader:
        return float(reader.info.duration_s)


# ------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Publish synthetic frames for N virtual nodes through the node's own encoder, "
        "outbox and publisher. Virtual node i is {node.id}-{i:03d} under [node] site "
        "(or spread over sites {site}-1..{site}-K with --sites K). Exit status 0 when "
        "every frame was delivered, 1 on bad input, 2 when frames remain undelivered "
        "after --drain-timeout (they stay in the outbox for the next run)."
    )
    parser.add_argument(
        "--config", required=True, type=Path, metavar="FILE", help="node config file (TOML)"
    )
    parser.add_argument("--nodes", type=int, default=1, help="number of virtual nodes (default 1)")
    parser.add_argument("--sites", type=int, default=1, help="spread the nodes over K sites")
    parser.add_argument(
        "--duration", type=float, help="seconds of stream to generate (required without --wav)"
    )
    parser.add_argument(
        "--rate", choices=("realtime", "max"), default="realtime",
        help="realtime: one second per second; max: as fast as the broker takes them",
    )  # fmt: skip
    parser.add_argument(
        "--episode", action="append", default=[], metavar="OFFSET_S:DURATION_S:LAEQ_DB",
        help="plant nuisance: LAeq = LAEQ_DB during [OFFSET_S, OFFSET_S+DURATION_S) (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--start", help="ISO time of the first frame (naive = Europe/Amsterdam); "
        "default now - duration with --rate max, now with --rate realtime",
    )  # fmt: skip
    parser.add_argument(
        "--wav",
        type=Path,
        help="measure this WAV file with the real core instead of synthetic levels",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--outbox", type=Path, help="outbox file (default: the node's outbox path + '.simulate')"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120.0,
        help="seconds to wait at the end for the outbox to drain (default 120); "
        "exit status 2 if frames remain undelivered",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _fail(msg: str) -> int:
    print(f"klankkast-sensor simulate: {msg}", file=sys.stderr)
    return 1


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="simulate: %(levelname)s %(message)s")
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        return _fail(f"config error: {err}")
    if not 1 <= args.nodes <= 10_000:
        return _fail(f"--nodes must be from 1 to 10000; got {args.nodes}")
    if not 1 <= args.sites <= args.nodes:
        return _fail(f"--sites must be from 1 to --nodes ({args.nodes}); got {args.sites}")
    if args.wav is None and args.duration is None:
        return _fail("--duration is required (or give --wav)")
    if args.duration is not None and not (0 < args.duration <= 366 * 86400):
        return _fail(f"--duration must be from 1 s to 366 days; got {args.duration}")
    if args.wav is not None and not args.wav.is_file():
        return _fail(f"--wav must be a readable WAV file; got {str(args.wav)!r}")
    try:
        episodes = [parse_episode(e) for e in args.episode]
        start_arg = parse_start(args.start) if args.start else None
    except ValueError as err:
        return _fail(str(err))
    nodes = virtual_nodes(cfg.node.site, cfg.node.id, args.nodes, args.sites)
    try:
        for s, n in nodes:
            wire.topic(s, n, "second")
    except wire.SchemaError as err:
        return _fail(f"virtual node ids are not valid: {err}")
    return _run(cfg, args, nodes, episodes, start_arg)


def _run(
    cfg: NodeConfig,
    args: argparse.Namespace,
    nodes: list[tuple[str, str]],
    episodes: list[Episode],
    start_arg: int | None,
) -> int:
    from klankkast.sensor.delivery import Dispatcher
    from klankkast.sensor.outbox import NewFrame, SqliteOutbox
    from klankkast.sensor.service import (
        frame_builder,
        make_publisher,
        software_version,
        stream_of,
    )

    now_s = int(time.time())
    if args.wav is not None:
        try:
            wav_s = wav_duration_s(args.wav)
        except (OSError, ValueError, SensorError) as err:
            return _fail(f"--wav {str(args.wav)!r} cannot be read: {err}")
        total_s = wav_s if args.duration is None else min(args.duration, wav_s)
    else:
        total_s = float(args.duration)
    whole_s = math.ceil(total_s)
    if start_arg is not None:
        start_ms = start_arg
    elif args.rate == "max":
        start_ms = (now_s - whole_s) * 1000
    else:
        start_ms = now_s * 1000
    outbox_path = args.outbox or cfg.outbox.path.with_name(cfg.outbox.path.name + ".simulate")
    try:
        outbox = SqliteOutbox(
            outbox_path,
            int(cfg.outbox.max_mb * 1024 * 1024),
            synchronous="NORMAL",
            mirror=cfg.node.fast_paths,
        )
    except SensorError as err:
        return _fail(str(err))
    publisher = make_publisher(cfg, client_id=f"{cfg.client_id}-sim-{os.getpid()}")
    dispatcher = Dispatcher(outbox, publisher)
    version = software_version()
    started = time.monotonic()

    def status(state: str) -> None:
        for site, node in nodes:
            payload = {
                "site": site,
                "node": node,
                "t": int(time.time() * 1000),
                "state": state,
                "version": version,
                "uptime_s": round(time.monotonic() - started, 1),
                "outbox_depth": outbox.depth(),
                "outbox_evictions": outbox.evictions,
            }
            dispatcher.publish_status(
                wire.topic(site, node, "status"), wire.encode("status", payload)
            )

    dispatcher.start()
    publisher.start()
    status("online")
    if args.wav is not None:
        source = wav_frames(cfg, args.wav, nodes, start_ms=start_ms, duration_s=args.duration)
    else:
        source = synthetic_frames(
            nodes,
            start_ms=start_ms,
            duration_s=whole_s,
            fs_hz=cfg.audio.samplerate,
            episodes=episodes,
            summary_s=cfg.audio.summary_s,
            seed=args.seed,
        )
    wall0 = time.monotonic()
    frames = 0
    next_progress = wall0 + 5.0
    interrupted = False
    try:
        for offset_s, batch in source:
            if args.rate == "realtime":
                wait = wall0 + offset_s - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            else:
                # back-pressure: do not let the outbox grow without bound at max rate
                while outbox.depth() > 20_000:
                    time.sleep(0.05)
            new = [
                NewFrame(
                    stream_of(p["site"], p["node"], kind),
                    kind,
                    wire.topic(p["site"], p["node"], kind),
                    frame_builder(kind, p, cfg.node.fast_paths),
                )
                for kind, p in batch
            ]
            if new:
                outbox.append_many(new)
                frames += len(new)
                dispatcher.notify()
            if not args.quiet and time.monotonic() >= next_progress:
                next_progress = time.monotonic() + 5.0
                print(
                    f"simulate: {offset_s:.0f}/{total_s:.0f} s of stream, {frames} frames "
                    f"queued, {dispatcher.stats.acked} delivered, outbox {outbox.depth()}",
                    file=sys.stderr,
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
    dispatcher.wait_drained(args.drain_timeout, include_status=False)
    status("offline")
    dispatcher.wait_drained(min(5.0, args.drain_timeout))
    dispatcher.stop()
    publisher.close()
    left = outbox.depth()
    outbox.close()
    if not args.quiet or left:
        print(
            f"simulate: {frames} frames from {len(nodes)} node(s) in "
            f"{time.monotonic() - wall0:.1f} s; {dispatcher.stats.acked} delivered, "
            f"{left} undelivered" + (" (interrupted)" if interrupted else ""),
            file=sys.stderr,
            flush=True,
        )
    if left:
        return 2
    return 130 if interrupted else 0
