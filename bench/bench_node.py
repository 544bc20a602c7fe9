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
   last block; the one-off start-up is printed separately. Measured twice:
   **A**, blocks handed over at ``--pace`` times real time with the process idle in
   between, as on a node (every block then meets cold caches, which roughly doubles
   the core's own cost, so the core is measured the same way), with the outbox's WAL
   in its steady state; **B**, back to back as fast as possible (a backlog). Each is
   the best of two runs (noise on a shared machine only adds CPU time); the load
   average is printed before and after.
2. **End-to-end acknowledgements** (issue 18): the paced loop A again with ``[outbox]
   confirm = "ingest"``: a PUBACK only marks a frame published, and an acker in
   another process (standing in for the ingest: it subscribes to the node's frames
   and publishes one ack per frame received on ``klankkast/v1/lab/bench/ack``, as a
   node measuring in real time gets one per second) confirms it, which deletes it.
   The loop's CPU per audio second with acks against the same loop with ``confirm =
   "broker"`` (today's: deleted on PUBACK), run alternately (broker, ingest, ingest,
   broker) with the acker running throughout, best of two runs each. Target: ratio
   <= 1.10.
3. **Resident memory of a running node**: ``klankkast-sensor run`` as a subprocess
   publishing to the same broker, ``VmRSS`` after ``--rss-seconds``, with two test
   microphones: the ALSA ``file``-plugin one with a plain ALSA configuration (as a
   USB microphone on ``hw:`` on a Pi: the representative figure) and the private
   PulseAudio one (its ALSA ``pulse`` plugin loads the PulseAudio client, ~11 MB
   more). Target: < 120 MB. A microphone that cannot be started is reported.

Usage: ``.venv/bin/python bench/bench_node.py [--seconds 120] [--pace 10] [--quick]``
(``--acker URL`` is the helper process of figure 2.)
"""

from __future__ import annotations

import os

# As the node does (service.main, the systemd unit): one BLAS thread. OpenBLAS's
# extra threads spin-wait after every call, burning CPU a 1-s streaming meter never
# gains from.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
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
from klankkast.sensor.outbox import NewFrame, SqliteOutbox  # noqa: E402
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


def bench_core(blocks: list[np.ndarray], pace: float = 0.0) -> float:
    """CPU seconds of ``Meter.process`` over ``blocks``.

    ``pace`` 0: back to back (caches hot). ``pace`` k: each block handed over at k
    times real time, the process idle in between, as the node's worker gets them
    (cold caches make every block dearer, for the core as for the loop).
    """
    meter = Meter(FS, offset_db=120.0)
    wall0 = time.monotonic()
    t0 = time.process_time()
    for i, b in enumerate(blocks):
        if pace:
            time.sleep(max(0.0, wall0 + (i + 1) * BLOCK_MS / 1000 / pace - time.monotonic()))
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

    def __init__(
        self, blocks: list[np.ndarray], node_holder: dict[str, Any], pace: float = 0.0
    ) -> None:
        self.pace = pace  # 0: as fast as possible; k: k times real time
        self.wall0 = 0.0
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
        if self.pace:
            if self.i == 1:
                self.wall0 = time.monotonic()
            due = self.wall0 + self.i * BLOCK_MS / 1000 / self.pace
            time.sleep(max(0.0, due - time.monotonic()))  # the worker waits for audio
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


def warm_outbox(outbox: SqliteOutbox, frames: int = 1500) -> None:
    """Bring the outbox's WAL to its steady state, as on a node running for minutes.

    A fresh (or just restarted: close() truncates the WAL) outbox appends to a
    growing WAL file, and every fsync'd append then also commits the file's new
    size; after the first automatic checkpoint (1000 pages, about 2 minutes of
    frames) SQLite rewrites the WAL from its start and appends get cheaper. This
    appends and acknowledges ``frames`` dummy frames of another stream (deleted
    again, so the node starts with an empty outbox and its own ``seq`` at 0).
    """
    payload = b"x" * 660  # about a `second` frame
    for _ in range(frames):
        e = outbox.append(NewFrame("lab/warm/second", "second", "warm", lambda seq: payload))
        outbox.ack([e.id])


def bench_loop(
    blocks: list[np.ndarray],
    broker: Any,
    workdir: Path,
    *,
    warm: bool = False,
    pace: float = 0.0,
    confirm: str = "broker",
) -> tuple[float, float, int, float]:
    """(CPU from READY to the end, CPU including start-up, frames, wall seconds).

    ``confirm`` "ingest" needs an acker process (:func:`start_acker`) on the broker.
    """
    cfg = parse_config(
        {
            "node": {"id": "bench", "site": "lab", "status_interval_s": 60},
            "audio": {"samplerate": FS, "block_ms": BLOCK_MS},
            "calibration": {"offset_db": 120.0},
            "mqtt": {"url": broker.url},
            "outbox": {"path": str(workdir / "outbox.sqlite"), "confirm": confirm},
        },
        workdir,
    )
    holder: dict[str, Any] = {}
    source = QueueSource(blocks, holder, pace)
    outbox = SqliteOutbox(cfg.outbox.path, synchronous="FULL")
    if warm:
        warm_outbox(outbox)
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


def run_acker(url: str) -> int:
    """The ``--acker`` process: confirm every frame of node lab/bench once received.

    Stands in for the ingest (no InfluxDB): one ack message per frame, so that a
    node paced at k times real time gets as many acks per audio second as a node in
    real time does from the ingest (at most one per second, one frame per second).
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from klankkast.sensor import wire

    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    ack_topic = wire.topic("lab", "bench", "ack")
    ready = False

    def on_message(c: Any, u: Any, msg: Any) -> None:
        kind = msg.topic.rsplit("/", 1)[1]
        if kind in wire.FRAME_KINDS:
            seq = json.loads(msg.payload)["seq"]
            c.publish(ack_topic, wire.encode_ack(kind, [(seq, seq)]), qos=1)

    def on_subscribe(*a: Any) -> None:
        nonlocal ready
        if not ready:
            ready = True
            print("acker ready", flush=True)

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-acker", protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_subscribe = on_subscribe
    c.on_connect = lambda cl, *a: cl.subscribe("klankkast/v1/lab/bench/+", qos=1)
    c.connect(host, int(port))
    c.loop_forever()
    return 0


def start_acker(broker: Any) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--acker", broker.url], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "acker ready":
        proc.kill()
        raise RuntimeError("the acker process did not start")
    return proc


#: mapped files worth naming: PulseAudio client, scipy parts the node should not load
_NOTABLE_LIBS = ("libpulse", "scipy/special/", "scipy/linalg/", "scipy/optimize/", "scipy/sparse/")


def _plain_alsa_conf(workdir: Path) -> Path:
    """A copy of the system alsa.conf that skips the extra configuration files."""
    text = Path("/usr/share/alsa/alsa.conf").read_text()
    start = text.index("@hooks [")
    end = text.index("\n]\n", start) + 3
    out = workdir / "alsa-plain.conf"
    out.write_text(text[:start] + text[end:])
    return out


def _proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def rss_of_running_node(
    broker: Any, workdir: Path, run_s: float, mic_kind: str
) -> tuple[float, int, str] | None:
    """(VmRSS MB, threads, libraries of note) of ``klankkast-sensor run`` after ``run_s``.

    ``mic_kind`` "paced": the private PulseAudio test microphone (ALSA ``pulse``
    plugin: loads the PulseAudio client libraries into the node). "unpaced": the
    ALSA ``file``-plugin microphone (plain ALSA, as a USB microphone on ``hw:`` on
    a Pi; unclocked, so the node measures as fast as it can read).
    """
    try:
        from support.stack import UnpacedMic, start_paced_mic
    except Exception as err:  # pragma: no cover
        print(f"  (RSS: test microphone helpers unavailable: {err})")
        return None
    mic: Any
    try:
        if mic_kind == "paced":
            mic = start_paced_mic()
        else:
            mic = UnpacedMic(workdir / "mic", test_signal(run_s + 30), FS, tail_s=5.0)
            # alsa.conf without its first hook, which loads /etc/alsa/conf.d: there
            # libasound2-plugins makes the default PCM PulseAudio (and adds JACK), and
            # PortAudio's device scan would load their client libraries
            mic.env["ALSA_CONFIG_PATH"] = f"{_plain_alsa_conf(workdir)}:{mic.conf_path}"
    except Exception as err:
        print(f"  (RSS: {mic_kind} test microphone unavailable: {err})")
        return None
    cfg = workdir / f"node-{mic_kind}.toml"
    cfg.write_text(
        f'[node]\nid = "rss-{mic_kind}"\nsite = "lab"\nstatus_interval_s = 5\n'
        f'[audio]\ndevice = "{mic.device}"\nsamplerate = {FS}\n'
        f'[calibration]\noffset_db = 120.0\n[mqtt]\nurl = "{broker.url}"\n'
        f'[outbox]\npath = "rss-outbox-{mic_kind}.sqlite"\n'
    )
    exe = Path(sys.executable).with_name("klankkast-sensor")
    proc = subprocess.Popen(
        [str(exe), "run", "--config", str(cfg)],
        env=mic.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    player = None
    try:
        if mic_kind == "paced":
            player = mic.play(test_signal(run_s + 5), FS)
        time.sleep(run_s)
        if proc.poll() is not None:
            print(f"  (RSS: the {mic_kind} node exited early with status {proc.returncode})")
            return None
        st = _proc_status(proc.pid)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        libs = [n for n in _NOTABLE_LIBS if n in maps]
        return int(st["VmRSS"].split()[0]) / 1024, int(st["Threads"]), ", ".join(libs) or "-"
    finally:
        if player is not None:
            player.terminate()
        proc.terminate()
        proc.wait(timeout=30)
        mic.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="audio seconds (default 120)")
    ap.add_argument("--rss-seconds", type=float, default=20.0, help="run time before RSS")
    ap.add_argument(
        "--pace",
        type=float,
        default=10.0,
        help="speed of the paced loop runs, times real time (default 10)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 s of audio, 5 s RSS")
    ap.add_argument("--acker", metavar="URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.acker:
        return run_acker(args.acker)
    seconds = 10.0 if args.quick else args.seconds
    rss_s = 5.0 if args.quick else args.rss_seconds
    pace = args.pace
    x = test_signal(seconds)
    blocks = blocks_of(x)
    print(f"node loop benchmark: {seconds:g} s of 48 kHz audio in {BLOCK_MS}-ms blocks")
    print(f"  machine load before: {os.getloadavg()[0]:.2f} (1-min load average)")
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp, Broker.launch() as broker:
        work = Path(tmp)
        bench_core(blocks[:20])  # warm-up: filter design caches, FFT plans
        # This machine may be shared: repeat and keep the best run of each (noise from
        # other processes only ever adds CPU time, to both sides alike).
        cores = [bench_core(blocks)]
        burst = [bench_loop(blocks, broker, work / "burst1")]
        cores_p = [bench_core(blocks, pace)]
        paced = [bench_loop(blocks, broker, work / "paced1", warm=True, pace=pace)]
        cores.append(bench_core(blocks))
        burst.append(bench_loop(blocks, broker, work / "burst2"))
        cores_p.append(bench_core(blocks, pace))
        paced.append(bench_loop(blocks, broker, work / "paced2", warm=True, pace=pace))
        # acks: the same loop A with confirm = "ingest" and "broker" alternately (broker,
        # ingest, ingest, broker), all four with the acker process running (it acks
        # the broker runs' frames too; those nodes do not subscribe, so only the node
        # side differs)
        acker = start_acker(broker)
        acked: list[tuple[float, float, int, float]] = []
        plain: list[tuple[float, float, int, float]] = []
        try:
            for k, confirm in enumerate(("broker", "ingest", "ingest", "broker")):
                (acked if confirm == "ingest" else plain).append(
                    bench_loop(blocks, broker, work / f"e2e{k}", warm=True, pace=pace,
                               confirm=confirm)
                )  # fmt: skip
        finally:
            acker.kill()
            acker.wait(10)
        core_hot, core_paced = min(cores), min(cores_p)
        loop, loop_all, frames, wall = min(paced)
        loop_burst = min(b[0] for b in burst)
        ratio = loop / core_paced
        ratio_burst = loop_burst / core_hot

        def ms(cpu_s: float) -> str:
            return f"{cpu_s / seconds * 1000:7.2f} ms CPU per audio s"

        def runs(values: list[float]) -> str:
            return ", ".join(f"{v / seconds * 1000:.2f}" for v in values)

        def verdict(r: float) -> str:
            return f"{r:5.2f}  (target <= 1.5)  {'OK' if r <= 1.5 else 'OVER'}"

        print(f"  A. blocks at {pace:g}x real time, idle in between as on a node (cold caches):")
        print(f"     pure core (Meter.process): {ms(core_paced)}  (runs: {runs(cores_p)})")
        print(
            f"     whole node loop:           {ms(loop)}  (runs: {runs([p[0] for p in paced])})"
            f"\n       outbox WAL in steady state; {frames} frames published and acknowledged"
            f" in {wall:.1f} s wall\n"
            f"       with start-up (set-up, connect, meter): {ms(loop_all)}"
        )
        print(f"     ratio loop / core:         {verdict(ratio)}")
        print("  B. back to back, as fast as possible (a backlog; caches hot, threads overlap):")
        print(f"     pure core (Meter.process): {ms(core_hot)}  (runs: {runs(cores)})")
        print(
            f"     whole node loop:           {ms(loop_burst)}  "
            f"(runs: {runs([b[0] for b in burst])}; fresh outbox)"
        )
        print(f"     ratio loop / core:         {verdict(ratio_burst)}")
        print("  (A is the node's situation: audio arrives in real time.)")
        print(f"  real-time load on this CPU:  {loop / seconds:7.1%} of one core")
        loop_acked, _all, frames_acked, _wall = min(acked)
        loop_plain = min(plain)[0]
        ratio_acks = loop_acked / loop_plain
        print('  2. end-to-end acks: loop A with confirm = "ingest" against confirm = "broker":')
        print(
            f"     confirm = broker (today):  {ms(loop_plain)}  "
            f"(runs: {runs([p[0] for p in plain])})\n"
            f"     confirm = ingest (acks):   {ms(loop_acked)}  "
            f"(runs: {runs([a[0] for a in acked])}; {frames_acked} frames confirmed)"
        )
        print(
            f"     ratio acks / broker:       {ratio_acks:5.2f}  (target <= 1.10)  "
            f"{'OK' if ratio_acks <= 1.10 else 'OVER'}"
        )
        results = {}
        for kind in ("unpaced", "paced"):
            results[kind] = rss_of_running_node(broker, work, rss_s, kind)
        for kind, label in (
            ("unpaced", "plain ALSA mic (file plugin; as a USB mic on hw: on a Pi)"),
            ("paced", "PulseAudio test mic (ALSA pulse plugin)"),
        ):
            r = results[kind]
            if r is None:
                continue
            rss, threads, libs = r
            print(f"  RSS of a running node, {label}:\n"
                  f"                               {rss:7.1f} MB  (target < 120)  "
                  f"{'OK' if rss < 120 else 'OVER'}  [{threads} threads; mapped: {libs}]")  # fmt: skip
        print(
            "  (the plain-ALSA figure is the representative one: a node on a Pi captures "
            "from the\n   USB microphone through ALSA hw and loads no PulseAudio libraries)"
        )
    print(f"  machine load after:  {os.getloadavg()[0]:.2f} (1-min load average)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
