"""The node's configuration: one TOML file, validated completely at start-up.

Every key is documented in ``deploy/pi/node.example.toml``. :func:`parse_config` is
pure (a dict in, a :class:`NodeConfig` out); :func:`load_config` reads the file and
then checks that the files the config names are readable, still before any audio,
network or outbox I/O. A bad value raises :class:`ConfigError` whose message is one
line naming the key, the value and what is allowed. Relative paths are resolved
against the directory of the config file.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from klankkast.sensor.errors import ConfigError
from klankkast.sensor.wire import valid_id

__all__ = [
    "SAMPLERATES_HZ",
    "AudioConfig",
    "CalibrationConfig",
    "MqttConfig",
    "NodeConfig",
    "NodeSection",
    "OutboxConfig",
    "load_config",
    "parse_config",
    "read_password",
    "update_calibration",
]

#: Sample rates the node accepts (the metrology core supports these).
SAMPLERATES_HZ = (16000, 32000, 44100, 48000)
DEFAULT_OUTBOX_PATH = "/var/lib/klankkast/outbox.sqlite"


@dataclass(frozen=True, slots=True)
class NodeSection:
    id: str
    site: str
    status_interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class AudioConfig:
    device: str | int = "default"
    samplerate: int = 48000
    block_ms: int = 100
    channel: int = 0
    summary_s: int = 60


@dataclass(frozen=True, slots=True)
class CalibrationConfig:
    offset_db: float = 0.0
    mic_response: Path | None = None
    calibrated_at: str | None = None
    history_file: Path | None = None


@dataclass(frozen=True, slots=True)
class MqttConfig:
    url: str
    host: str
    port: int
    tls: bool
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str | None = None
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    max_inflight: int = 20
    reconnect_max_s: int = 30


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    path: Path = Path(DEFAULT_OUTBOX_PATH)
    max_mb: float = 2048.0
    #: ``"ingest"``: a frame is deleted when the ingest confirms it stored it (the ack
    #: topic); ``"broker"``: deleted on the broker's PUBACK (no acks from the ingest).
    confirm: str = "ingest"
    confirm_timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node: NodeSection
    audio: AudioConfig
    calibration: CalibrationConfig
    mqtt: MqttConfig
    outbox: OutboxConfig
    source: Path | None = field(default=None, compare=False)

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"klankkast-{self.node.site}-{self.node.id}"


_SCHEMA: dict[str, tuple[str, ...]] = {
    "node": ("id", "site", "status_interval_s"),
    "audio": ("device", "samplerate", "block_ms", "channel", "summary_s"),
    "calibration": ("offset_db", "mic_response", "calibrated_at", "history_file"),
    "mqtt": (
        "url",
        "username",
        "password_file",
        "ca_file",
        "cert_file",
        "key_file",
        "client_id",
        "session_expiry_s",
        "keepalive_s",
        "max_inflight",
        "reconnect_max_s",
    ),
    "outbox": ("path", "max_mb", "confirm", "confirm_timeout_s"),
}
_REQUIRED = {"node": ("id", "site"), "mqtt": ("url",)}
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class _Section:
    """Typed access to one TOML table, raising one-line :class:`ConfigError`."""

    def __init__(self, name: str, table: dict[str, Any], base: Path) -> None:
        self.name = name
        self.table = table
        self.base = base

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def fail(self, key: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"{self.key(key)} must be {allowed}; got {value!r}")

    def number(self, key: str, default: float, lo: float, hi: float, unit: str = "") -> float:
        value = self.table.get(key, default)
        allowed = f"a number from {lo:g} to {hi:g}{unit}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, value, allowed)
        if not (math.isfinite(value) and lo <= value <= hi):
            raise self.fail(key, value, allowed)
        return float(value)

    def integer(self, key: str, default: int, lo: int, hi: int, unit: str = "") -> int:
        value = self.table.get(key, default)
        allowed = f"an integer from {lo} to {hi}{unit}"
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(key, value, allowed)
        return value

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > 512 or "\n" in value:
            raise self.fail(key, value, "a non-empty one-line string")
        return value

    def path(self, key: str, default: str | None = None) -> Path | None:
        value = self.string(key, default)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p)


def parse_config(data: dict[str, Any], base_dir: Path | str = ".") -> NodeConfig:
    """Validate a parsed TOML document and build a :class:`NodeConfig`.

    Pure: touches no file. Raises :class:`ConfigError` on the first bad key, unknown
    table or key, or missing required key.
    """
    base = Path(base_dir)
    if not isinstance(data, dict):
        raise ConfigError(f"config must be a TOML table; got {type(data).__name__}")
    for table in data:
        if table not in _SCHEMA:
            raise ConfigError(
                f"{table}: unknown table; allowed tables are {', '.join(f'[{t}]' for t in _SCHEMA)}"
            )
        if not isinstance(data[table], dict):
            raise ConfigError(f"{table} must be a table [{table}]; got {data[table]!r}")
        unknown = [k for k in data[table] if k not in _SCHEMA[table]]
        if unknown:
            raise ConfigError(
                f"{table}.{unknown[0]}: unknown key; allowed keys in [{table}] are "
                f"{', '.join(_SCHEMA[table])}"
            )
    for table, keys in _REQUIRED.items():
        for key in keys:
            if key not in data.get(table, {}):
                raise ConfigError(f"{table}.{key} is required; add it to [{table}]")
    sections = {t: _Section(t, data.get(t, {}), base) for t in _SCHEMA}
    return NodeConfig(
        node=_node(sections["node"]),
        audio=_audio(sections["audio"]),
        calibration=_calibration(sections["calibration"]),
        mqtt=_mqtt(sections["mqtt"]),
        outbox=_outbox(sections["outbox"]),
    )


def _node(s: _Section) -> NodeSection:
    ids = {}
    for key in ("id", "site"):
        value = s.table[key]
        if not isinstance(value, str) or not valid_id(value):
            raise s.fail(key, value, "1-64 of [A-Za-z0-9_.-] starting alphanumeric")
        ids[key] = value
    return NodeSection(
        id=ids["id"],
        site=ids["site"],
        status_interval_s=s.number("status_interval_s", 60.0, 1.0, 3600.0, " s"),
    )


def _audio(s: _Section) -> AudioConfig:
    device = s.table.get("device", "default")
    if isinstance(device, bool) or not (
        (isinstance(device, int) and 0 <= device < 1024)
        or (isinstance(device, str) and 0 < len(device) <= 256)
    ):
        raise s.fail("device", device, "a device name (substring) or index >= 0")
    rate = s.table.get("samplerate", 48000)
    if isinstance(rate, bool) or rate not in SAMPLERATES_HZ:
        raise s.fail("samplerate", rate, f"one of {', '.join(map(str, SAMPLERATES_HZ))}")
    block_ms = s.integer("block_ms", 100, 10, 1000, " ms")
    summary_s = s.integer("summary_s", 60, 10, 3600, " s")
    if 1000 % block_ms:
        raise s.fail("block_ms", block_ms, "a divisor of 1000 (10, 20, 25, 40, 50, 100, ...)")
    return AudioConfig(
        device=device,
        samplerate=int(rate),
        block_ms=block_ms,
        channel=s.integer("channel", 0, 0, 31),
        summary_s=summary_s,
    )


def _calibration(s: _Section) -> CalibrationConfig:
    at = s.string("calibrated_at")
    if at is not None:
        try:
            (datetime if "T" in at or " " in at else date).fromisoformat(at)
        except ValueError:
            raise s.fail("calibrated_at", at, "an ISO 8601 date or date-time") from None
    return CalibrationConfig(
        offset_db=s.number("offset_db", 0.0, -50.0, 250.0, " dB"),
        mic_response=s.path("mic_response"),
        calibrated_at=at,
        history_file=s.path("history_file"),
    )


def _mqtt(s: _Section) -> MqttConfig:
    url = s.string("url")
    allowed = "mqtt://host:port or mqtts://host:port"
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:
        raise s.fail("url", url, allowed) from None
    if (
        parts.scheme not in ("mqtt", "mqtts")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    ):
        raise s.fail("url", url, allowed)
    tls = parts.scheme == "mqtts"
    username = s.string("username")
    password_file = s.path("password_file")
    if password_file is not None and username is None:
        raise s.fail("username", None, "set when mqtt.password_file is set")
    ca_file = s.path("ca_file")
    cert_file = s.path("cert_file")
    key_file = s.path("key_file")
    if (ca_file or cert_file or key_file) and not tls:
        key = "ca_file" if ca_file else "cert_file" if cert_file else "key_file"
        raise s.fail(key, s.table[key], "used only with an mqtts:// url")
    if key_file is not None and cert_file is None:
        raise s.fail("cert_file", None, "set when mqtt.key_file is set")
    client_id = s.string("client_id")
    if client_id is not None and not _CLIENT_ID_RE.match(client_id):
        raise s.fail("client_id", client_id, "1-128 of [A-Za-z0-9_.:-]")
    return MqttConfig(
        url=url or "",
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=username,
        password_file=password_file,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        client_id=client_id,
        session_expiry_s=s.integer("session_expiry_s", 7 * 24 * 3600, 0, 2**32 - 1, " s"),
        keepalive_s=s.integer("keepalive_s", 30, 5, 3600, " s"),
        max_inflight=s.integer("max_inflight", 20, 1, 65535),
        reconnect_max_s=s.integer("reconnect_max_s", 30, 1, 3600, " s"),
    )


CONFIRM_MODES = ("ingest", "broker")


def _outbox(s: _Section) -> OutboxConfig:
    confirm = s.table.get("confirm", "ingest")
    if confirm not in CONFIRM_MODES:
        raise s.fail("confirm", confirm, '"ingest" or "broker"')
    return OutboxConfig(
        path=s.path("path", DEFAULT_OUTBOX_PATH) or Path(DEFAULT_OUTBOX_PATH),
        max_mb=s.number("max_mb", 2048.0, 0.01, 1_000_000.0, " MB"),
        confirm=str(confirm),
        confirm_timeout_s=s.number("confirm_timeout_s", 120.0, 1.0, 86_400.0, " s"),
    )


def _check_readable(key: str, path: Path | None) -> None:
    if path is None:
        return
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(f"{key} must be a readable file; got {str(path)!r} ({reason})") from None


def read_password(cfg: NodeConfig) -> str | None:
    """The MQTT password: first line of ``mqtt.password_file`` (None without one)."""
    if cfg.mqtt.password_file is None:
        return None
    try:
        text = cfg.mqtt.password_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"mqtt.password_file must be a readable UTF-8 file; got "
            f"{str(cfg.mqtt.password_file)!r} ({getattr(err, 'strerror', None) or err})"
        ) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ConfigError(
            f"mqtt.password_file must hold the password on its first line; got an empty file "
            f"{str(cfg.mqtt.password_file)!r}"
        )
    return lines[0].strip()


def load_config(path: Path | str) -> NodeConfig:
    """Read, parse and validate the config file and the files it names.

    Raises :class:`ConfigError` (one line) for an unreadable or malformed file, a bad
    value, or an unreadable password, CA, certificate, key or mic-response file.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConfigError(
            f"config file must be a readable file; got {str(p)!r} ({reason})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {err}") from None
    cfg = parse_config(data, p.resolve().parent)
    cfg = NodeConfig(
        node=cfg.node,
        audio=cfg.audio,
        calibration=cfg.calibration,
        mqtt=cfg.mqtt,
        outbox=cfg.outbox,
        source=p,
    )
    read_password(cfg)
    _check_readable("mqtt.ca_file", cfg.mqtt.ca_file)
    _check_readable("mqtt.cert_file", cfg.mqtt.cert_file)
    _check_readable("mqtt.key_file", cfg.mqtt.key_file)
    _check_readable("calibration.mic_response", cfg.calibration.mic_response)
    outbox_dir = cfg.outbox.path.parent
    if outbox_dir.exists() and not outbox_dir.is_dir():
        raise ConfigError(
            f"outbox.path must be in a directory; got {str(cfg.outbox.path)!r} "
            f"({str(outbox_dir)!r} is not a directory)"
        )
    return cfg


_TABLE_RE = re.compile(r"^\s*\[([A-Za-z0-9_.-]+)\]\s*(#.*)?$")


def update_calibration(path: Path | str, offset_db: float, calibrated_at: str) -> None:
    """Rewrite ``[calibration] offset_db`` and ``calibrated_at`` in the config file.

    Keeps every other line (and comment) as it is; adds the keys (or the table) when
    absent. Written to a temporary file and renamed, so a crash leaves either the
    old or the new file.
    """
    p = Path(path)
    lines = p.read_text(encoding="utf-8").splitlines()
    values = {"offset_db": f"{offset_db:.2f}", "calibrated_at": f'"{calibrated_at}"'}
    out: list[str] = []
    table: str | None = None
    seen: set[str] = set()
    cal_end: int | None = None
    for line in lines:
        m = _TABLE_RE.match(line)
        if m:
            if table == "calibration":
                cal_end = len(out)
            table = m.group(1)
        elif table == "calibration":
            km = re.match(r"^(\s*)(offset_db|calibrated_at)(\s*=\s*)", line)
            if km:
                key = km.group(2)
                seen.add(key)
                line = f"{km.group(1)}{key}{km.group(3)}{values[key]}"
        out.append(line)
    if table == "calibration":
        cal_end = len(out)
    missing = [f"{k} = {v}" for k, v in values.items() if k not in seen]
    if cal_end is None:
        out += ["", "[calibration]", *missing]
    elif missing:
        while cal_end > 0 and not out[cal_end - 1].strip():
            cal_end -= 1
        out[cal_end:cal_end] = missing
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    st = p.stat()
    with contextlib.suppress(OSError):  # keep mode and owner (root edits /etc/klankkast)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, p)
