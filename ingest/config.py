"""Central configuration (TOML): ``[mqtt]``, ``[influxdb]``, ``[ingest]``.

The whole file is validated at start-up, before any I/O: an unknown key inside one of
these sections, a wrong type or a value out of range raises :class:`ConfigError`
with one line naming the key, the bad value and what is allowed. Other top-level
sections (``[alerts]``, ``[analysis]`` ...) belong to other programs and are kept
as raw dicts in :attr:`CentralConfig.raw` for their owners to validate.

Relative file paths (``password_file``, ``ca_file`` ...) are resolved against the
directory of the configuration file. Secret files are read only when a connection
is built (:func:`read_secret`), so a sample config loads without its secrets.
"""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from klankkast import configcheck as _cc
from klankkast.influx import (
    InfluxHTTP,
    InfluxTarget,
    check_url_value,
    redact_address,
    split_address_keys,
)
from klankkast.ingest.errors import ConfigError

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

__all__ = [
    "SCHEMA",
    "CentralConfig",
    "InfluxConfig",
    "IngestConfig",
    "MqttConfig",
    "check_log_level",
    "connect_properties",
    "default_client_id",
    "load_central_config",
    "make_influx_client",
    "make_mqtt_client",
    "mqtt_connect",
    "parse_central_config",
    "read_secret",
]

_SHARE_GROUP_CHARS: Final = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """``[mqtt]``: how to reach the broker."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = ""
    share_group: str = "ingest"
    #: 3 days: an ingest down over a weekend (Friday evening to Monday morning) still
    #: finds its queued messages; when a session expires the broker drops them
    session_expiry_s: int = 259_200
    receive_maximum: int = 65535
    keepalive_s: int = 30

    @property
    def subscription(self) -> str:
        """The node-topic filter: ``$share/{share_group}/klankkast/v1/+/+/#``, or plain if ``""``."""
        plain = "klankkast/v1/+/+/#"
        return f"$share/{self.share_group}/{plain}" if self.share_group else plain

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or (8883 if self.tls else 1883)


@dataclass(frozen=True, slots=True)
class InfluxConfig(InfluxTarget):
    """``[influxdb]``: where levels are written."""

    token_file: Path | None = None
    raw_retention_days: int = 30
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """``[ingest]``: batching, metrics and rejection handling."""

    batch_points: int = 5000
    batch_ms: int = 1000
    stats_interval_s: float = 10.0
    health_interval_s: float = 60.0
    max_backoff_s: float = 30.0
    rejected_topic: str = "klankkast/v1/_rejected"
    republish_rejected: bool = True
    rejected_payload_max: int = 1000
    log_level: str = "INFO"
    workers: int = 2
    #: publish end-to-end acknowledgements to the nodes (``klankkast/v1/{site}/{node}/ack``)
    acks: bool = True
    #: the fast paths (``_pahofast``: paho's receive and PUBACK paths; ``_fastframe``:
    #: the frame encoder); false runs the plain paths only, to rule them out in a fault
    fast_paths: bool = True


@dataclass(frozen=True, slots=True)
class CentralConfig:
    """The whole central configuration file."""

    mqtt: MqttConfig = field(default_factory=MqttConfig)
    influxdb: InfluxConfig = field(default_factory=InfluxConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# -- the schema ------------------------------------------------------------------
def _check_url(schemes: tuple[str, str], value: str) -> str | None:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        return f"must be {schemes[0]}://host[:port] or {schemes[1]}://host[:port]"
    try:
        _ = parts.port
    except ValueError:
        return "must have a valid port"
    return None


def _check_mqtt_url(value: str) -> str | None:
    return _check_url(("mqtt", "mqtts"), value)


def _check_share_group(value: str) -> str | None:
    if not set(value) <= _SHARE_GROUP_CHARS:
        return "must be letters, digits, '_', '-' or '.' (no '/', '+', '#'), or \"\" for no sharing"
    return None


def _check_database(value: str) -> str | None:
    if any(c in value for c in "\n\r\"'\\"):
        return "must not contain quotes, backslashes or newlines"
    return None


def _check_topic(value: str) -> str | None:
    if "+" in value or "#" in value:
        return "must be a topic name without wildcards"
    return None


LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


def check_log_level(value: str) -> str | None:
    """A logging level name, any case (shared with the alerts' ``[alerts] log_level``)."""
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        return "must be one of " + ", ".join(LOG_LEVELS)
    return None


_M, _I, _G = MqttConfig(), InfluxConfig(), IngestConfig()

#: Every key of ``[mqtt]``, ``[influxdb]`` and ``[ingest]`` (documented in
#: ``deploy/central/central.example.toml``); other tables belong to other programs.
SCHEMA: Final[_cc.Schema] = {
    "mqtt": {
        "url": _cc.string(_M.url, check=_check_mqtt_url),
        "username": _cc.string(None),
        "password_file": _cc.string(None),
        "ca_file": _cc.string(None),
        "cert_file": _cc.string(None),
        "key_file": _cc.string(None),
        "client_id": _cc.string(_M.client_id),
        "share_group": _cc.string(_M.share_group, check=_check_share_group, allow_empty=True),
        "session_expiry_s": _cc.integer(_M.session_expiry_s, 0, 4_294_967_295),
        "receive_maximum": _cc.integer(_M.receive_maximum, 1, 65535),
        "keepalive_s": _cc.integer(_M.keepalive_s, 5, 3600),
    },
    "influxdb": {
        "url": _cc.string(_I.url, check=check_url_value),
        "database": _cc.string(_I.database, check=_check_database),
        "username": _cc.string(None),
        "password_file": _cc.string(None),
        "token_file": _cc.string(None),
        "raw_retention_days": _cc.integer(_I.raw_retention_days, 1, 36500),
        "timeout_s": _cc.number(_I.timeout_s, 0.1, 600.0),
    },
    "ingest": {
        "batch_points": _cc.integer(_G.batch_points, 1, 1_000_000),
        "batch_ms": _cc.integer(_G.batch_ms, 1, 600_000),
        "stats_interval_s": _cc.number(_G.stats_interval_s, 0.1, 86_400.0),
        "health_interval_s": _cc.number(_G.health_interval_s, 0.1, 86_400.0),
        "max_backoff_s": _cc.number(_G.max_backoff_s, 0.1, 3600.0),
        "rejected_topic": _cc.string(_G.rejected_topic, check=_check_topic),
        "republish_rejected": _cc.boolean(_G.republish_rejected),
        "rejected_payload_max": _cc.integer(_G.rejected_payload_max, 0, 16_384),
        "log_level": _cc.string(_G.log_level, check=check_log_level),
        "workers": _cc.integer(_G.workers, 0, 16),
        "acks": _cc.boolean(_G.acks),
        "fast_paths": _cc.boolean(_G.fast_paths),
    },
}
_PATHS: Final = ("password_file", "ca_file", "cert_file", "key_file", "token_file")


def _with_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    return {k: _cc.resolve_path(v, base) if k in _PATHS else v for k, v in values.items()}


def _check_mqtt(cfg: MqttConfig, problems: _cc.Problems) -> None:
    if cfg.password_file is not None and cfg.username is None:
        problems.add("mqtt.username", _cc.MISSING, "must be set when mqtt.password_file is set")
    if (cfg.cert_file is None) != (cfg.key_file is None):
        key = "key_file" if cfg.key_file is None else "cert_file"
        problems.add(f"mqtt.{key}", _cc.MISSING, "must be given together with the other")


def _check_influx(cfg: InfluxConfig, problems: _cc.Problems) -> None:
    if cfg.token_file is not None and (cfg.username is not None or cfg.password_file is not None):
        problems.add(
            "influxdb.token_file",
            str(cfg.token_file),
            "must be used either alone or as username + password_file, not both",
        )
    if cfg.password_file is not None and cfg.username is None:
        problems.add(
            "influxdb.username", _cc.MISSING, "must be set when influxdb.password_file is set"
        )


def parse_central_config(data: Mapping[str, Any], base_dir: Path | None = None) -> CentralConfig:
    """Validate an already-parsed TOML document (see :func:`load_central_config`).

    Raises one :class:`ConfigError` carrying every problem of ``[mqtt]``,
    ``[influxdb]`` and ``[ingest]``.
    """
    base = base_dir or Path.cwd()
    problems = _cc.Problems()
    raw_influx = data.get("influxdb")
    if isinstance(raw_influx, Mapping) and isinstance(raw_influx.get("url"), str):
        # never show a password someone put in the address
        data = {**data, "influxdb": {**raw_influx, "url": redact_address(raw_influx["url"])}}
    v = _cc.check_all(data, SCHEMA, problems, other_tables="ignore")
    mqtt_cfg = MqttConfig(**_with_paths(v["mqtt"], base))
    influx_values = _with_paths(v["influxdb"], base)
    split_address_keys(influx_values, data.get("influxdb") or {}, problems.add)
    influx_cfg = InfluxConfig(**influx_values)
    ingest_cfg = IngestConfig(**{**v["ingest"], "log_level": v["ingest"]["log_level"].upper()})
    _check_mqtt(mqtt_cfg, problems)
    _check_influx(influx_cfg, problems)
    problems.raise_as(ConfigError)
    raw = {k: v for k, v in data.items() if k not in SCHEMA}
    return CentralConfig(mqtt=mqtt_cfg, influxdb=influx_cfg, ingest=ingest_cfg, raw=raw)


def load_central_config(path: str | Path) -> CentralConfig:
    """Read and validate the central TOML configuration.

    Raises
    ------
    ConfigError
        The file is missing or not TOML, or a key of ``[mqtt]``, ``[influxdb]`` or
        ``[ingest]`` is unknown, of the wrong type or out of range.
    """
    p = Path(path)
    data = _cc.read_toml(p, ConfigError)
    cfg = parse_central_config(data, p.resolve().parent)
    return CentralConfig(
        mqtt=cfg.mqtt, influxdb=cfg.influxdb, ingest=cfg.ingest, raw=cfg.raw, path=p
    )


def read_secret(key: str, path: Path | None) -> str | None:
    """Read a one-line secret file (trailing whitespace stripped); ``ConfigError`` naming ``key``."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(key, str(path), f"must be a readable file ({err.strerror})") from None


def default_client_id(prefix: str = "klankkast-ingest") -> str:
    """A stable client id for a persistent session: ``{prefix}-{hostname}``."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{prefix}-{host}"[:64]


def make_mqtt_client(
    cfg: MqttConfig, *, client_id: str | None = None, manual_ack: bool = False
) -> mqtt.Client:
    """Build (not connect) a paho-mqtt 2.x MQTT v5 client from ``[mqtt]``.

    Sets credentials (``username`` + ``password_file``), TLS (``mqtts://``, with
    ``ca_file`` and an optional client certificate) and ``manual_ack``. Connect with
    :func:`mqtt_connect`, which sends clean start off, the session expiry and the
    Receive Maximum.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    cid = client_id or cfg.client_id or default_client_id()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=cid,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if cfg.username is not None:
        client.username_pw_set(cfg.username, read_secret("mqtt.password_file", cfg.password_file))
    if cfg.tls:
        for key, p in (
            ("mqtt.ca_file", cfg.ca_file),
            ("mqtt.cert_file", cfg.cert_file),
            ("mqtt.key_file", cfg.key_file),
        ):
            if p is not None and not p.is_file():
                raise ConfigError(key, str(p), "must be a readable file")
        client.tls_set(
            ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
            certfile=str(cfg.cert_file) if cfg.cert_file else None,
            keyfile=str(cfg.key_file) if cfg.key_file else None,
        )
    # Queue messages without limit while disconnected; paho's own inflight window for
    # our publishes (the rejected topic) need not be small.
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    return client


def connect_properties(cfg: MqttConfig) -> Any:
    """MQTT v5 CONNECT properties: Session Expiry Interval and Receive Maximum."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = cfg.session_expiry_s
    props.ReceiveMaximum = cfg.receive_maximum
    return props


def mqtt_connect(client: mqtt.Client, cfg: MqttConfig, *, clean_start: bool = False) -> None:
    """Start connecting asynchronously (``connect_async``); call ``loop_start`` after."""
    client.connect_async(
        cfg.host,
        cfg.port,
        keepalive=cfg.keepalive_s,
        clean_start=clean_start,
        properties=connect_properties(cfg),
    )


def make_influx_client(cfg: InfluxConfig) -> InfluxHTTP:
    """Build an :class:`~klankkast.influx.InfluxHTTP` from ``[influxdb]``."""
    return InfluxHTTP(
        cfg.url,
        cfg.database,
        username=cfg.username,
        password=read_secret("influxdb.password_file", cfg.password_file),
        token=read_secret("influxdb.token_file", cfg.token_file),
        timeout_s=cfg.timeout_s,
    )
