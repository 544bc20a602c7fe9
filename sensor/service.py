"""``klankkast-sensor run``: the node, wired in one place.

config → adapters (:class:`SoundDeviceSource`, :class:`SqliteOutbox`,
:class:`PahoPublisher`) → metrology core (``Meter``) → run loop → ordered shutdown.

The worker (main thread) reads audio blocks from the capture queue, anchors them to
UTC with :class:`SampleClock`, runs the meter, encodes each interval report with the
wire contract and appends it to the outbox; the delivery thread publishes the
outbox. On SIGTERM: stop audio → flush the partial interval to the outbox → give the
outbox a moment to drain → publish the retained ``offline`` status → disconnect.
systemd: ``Type=notify`` (``READY=1``, ``STATUS=``, ``STOPPING=1``) and the watchdog
(``WATCHDOG=1`` from the worker loop, so a hung worker gets restarted).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from klankkast.sensor import wire
from klankkast.sensor._fastpaths import splice_frame_builder
from klankkast.sensor.clock import SampleClock, cpu_temp_c, now_ms, ntp_synchronized
from klankkast.sensor.config import NodeConfig, load_config, read_password
from klankkast.sensor.delivery import Dispatcher
from klankkast.sensor.errors import AudioDeviceError, ConfigError, SensorError
from klankkast.sensor.outbox import NewFrame, Outbox, SqliteOutbox
from klankkast.sensor.publisher import PahoPublisher, Publisher, Will

__all__ = [
    "Node",
    "SystemdNotifier",
    "add_arguments",
    "frame_builder",
    "main",
    "make_meter",
    "make_publisher",
    "software_version",
]

log = logging.getLogger("klankkast.sensor")

#: wire kind of each IntervalReport kind of the metrology core
KIND_OF_REPORT = {"second": "second", "summary": "minute", "minute": "minute"}


def software_version() -> str:
    try:
        from importlib.metadata import version

        return version("klankkast")
    except Exception:
        return "0+unknown"


class _StreamLost(Exception):
    """The audio source reported a gap (device lost, callbacks stalled)."""


class MeterLike(Protocol):
    def process(self, block: Any) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


# ------------------------------------------------------------------------ systemd


class SystemdNotifier:
    """sd_notify(3) over ``$NOTIFY_SOCKET`` with the standard library; a no-op without it."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + addr[1:] if addr.startswith("@") else addr
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ok_pid = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and ok_pid else None
        self._last_ping = 0.0

    def notify(self, message: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.setblocking(False)  # never let a slow reader stall the measuring loop
                s.connect(self.address)
                s.sendall(message.encode())
            return True
        except OSError as err:
            log.debug("sd_notify failed: %s", err)
            return False

    def watchdog(self) -> None:
        """Ping the watchdog at most every half ``WatchdogSec``."""
        if self.watchdog_s is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_s / 2:
            self._last_ping = now
            self.notify("WATCHDOG=1")


# ------------------------------------------------------------------------ helpers


def frame_builder(kind: str, payload: dict[str, Any], fast: bool = True) -> Callable[[int], bytes]:
    """``build(seq)`` for the outbox; the payload is validated and encoded once, up front.

    ``wire.encode`` (validation and JSON) runs once here, before the outbox
    transaction, with ``seq`` 0, so a frame that breaks the contract fails here. With
    ``fast`` (``[node] fast_paths``) ``build`` writes ``seq`` into those bytes
    (:func:`klankkast.sensor._fastpaths.splice_frame_builder`); without, it encodes
    ``{**payload, "seq": seq}`` again. The bytes are the same.
    """
    if "seq" in payload:
        raise wire.SchemaError("bad_type", "seq is assigned by the outbox, not by the payload")
    base: bytes = wire.encode(kind, {**payload, "seq": 0})  # fails before the transaction
    build = splice_frame_builder(base, _check_seq) if fast else None
    if build is not None:
        return build

    def build_plain(seq: int) -> bytes:
        _check_seq(seq)
        data: bytes = wire.encode(kind, {**payload, "seq": seq})
        return data

    return build_plain


def _check_seq(seq: int) -> None:
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise wire.SchemaError("bad_type", f"seq must be a non-negative integer; got {seq!r}")


def stream_of(site: str, node: str, kind: str) -> str:
    """Outbox stream name; ``seq`` counts per stream (per node and kind)."""
    return f"{site}/{node}/{kind}"


def make_meter(cfg: NodeConfig) -> MeterLike:
    """The metrology core for this config (``klankkast.sensor.dsp.Meter``)."""
    from klankkast.sensor.dsp import Meter

    response = None
    if cfg.calibration.mic_response is not None:
        from klankkast.sensor.micresponse import load_mic_response

        try:
            response = load_mic_response(cfg.calibration.mic_response)
        except (SensorError, ValueError, OSError) as err:
            raise ConfigError(
                "calibration.mic_response",
                str(cfg.calibration.mic_response),
                f"must be a readable microphone response file ({err})",
            ) from None
    meter: MeterLike = Meter(
        cfg.audio.samplerate,
        offset_db=cfg.calibration.offset_db,
        mic_response=response,
        summary_s=float(cfg.audio.summary_s),
        fast_paths=cfg.node.fast_paths,
    )
    return meter


def make_publisher(
    cfg: NodeConfig, *, client_id: str | None = None, will: Will | None = None
) -> PahoPublisher:
    m = cfg.mqtt
    return PahoPublisher(
        m.host,
        m.port,
        client_id=client_id or cfg.client_id,
        tls=m.tls,
        username=m.username,
        password=read_password(cfg),
        ca_file=str(m.ca_file) if m.ca_file else None,
        cert_file=str(m.cert_file) if m.cert_file else None,
        key_file=str(m.key_file) if m.key_file else None,
        keepalive_s=m.keepalive_s,
        session_expiry_s=m.session_expiry_s,
        max_inflight=m.max_inflight,
        will=will,
        reconnect_max_s=m.reconnect_max_s,
    )


def disk_free_mb(path: Path) -> float | None:
    try:
        return round(shutil.disk_usage(path).free / 1e6, 1)
    except OSError:
        return None


# ------------------------------------------------------------------------ the node


class Node:
    """The node's run loop; adapters are injected so tests can swap them."""

    def __init__(
        self,
        cfg: NodeConfig,
        *,
        source: Any,
        outbox: Outbox,
        publisher: Publisher,
        meter_factory: Callable[[], MeterLike],
        notifier: SystemdNotifier | None = None,
        clock_synced: Callable[[], bool | None] = ntp_synchronized,
        drain_s: float | None = None,
        audio_backoff_s: float = 1.0,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.outbox = outbox
        self.publisher = publisher
        self.dispatcher = Dispatcher(
            outbox,
            publisher,
            on_connect=self._on_connect,
            confirm=cfg.outbox.confirm,
            confirm_timeout_s=cfg.outbox.confirm_timeout_s,
        )
        self.meter_factory = meter_factory
        self.notifier = notifier or SystemdNotifier({})
        self._clock_synced_fn = clock_synced
        self._clock_synced: bool | None = None
        self._clock_checked = -1e9
        # how long shutdown waits for the outbox to empty: a confirmation from the
        # ingest takes a batch (1 s) and an ack slot (1 s) longer than a PUBACK
        self.drain_s = (
            drain_s if drain_s is not None else (10.0 if cfg.outbox.confirm == "ingest" else 3.0)
        )
        self.audio_backoff_s = audio_backoff_s
        self.stop_event = threading.Event()
        self.started = time.monotonic()
        self.version = software_version()
        self.site, self.node = cfg.node.site, cfg.node.id
        self.frames = 0
        self.encode_errors = 0
        self.reanchors = 0
        self._meter: MeterLike | None = None
        self._clock: SampleClock | None = None
        self._samples = 0
        self._xruns_reported = 0
        self._error: str | None = None
        self._audio_attempts = 0
        self.bad_acks = 0
        if cfg.outbox.confirm == "ingest":
            publisher.subscribe(wire.topic(self.site, self.node, "ack"), self._on_ack_message)

    def _on_ack_message(self, topic: str, payload: bytes) -> None:
        """The ingest confirmed frames (paho's network thread: decode and queue only)."""
        try:
            kind, ranges = wire.decode_ack(payload)
        except wire.SchemaError as err:
            self.bad_acks += 1
            log.warning("ignoring a malformed ack on %s: %s", topic, err)
            return
        self.dispatcher.confirmed(stream_of(self.site, self.node, kind), ranges)

    def _on_connect(self) -> None:
        # called on paho's network thread: only queue the status
        self._send_status()

    # ---- status ------------------------------------------------------------------------
    def will(self) -> Will:
        return Will(
            wire.topic(self.site, self.node, "status"),
            wire.encode("status", self._status_payload("offline", will=True)),
        )

    def _status_payload(self, state: str | None = None, *, will: bool = False) -> dict[str, Any]:
        mono = time.monotonic()
        if not will and mono - self._clock_checked > 60:
            self._clock_checked = mono
            self._clock_synced = self._clock_synced_fn()
        xruns = int(self.source.xruns)
        audio = str(getattr(self.source, "state", "unknown"))
        if state is None:
            degraded = audio != "running" or self._clock_synced is False
            degraded = degraded or xruns > self._xruns_reported
            state = "degraded" if degraded else "online"
            self._xruns_reported = xruns
        p: dict[str, Any] = {
            "site": self.site,
            "node": self.node,
            "t": int(now_ms()),
            "state": state,
            "version": self.version,
            "uptime_s": 0.0 if will else round(mono - self.started, 1),
            "xruns": xruns,
            "outbox_depth": int(self.outbox.depth()),
            "outbox_evictions": int(self.outbox.evictions),
            **self._unconfirmed_fields(),
            "calibrated_at": self.cfg.calibration.calibrated_at,
            # only `calibrate` (or an installer with a certificate) sets calibrated_at
            "calibrated": self.cfg.calibration.calibrated_at is not None,
            "cpu_temp_c": cpu_temp_c(),
            "audio": audio,
            "reanchors": self.reanchors + (self._clock.reanchors if self._clock else 0),
            "drift_ms": round(self._clock.drift_ms, 1)
            if self._clock and self._clock.drift_ms is not None
            else None,
            "error": "connection lost"
            if will
            else (self._error or getattr(self.source, "last_error", None)),
        }
        if self._clock_synced is not None:
            p["clock_synced"] = self._clock_synced
        free = disk_free_mb(self.cfg.outbox.path.parent)
        if free is not None:
            p["disk_free_mb"] = free
        if isinstance(p["error"], str):
            p["error"] = p["error"][:200]
        return p

    def _unconfirmed_fields(self) -> dict[str, Any]:
        """Frames published but not yet confirmed by the ingest, and the oldest one's age."""
        if self.cfg.outbox.confirm != "ingest":
            return {}
        n, first_ms = self.outbox.unconfirmed()
        age_s = 0.0 if first_ms is None else max(0.0, (int(now_ms()) - first_ms) / 1000.0)
        return {"unconfirmed": int(n), "unconfirmed_age_s": round(age_s, 1)}

    def _send_status(self, state: str | None = None) -> dict[str, Any]:
        p = self._status_payload(state)
        self.dispatcher.publish_status(
            wire.topic(self.site, self.node, "status"), wire.encode("status", p)
        )
        return p

    # ---- measurement -------------------------------------------------------------------
    def _emit(self, reports: Sequence[Any]) -> None:
        if not reports or self._clock is None:
            return
        frames = []
        fs = self.cfg.audio.samplerate
        for r in reports:
            kind = KIND_OF_REPORT.get(r.kind)
            if kind is None:
                continue
            payload = {
                "site": self.site,
                "node": self.node,
                "t": self._clock.t_ms(r.start_sample),
                "dur_ms": round(r.n_samples * 1000 / fs),
                **r.fields,
            }
            try:
                build = frame_builder(kind, payload, self.cfg.node.fast_paths)
            except wire.SchemaError as err:
                self.encode_errors += 1
                log.error("dropping a %s frame that breaks the wire contract: %s", kind, err)
                continue
            frames.append(
                NewFrame(
                    stream_of(self.site, self.node, kind),
                    kind,
                    wire.topic(self.site, self.node, kind),
                    build,
                )
            )
        if frames:
            self.outbox.append_many(frames)
            self.frames += len(frames)
            self.dispatcher.notify()

    def _end_stream(self) -> None:
        """Flush the partial interval of the current stream (device lost or shutdown)."""
        if self._meter is not None:
            self._emit(self._meter.flush())
        if self._clock is not None:
            self.reanchors += self._clock.reanchors
        self._meter = None
        self._clock = None

    def _open_audio(self) -> bool:
        self._audio_attempts += 1
        try:
            if self._audio_attempts > 1:
                self.source.reopen()
            else:
                self.source.start()
        except AudioDeviceError as err:
            self._error = str(err)
            log.warning("%s", err)
            return False
        self._error = None
        self._meter = self.meter_factory()
        self._clock = SampleClock(self.cfg.audio.samplerate)
        self._samples = 0
        log.info("audio stream open: %s at %d Hz", self.cfg.audio.device, self.cfg.audio.samplerate)
        return True

    def _measure(self, item: Any) -> None:
        """One block: anchor it in time, run the meter, put finished intervals in the outbox."""
        assert self._meter is not None and self._clock is not None
        n = len(item.samples)
        before = self._clock.reanchors
        self._clock.observe(self._samples + n, item.wall_ms)
        if self._clock.reanchors != before:
            log.warning(
                "sample clock re-anchored by %.1f ms (audio clock drift or a system clock step)",
                self._clock.drift_ms or 0.0,
            )
        reports = self._meter.process(item.samples)
        self._samples += n
        self._emit(reports)

    def run(self) -> int:
        """Run until :attr:`stop_event` is set; then shut down in order. Returns 0."""
        self.dispatcher.start()
        self.publisher.start()
        backoff = self.audio_backoff_s
        next_open = 0.0
        audio_ok = self._open_audio()
        if not audio_ok:
            next_open = time.monotonic() + backoff
        self.notifier.notify("READY=1")
        next_status = time.monotonic() + min(5.0, self.cfg.node.status_interval_s)
        self._send_status()
        while not self.stop_event.is_set():
            self.notifier.watchdog()
            now = time.monotonic()
            if now >= next_status:
                p = self._send_status()
                self.notifier.notify(
                    f"STATUS={p['state']}: audio {p['audio']}, outbox {p['outbox_depth']}"
                    f" ({p.get('unconfirmed', 0)} unconfirmed), xruns {p['xruns']}"
                )
                next_status = now + self.cfg.node.status_interval_s
            if not audio_ok:
                if now >= next_open:
                    audio_ok = self._open_audio()
                    if audio_ok:
                        backoff = self.audio_backoff_s
                        self._send_status()
                    else:
                        backoff = min(backoff * 2, 60.0)
                        next_open = now + backoff
                self.stop_event.wait(min(0.2, max(0.0, next_open - now)))
                continue
            try:
                item = self.source.read(0.25)
                if item is None:
                    continue
                if not hasattr(item, "samples"):  # Gap: the device was lost
                    raise _StreamLost(item.reason)
                self._measure(item)
            except _StreamLost as lost:
                log.warning("audio stream lost: %s; reopening", lost)
                self._error = f"audio lost: {lost}"
            except Exception as err:  # top of the run loop: log, restart the stream
                log.exception("measuring loop failed; restarting the audio stream")
                self._error = f"{type(err).__name__}: {err}"
            else:
                continue
            with contextlib.suppress(Exception):
                self._end_stream()
            with contextlib.suppress(Exception):
                self.source.stop()
            audio_ok = False
            next_open = time.monotonic() + backoff
            self._send_status("degraded")
        return self.shutdown()

    def shutdown(self) -> int:
        """Ordered shutdown: audio → flush → drain → retained offline → disconnect."""
        self.notifier.notify("STOPPING=1")
        self.source.stop()
        self._end_stream()
        drained = self.dispatcher.wait_drained(self.drain_s, include_status=False)
        p = self._send_status("offline")
        self.dispatcher.wait_drained(2.0 if self.publisher.connected else 0.0)
        self.dispatcher.stop()
        self.publisher.close()
        depth = self.outbox.depth()
        self.outbox.close()
        log.info(
            "stopped: %d frames measured, %d left in the outbox%s, xruns %d",
            self.frames,
            depth,
            "" if drained else " (delivered after the next start)",
            p["xruns"],
        )
        return 0


# ------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the node: capture from the configured microphone, measure calibrated levels "
        "every second (and a summary per [audio] summary_s), store every frame in the "
        "durable outbox and publish it over MQTT (QoS 1); a frame is deleted once the "
        "ingest confirms it stored it ([outbox] confirm = ingest, the default) or on the "
        "broker's PUBACK (confirm = broker). Survives "
        "broker outages, lost audio devices and restarts without losing or renumbering "
        "frames. SIGTERM/SIGINT: stop audio, flush the partial second, publish the "
        "retained 'offline' status, disconnect. Speaks systemd's notify protocol "
        "(READY, STATUS, WATCHDOG) when NOTIFY_SOCKET is set. Exit status 0 after a "
        "clean stop, 1 on a config error (one line naming key, value and what is allowed)."
    )
    parser.add_argument(
        "--config", required=True, type=Path, metavar="FILE",
        help="node config file (TOML), e.g. /etc/klankkast/node.toml",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level on stderr (the journal under systemd); default INFO",
    )  # fmt: skip


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(args: argparse.Namespace) -> int:
    # One BLAS thread, set before numpy loads: OpenBLAS's extra threads spin-wait
    # after each call and burn CPU that a streaming 1-s meter never gains from.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        print(f"klankkast-sensor run: config error: {err}", file=sys.stderr)
        return 1
    setup_logging(args.log_level)
    from klankkast.sensor.capture import SoundDeviceSource

    try:
        meter_factory = _checked_meter_factory(cfg)
        outbox = SqliteOutbox(
            cfg.outbox.path, int(cfg.outbox.max_mb * 1024 * 1024), mirror=cfg.node.fast_paths
        )
    except (ConfigError, SensorError) as err:
        print(f"klankkast-sensor run: {err}", file=sys.stderr)
        return 1
    source = SoundDeviceSource(
        cfg.audio.device,
        cfg.audio.samplerate,
        block_ms=cfg.audio.block_ms,
        channel=cfg.audio.channel,
    )
    publisher = make_publisher(cfg)
    node = Node(
        cfg,
        source=source,
        outbox=outbox,
        publisher=publisher,
        meter_factory=meter_factory,
        notifier=SystemdNotifier(),
    )
    publisher.will = node.will()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        node.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "klankkast node %s/%s %s: outbox %s (%d waiting), broker %s",
        cfg.node.site,
        cfg.node.id,
        node.version,
        cfg.outbox.path,
        outbox.depth(),
        cfg.mqtt.url,
    )
    return node.run()


def _checked_meter_factory(cfg: NodeConfig) -> Callable[[], MeterLike]:
    """Build one meter now (so a bad mic response fails at start-up), then a factory."""
    make_meter(cfg)
    return lambda: make_meter(cfg)
