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
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from klankkast.influx import AddressError, InfluxHTTP, parse_address, redact_address
from klankkast.ingest.errors import ConfigError

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

__all__ = [
    "CentralConfig",
    "InfluxConfig",
    "IngestConfig",
    "MqttConfig",
    "connect_properties",
    "default_client_id",
    "load_central_config",
    "make_influx_client",
    "make_mqtt_client",
    "mqtt_connect",
    "parse_central_config",
    "read_secret",
]

T = TypeVar("T")

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
class InfluxConfig:
    """``[influxdb]``: where levels are written."""

    url: str = "http://127.0.0.1:8086"
    database: str = "klankkast"
    username: str | None = None
    password_file: Path | None = None
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


@dataclass(frozen=True, slots=True)
class CentralConfig:
    """The whole central configuration file."""

    mqtt: MqttConfig = field(default_factory=MqttConfig)
    influxdb: InfluxConfig = field(default_factory=InfluxConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# -- small typed getters -----------------------------------------------------------
class _Section:
    def __init__(self, name: str, data: Any, base_dir: Path) -> None:
        if not isinstance(data, dict):
            raise ConfigError(name, data, "must be a table")
        self.name = name
        self.data = data
        self.base_dir = base_dir
        self.used: set[str] = set()

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def str_(
        self,
        key: str,
        default: T,
        check: Callable[[str], str | None] | None = None,
        allow_empty: bool = False,
    ) -> str | T:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not (value or allow_empty):
            raise ConfigError(self.key(key), value, "must be a non-empty string")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(self.key(key), value, problem)
        return value

    def path(self, key: str) -> Path | None:
        value = self.str_(key, None)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def int_(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ConfigError(self.key(key), value, f"must be an integer from {lo} to {hi}")
        return value

    def float_(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise ConfigError(self.key(key), value, f"must be a number from {lo:g} to {hi:g}")
        return float(value)

    def bool_(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self.key(key), value, "must be true or false")
        return value

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            allowed = ", ".join(sorted(self.used))
            raise ConfigError(
                self.key(unknown[0]),
                self.data[unknown[0]],
                f"unknown key; allowed keys are {allowed}",
            )


def _check_mqtt_url(value: str) -> str | None:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        return "must be mqtt://host[:port] or mqtts://host[:port]"
    try:
        _ = parts.port
    except ValueError:
        return "has an invalid port"
    return None


def _check_influx_url(value: str) -> str | None:
    """``influxdb+http(s)://[user@]host:port/db``, or the older ``http(s)://host[:port]``
    (with ``database`` and ``username`` as keys of their own)."""
    if value.startswith("influxdb+"):
        try:
            parse_address(value)
        except AddressError as err:
            return err.reason
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be influxdb+http(s)://[user@]host:port/database"
    try:
        _ = parts.port
    except ValueError:
        return "has an invalid port"
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        return (
            "must be influxdb+http(s)://[user@]host:port/database "
            "(a plain http(s):// URL names only host and port)"
        )
    return None


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


def _check_level(value: str) -> str | None:
    if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        return "must be one of DEBUG, INFO, WARNING, ERROR"
    return None


def _parse_mqtt(sec: _Section) -> MqttConfig:
    d = MqttConfig()
    cfg = MqttConfig(
        url=sec.str_("url", d.url, _check_mqtt_url),
        username=sec.str_("username", None),
        password_file=sec.path("password_file"),
        ca_file=sec.path("ca_file"),
        cert_file=sec.path("cert_file"),
        key_file=sec.path("key_file"),
        client_id=sec.str_("client_id", d.client_id),
        share_group=sec.str_("share_group", d.share_group, _check_share_group, allow_empty=True),
        session_expiry_s=sec.int_("session_expiry_s", d.session_expiry_s, 0, 4_294_967_295),
        receive_maximum=sec.int_("receive_maximum", d.receive_maximum, 1, 65535),
        keepalive_s=sec.int_("keepalive_s", d.keepalive_s, 5, 3600),
    )
    sec.reject_unknown()
    if cfg.password_file is not None and cfg.username is None:
        raise ConfigError("mqtt.username", None, "is required when mqtt.password_file is set")
    if (cfg.cert_file is None) != (cfg.key_file is None):
        raise ConfigError(
            "mqtt.key_file" if cfg.key_file is None else "mqtt.cert_file",
            None,
            "cert_file and key_file must be given together",
        )
    return cfg


def _parse_influx(sec: _Section) -> InfluxConfig:
    d = InfluxConfig()
    try:
        url = sec.str_("url", d.url, _check_influx_url)
    except ConfigError as err:  # never show a password someone put in the URL
        raise ConfigError(err.key, redact_address(str(err.value)), err.allowed) from None
    database, username = sec.data.get("database"), sec.data.get("username")
    if url.startswith("influxdb+"):
        # one address form: url = "influxdb+http://user@host:8086/klankkast"
        address = parse_address(url)
        for key in ("database", "username"):
            if sec.data.get(key) is not None:
                raise ConfigError(
                    sec.key(key), sec.data[key], f"give it in {sec.key('url')} only ({url})"
                )
            sec.used.add(key)
        url, database, username = address.url, address.database, address.username
    else:
        database = sec.str_("database", d.database, _check_database)
        username = sec.str_("username", None)
    cfg = InfluxConfig(
        url=url,
        database=database,
        username=username,
        password_file=sec.path("password_file"),
        token_file=sec.path("token_file"),
        raw_retention_days=sec.int_("raw_retention_days", d.raw_retention_days, 1, 36500),
        timeout_s=sec.float_("timeout_s", d.timeout_s, 0.1, 600.0),
    )
    sec.reject_unknown()
    if cfg.token_file is not None and (cfg.username is not None or cfg.password_file is not None):
        raise ConfigError(
            "influxdb.token_file",
            str(cfg.token_file),
            "use either token_file or username + password_file, not both",
        )
    if cfg.password_file is not None and cfg.username is None:
        raise ConfigError(
            "influxdb.username", None, "is required when influxdb.password_file is set"
        )
    return cfg


def _parse_ingest(sec: _Section) -> IngestConfig:
    d = IngestConfig()
    cfg = IngestConfig(
        batch_points=sec.int_("batch_points", d.batch_points, 1, 1_000_000),
        batch_ms=sec.int_("batch_ms", d.batch_ms, 1, 600_000),
        stats_interval_s=sec.float_("stats_interval_s", d.stats_interval_s, 0.1, 86_400.0),
        health_interval_s=sec.float_("health_interval_s", d.health_interval_s, 0.1, 86_400.0),
        max_backoff_s=sec.float_("max_backoff_s", d.max_backoff_s, 0.1, 3600.0),
        rejected_topic=sec.str_("rejected_topic", d.rejected_topic, _check_topic),
        republish_rejected=sec.bool_("republish_rejected", d.republish_rejected),
        rejected_payload_max=sec.int_("rejected_payload_max", d.rejected_payload_max, 0, 16_384),
        log_level=sec.str_("log_level", d.log_level, _check_level).upper(),
        workers=sec.int_("workers", d.workers, 0, 16),
        acks=sec.bool_("acks", d.acks),
    )
    sec.reject_unknown()
    return cfg


def parse_central_config(data: Mapping[str, Any], base_dir: Path | None = None) -> CentralConfig:
    """Validate an already-parsed TOML document (see :func:`load_central_config`)."""
    base = base_dir or Path.cwd()
    mqtt_cfg = _parse_mqtt(_Section("mqtt", data.get("mqtt", {}), base))
    influx_cfg = _parse_influx(_Section("influxdb", data.get("influxdb", {}), base))
    ingest_cfg = _parse_ingest(_Section("ingest", data.get("ingest", {}), base))
    raw = {k: v for k, v in data.items() if k not in ("mqtt", "influxdb", "ingest")}
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
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError("config", str(p), f"must be a readable file ({err.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("config", str(p), f"must be valid TOML ({err})") from None
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
