"""``klankkast-sensor check``: is this node healthy?

Validates the config, opens the audio device and measures for 10 s through the
metrology core, connects to the broker, and reports clock synchronisation, free disk
space and the outbox depth. Exit status: 0 healthy, 1 config error, 2 unhealthy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from klankkast.sensor.config import NodeConfig, load_config
from klankkast.sensor.errors import ConfigError, SensorError

__all__ = ["add_arguments", "main"]

#: Less free space than this next to the outbox is unhealthy.
MIN_FREE_MB = 100.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Health check of a node: config, 10 s of measurement from the audio device, broker "
        "connection, clock sync, disk space, outbox depth. Exit status 0 healthy, 1 config "
        "error, 2 unhealthy. Run it while the node is stopped if the device cannot be shared."
    )
    parser.add_argument("--config", required=True, type=Path, help="node config file (TOML)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="seconds to measure (default 10)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the broker (default 10)"
    )


def _line(ok: bool | None, what: str, detail: str) -> None:
    mark = {True: "OK  ", False: "FAIL", None: "WARN"}[ok]
    print(f"{mark} {what}: {detail}", flush=True)


def check_audio(cfg: NodeConfig, seconds: float) -> bool:
    from klankkast.sensor.capture import SoundDeviceSource, record
    from klankkast.sensor.service import make_meter

    source = SoundDeviceSource(
        cfg.audio.device,
        cfg.audio.samplerate,
        block_ms=cfg.audio.block_ms,
        channel=cfg.audio.channel,
    )
    try:
        samples = record(source, seconds)
    except SensorError as err:
        _line(False, "audio", str(err))
        return False
    meter = make_meter(cfg)
    reports = [r for r in meter.process(samples) + meter.flush() if r.kind == "summary"]
    f = reports[-1].fields if reports else {}
    ok = source.xruns == 0 and bool(f) and f["nonfinite"] == 0
    _line(
        ok if f.get("overload", 0) == 0 else None,
        "audio",
        f"{cfg.audio.device!r} at {cfg.audio.samplerate} Hz: {seconds:g} s LAeq {f.get('LAeq')} dB, "
        f"LAFmax {f.get('LAFmax')} dB, LA90 {f.get('LA90')} dB, overload {f.get('overload')}, "
        f"xruns {source.xruns}",
    )
    return ok


def check_broker(cfg: NodeConfig, timeout_s: float) -> bool:
    """Name the cause when the broker cannot be used (:mod:`klankkast.sensor.brokerprobe`)."""
    from klankkast.sensor import wire
    from klankkast.sensor.brokerprobe import probe_broker
    from klankkast.sensor.config import read_password

    m = cfg.mqtt
    result = probe_broker(
        m.host,
        m.port,
        tls=m.tls,
        ca_file=str(m.ca_file) if m.ca_file else None,
        cert_file=str(m.cert_file) if m.cert_file else None,
        key_file=str(m.key_file) if m.key_file else None,
        username=m.username,
        password=read_password(cfg),
        client_id=f"{cfg.client_id}-check"[:128],
        topic_prefix=f"{wire.TOPIC_ROOT}/{cfg.node.site}/{cfg.node.id}",
        timeout_s=timeout_s,
    )
    cause = "" if result.ok else f"{result.cause.replace('_', ' ')}: "
    _line(result.ok, "broker", f"{cause}{result.detail}")
    return result.ok


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        if args.seconds <= 0 or args.seconds > 600:
            raise ConfigError(f"--seconds must be from 0 to 600; got {args.seconds}")
        from klankkast.sensor.service import make_meter

        make_meter(cfg)
    except ConfigError as err:
        print(f"klankkast-sensor check: config error: {err}", file=sys.stderr)
        return 1
    from klankkast.sensor.clock import ntp_synchronized
    from klankkast.sensor.service import disk_free_mb

    _line(True, "config", f"{args.config} (node {cfg.node.site}/{cfg.node.id})")
    healthy = check_audio(cfg, args.seconds)
    healthy &= check_broker(cfg, args.timeout)
    synced = ntp_synchronized()
    _line(synced, "clock", {True: "NTP-synchronised", False: "NOT synchronised (check NTP)",
                            None: "sync state unknown"}[synced])  # fmt: skip
    healthy &= synced is not False
    outbox_dir = cfg.outbox.path.parent
    free = disk_free_mb(outbox_dir if outbox_dir.exists() else Path("/"))
    disk_ok = free is not None and free >= MIN_FREE_MB
    _line(disk_ok, "disk", f"{free} MB free at {outbox_dir} (need {MIN_FREE_MB:g})")
    healthy &= disk_ok
    if cfg.outbox.path.exists():
        from klankkast.sensor.outbox import SqliteOutbox

        try:
            box = SqliteOutbox(cfg.outbox.path, synchronous="NORMAL")
            depth, evictions, size = box.depth(), box.evictions, box.size_bytes()
            box.close()
            _line(
                None if depth > 3600 else True,
                "outbox",
                f"{depth} frames waiting ({size / 1e6:.1f} of {cfg.outbox.max_mb:g} MB), "
                f"{evictions} evicted",
            )
        except SensorError as err:
            _line(False, "outbox", str(err))
            healthy = False
    else:
        _line(True, "outbox", f"{cfg.outbox.path} not created yet (empty)")
    print("healthy" if healthy else "UNHEALTHY", flush=True)
    return 0 if healthy else 2
