"""The node's configuration: one TOML file, validated completely at start-up.

Every key is documented in ``deploy/pi/node.example.toml``. :func:`parse_config` is
pure (a dict in, a :class:`NodeConfig` out); :func:`load_config` reads the file and
then checks that the files the config names are readable, still before any audio,
network or outbox I/O. The keys are declared in :data:`SCHEMA` and checked by the
shared checker (:mod:`klankkast.configcheck`): every bad value of the file is reported
in one :class:`ConfigError`, one line each, ``key = value: allowed``. Relative paths are resolved
against the directory of the config file.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from klankkast import configcheck as _cc
from klankkast.sensor.errors import ConfigError
from klankkast.sensor.wire import valid_id

__all__ = [
    "SAMPLERATES_HZ",
    "SCHEMA",
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
    #: the fast paths (scipy's routines called directly, the frame splice, the outbox's
    #: in-memory copy: :mod:`klankkast.sensor._fastpaths`); false: the plain paths only
    fast_paths: bool = True


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


_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
CONFIRM_MODES = ("ingest", "broker")


def _valid_id(value: Any) -> str | None:
    ok = isinstance(value, str) and valid_id(value)
    return None if ok else "must be 1-64 of [A-Za-z0-9_.-] starting alphanumeric"


def _device(value: Any) -> str | None:
    ok = not isinstance(value, bool) and (
        (isinstance(value, int) and 0 <= value < 1024)
        or (isinstance(value, str) and 0 < len(value) <= 256)
    )
    return None if ok else "must be a device name (substring) or index >= 0"


def _divides_1000(value: int) -> str | None:
    return "must be a divisor of 1000 (10, 20, 25, 40, 50, 100, ...)" if 1000 % value else None


def _iso_date(value: str) -> str | None:
    try:
        (datetime if "T" in value or " " in value else date).fromisoformat(value)
    except ValueError:
        return "must be an ISO 8601 date or date-time"
    return None


def _client_id(value: str) -> str | None:
    return None if _CLIENT_ID_RE.match(value) else "must be 1-128 of [A-Za-z0-9_.:-]"


_URL_ALLOWED = "must be mqtt://host:port or mqtts://host:port"


def _mqtt_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        return _URL_ALLOWED
    bad = (
        parts.scheme not in ("mqtt", "mqtts")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    )
    return _URL_ALLOWED if bad else None


def _text(default: Any = None, check: Any = None) -> _cc.Field:
    return _cc.string(default, check=check, one_line=True)


#: Every key of the node's file: its type, default and what is allowed
#: (documented in ``deploy/pi/node.example.toml``).
SCHEMA: Final[_cc.Schema] = {
    "node": {
        "id": _cc.custom(_cc.MISSING, _valid_id),
        "site": _cc.custom(_cc.MISSING, _valid_id),
        "status_interval_s": _cc.number(60.0, 1.0, 3600.0, " s"),
        "fast_paths": _cc.boolean(True),
    },
    "audio": {
        "device": _cc.custom("default", _device),
        "samplerate": _cc.choice(48000, SAMPLERATES_HZ),
        "block_ms": _cc.integer(100, 10, 1000, " ms", check=_divides_1000),
        "channel": _cc.integer(0, 0, 31),
        "summary_s": _cc.integer(60, 10, 3600, " s"),
    },
    "calibration": {
        "offset_db": _cc.number(0.0, -50.0, 250.0, " dB"),
        "mic_response": _text(),
        "calibrated_at": _text(check=_iso_date),
        "history_file": _text(),
    },
    "mqtt": {
        "url": _text(_cc.MISSING, _mqtt_url),
        "username": _text(),
        "password_file": _text(),
        "ca_file": _text(),
        "cert_file": _text(),
        "key_file": _text(),
        "client_id": _text(check=_client_id),
        "session_expiry_s": _cc.integer(7 * 24 * 3600, 0, 2**32 - 1, " s"),
        "keepalive_s": _cc.integer(30, 5, 3600, " s"),
        "max_inflight": _cc.integer(20, 1, 65535),
        "reconnect_max_s": _cc.integer(30, 1, 3600, " s"),
    },
    "outbox": {
        "path": _text(DEFAULT_OUTBOX_PATH),
        "max_mb": _cc.number(2048.0, 0.01, 1_000_000.0, " MB"),
        "confirm": _cc.choice("ingest", CONFIRM_MODES, 'must be "ingest" or "broker"'),
        "confirm_timeout_s": _cc.number(120.0, 1.0, 86_400.0, " s"),
    },
}


def parse_config(data: dict[str, Any], base_dir: Path | str = ".") -> NodeConfig:
    """Validate a parsed TOML document and build a :class:`NodeConfig`.

    Pure: touches no file. Raises one :class:`ConfigError` carrying every bad value,
    unknown table or key and missing required key of the document.
    """
    base = Path(base_dir)
    problems = _cc.Problems()
    if not isinstance(data, dict):
        problems.add("config", data, "must be a TOML table")
        problems.raise_as(ConfigError)
    v = _cc.check_all(data, SCHEMA, problems)
    mqtt = _mqtt(v["mqtt"], base, problems)
    problems.raise_as(ConfigError)
    node, audio, cal, box = v["node"], v["audio"], v["calibration"], v["outbox"]
    return NodeConfig(
        node=NodeSection(**node),
        audio=AudioConfig(**{**audio, "samplerate": int(audio["samplerate"])}),
        calibration=CalibrationConfig(
            offset_db=cal["offset_db"],
            mic_response=_cc.resolve_path(cal["mic_response"], base),
            calibrated_at=cal["calibrated_at"],
            history_file=_cc.resolve_path(cal["history_file"], base),
        ),
        mqtt=mqtt,
        outbox=OutboxConfig(
            path=_cc.resolve_path(box["path"], base) or Path(DEFAULT_OUTBOX_PATH),
            max_mb=box["max_mb"],
            confirm=str(box["confirm"]),
            confirm_timeout_s=box["confirm_timeout_s"],
        ),
    )


def _mqtt(m: dict[str, Any], base: Path, problems: _cc.Problems) -> MqttConfig:
    """``[mqtt]`` with its checks across keys (reported to ``problems``)."""
    url = m.get("url") or ""
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    files: dict[str, Any] = {k: _cc.resolve_path(m[k], base) for k in _FILE_KEYS}
    if files["password_file"] is not None and m["username"] is None:
        problems.add("mqtt.username", _cc.MISSING, "must be set when mqtt.password_file is set")
    tls_keys = [k for k in ("ca_file", "cert_file", "key_file") if files[k] is not None]
    if tls_keys and url and not tls:
        problems.add(
            f"mqtt.{tls_keys[0]}", m[tls_keys[0]], "must be used only with an mqtts:// url"
        )
    if files["key_file"] is not None and files["cert_file"] is None:
        problems.add("mqtt.cert_file", _cc.MISSING, "must be set when mqtt.key_file is set")
    return MqttConfig(
        url=url,
        host=parts.hostname or "",
        port=(parts.port if url else None) or (8883 if tls else 1883),
        tls=tls,
        **{k: m[k] for k in _PLAIN_KEYS},
        **files,
    )


_FILE_KEYS: Final = ("password_file", "ca_file", "cert_file", "key_file")
_PLAIN_KEYS: Final = (
    "username", "client_id", "session_expiry_s", "keepalive_s", "max_inflight", "reconnect_max_s",
)  # fmt: skip


def _check_readable(key: str, path: Path | None, problems: _cc.Problems) -> None:
    if path is None:
        return
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        problems.add(key, str(path), f"must be a readable file ({reason})")


def read_password(cfg: NodeConfig) -> str | None:
    """The MQTT password: first line of ``mqtt.password_file`` (None without one)."""
    if cfg.mqtt.password_file is None:
        return None
    key, shown = "mqtt.password_file", str(cfg.mqtt.password_file)
    try:
        text = cfg.mqtt.password_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise ConfigError(key, shown, f"must be a readable UTF-8 file ({reason})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ConfigError(key, shown, "must hold the password on its first line; the file is empty")
    return lines[0].strip()


def load_config(path: Path | str) -> NodeConfig:
    """Read, parse and validate the config file and the files it names.

    Raises :class:`ConfigError` for an unreadable or malformed file, or (all at once)
    every bad value and every unreadable password, CA, certificate, key or
    mic-response file.
    """
    p = Path(path)
    data = _cc.read_toml(p, ConfigError)
    cfg = parse_config(data, p.resolve().parent)
    cfg = NodeConfig(
        node=cfg.node,
        audio=cfg.audio,
        calibration=cfg.calibration,
        mqtt=cfg.mqtt,
        outbox=cfg.outbox,
        source=p,
    )
    problems = _cc.Problems()
    try:
        read_password(cfg)
    except ConfigError as err:
        problems.errors.extend(err.errors)
    _check_readable("mqtt.ca_file", cfg.mqtt.ca_file, problems)
    _check_readable("mqtt.cert_file", cfg.mqtt.cert_file, problems)
    _check_readable("mqtt.key_file", cfg.mqtt.key_file, problems)
    _check_readable("calibration.mic_response", cfg.calibration.mic_response, problems)
    outbox_dir = cfg.outbox.path.parent
    if outbox_dir.exists() and not outbox_dir.is_dir():
        problems.add(
            "outbox.path",
            str(cfg.outbox.path),
            f"must be in a directory ({str(outbox_dir)!r} is not)",
        )
    problems.raise_as(ConfigError)
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
