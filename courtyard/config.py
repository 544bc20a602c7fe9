"""Configuration of ``klankkast-courtyard``: one TOML file, checked whole before any I/O.

See ``deploy/central/courtyard.example.toml`` for every key with its meaning. Relative
paths are resolved against the directory of the file. A bad value raises
:class:`~klankkast.courtyard.errors.ConfigError` naming the key, the value and what
is allowed.
"""

from __future__ import annotations

import re
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klankkast.courtyard.errors import ConfigError
from klankkast.influx import AddressError, parse_address, redact_address

__all__ = ["Config", "InfluxConfig", "load_config", "parse_config"]

_SITE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RP_RE = re.compile(r"[A-Za-z0-9_]{1,64}")


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    database: str = "klankkast"
    #: the read-only user (levels, episodes, alerts, complaints, visits, marks)
    username: str | None = None
    password_file: Path | None = None
    #: the user that writes marks (WRITE on the database only)
    write_username: str | None = None
    write_password_file: Path | None = None
    timeout_s: float = 5.0
    #: retention policy of the marks (``experience``; 365 days, docs/privacy.md)
    marks_rp: str = "experience"
    #: retention policy of episode, alert, complaint and visit
    events_rp: str = "forever"


@dataclass(frozen=True, slots=True)
class Config:
    sites: dict[str, str]
    secret_file: Path
    database: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 8090
    base_url: str = "http://127.0.0.1:8090"
    rules: Path | None = None
    plan: Path | None = None
    cookie_secure: bool = True
    cache_s: float = 5.0
    invitation_days: int = 730
    session_days: int = 180
    log_level: str = "INFO"
    influxdb: InfluxConfig = field(default_factory=InfluxConfig)
    path: str = ""

    @property
    def root_path(self) -> str:
        """The path prefix of ``base_url`` (behind the central web server), no trailing ``/``."""
        return urllib.parse.urlsplit(self.base_url).path.rstrip("/")

    def secret_key(self) -> bytes:
        """The server key (sessions, CSRF, household hashes); read at start-up."""
        try:
            key = self.secret_file.read_bytes().strip()
        except OSError as err:
            raise ConfigError(
                "secret_file",
                str(self.secret_file),
                f"must be a readable file ({err.strerror})",
                path=self.path,
            ) from None
        if len(key) < 32:
            raise ConfigError(
                "secret_file",
                str(self.secret_file),
                "must hold at least 32 bytes of random key (make-secrets.sh writes one)",
                path=self.path,
            )
        return key


def _get(doc: dict[str, Any], key: str, kind: type, default: Any, path: str, allowed: str) -> Any:
    if key not in doc:
        return default
    value = doc[key]
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(key, value, allowed, path=path)
    return value


def _path(base: Path, value: str | None) -> Path | None:
    if value is None or value == "":
        return None
    p = Path(value)
    return p if p.is_absolute() else base / p


def parse_config(doc: dict[str, Any], *, base: Path, path: str = "") -> Config:
    """Check the ``[courtyard]`` table of a parsed TOML document."""
    if "courtyard" not in doc or not isinstance(doc["courtyard"], dict):
        raise ConfigError("(section)", None, "must be present as a [courtyard] table", path=path)
    c: dict[str, Any] = doc["courtyard"]
    known = {
        "sites", "secret_file", "database", "listen_host", "listen_port", "base_url", "rules",
        "plan", "cookie_secure", "cache_s", "invitation_days", "session_days", "log_level",
        "influxdb",
    }  # fmt: skip
    for key in c:
        if key not in known:
            raise ConfigError(
                key, c[key], f"is not a known key (known: {', '.join(sorted(known))})", path=path
            )
    sites = c.get("sites")
    if not isinstance(sites, dict) or not sites:
        raise ConfigError(
            "sites",
            sites,
            'must be a table of site id = "display name" with at least one site',
            path=path,
        )
    for site, name in sites.items():
        if not _SITE_RE.fullmatch(site):
            raise ConfigError(
                f"sites.{site}", site, "must be a site id of 1-64 of [A-Za-z0-9_-]", path=path
            )
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            raise ConfigError(
                f"sites.{site}", name, "must be a display name of 1-100 characters", path=path
            )
    secret = _get(c, "secret_file", str, None, path, "must be a path")
    if not secret:
        raise ConfigError(
            "secret_file", secret, "must name the file holding the server key", path=path
        )
    database = _get(
        c, "database", str, "courtyard.sqlite", path, "must be a path to the SQLite file"
    )
    port = _get(c, "listen_port", int, 8090, path, "must be a port 1-65535")
    if not 0 < port < 65536:
        raise ConfigError("listen_port", port, "must be a port 1-65535", path=path)
    base_url = _get(c, "base_url", str, f"http://127.0.0.1:{port}", path, "must be an http(s) URL")
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query:
        raise ConfigError(
            "base_url", base_url, "must be http(s)://host[:port][/path] without a query", path=path
        )
    cache_s = _get(c, "cache_s", float, 5.0, path, "must be a number of seconds 0-300")
    if not 0.0 <= cache_s <= 300.0:
        raise ConfigError("cache_s", cache_s, "must be a number of seconds 0-300", path=path)
    inv_days = _get(c, "invitation_days", int, 730, path, "must be a number of days 1-3650")
    if not 1 <= inv_days <= 3650:
        raise ConfigError("invitation_days", inv_days, "must be a number of days 1-3650", path=path)
    ses_days = _get(c, "session_days", int, 180, path, "must be a number of days 1-730")
    if not 1 <= ses_days <= 730:
        raise ConfigError("session_days", ses_days, "must be a number of days 1-730", path=path)
    level = _get(c, "log_level", str, "INFO", path, "must be DEBUG, INFO, WARNING or ERROR")
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level", level, "must be DEBUG, INFO, WARNING or ERROR", path=path)

    i = c.get("influxdb", {})
    if not isinstance(i, dict):
        raise ConfigError("influxdb", i, "must be a table", path=path)
    iknown = {"url", "database", "username", "password_file", "write_username",
              "write_password_file", "timeout_s", "marks_rp", "events_rp"}  # fmt: skip
    for key in i:
        if key not in iknown:
            raise ConfigError(
                f"influxdb.{key}",
                i[key],
                f"is not a known key (known: {', '.join(sorted(iknown))})",
                path=path,
            )
    url = _get(i, "url", str, "http://127.0.0.1:8086", path, "must be an InfluxDB address")
    influx_db = _get(i, "database", str, "klankkast", path, "must be a database name")
    influx_user = _get(i, "username", str, None, path, "must be a user name")
    if url.startswith("influxdb+"):
        # one address form: url = "influxdb+http://courtyard_read@host:8086/klankkast"
        try:
            address = parse_address(url)
        except AddressError as err:
            raise ConfigError("influxdb.url", err.shown, err.reason, path=path) from None
        for key in ("database", "username"):
            if key in i:
                raise ConfigError(
                    f"influxdb.{key}", i[key], f"give it in influxdb.url only ({url})", path=path
                )
        url, influx_db, influx_user = address.url, address.database, address.username
    else:  # the older form: url = "http://host:port" with database and username
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.path not in ("", "/") or parts.query:
            raise ConfigError(
                "influxdb.url",
                redact_address(url),
                "must be influxdb+http(s)://[user@]host:port/database",
                path=path,
            )
    rps = {}
    for key, default in (("marks_rp", "experience"), ("events_rp", "forever")):
        rps[key] = _get(i, key, str, default, path, "must be a retention policy name")
        if not _RP_RE.fullmatch(rps[key]):
            raise ConfigError(
                f"influxdb.{key}",
                rps[key],
                "must be a retention policy name of [A-Za-z0-9_]",
                path=path,
            )
    timeout = _get(i, "timeout_s", float, 5.0, path, "must be 0.1-60 s")
    if not 0.1 <= timeout <= 60:
        raise ConfigError("influxdb.timeout_s", timeout, "must be 0.1-60 s", path=path)
    influx = InfluxConfig(
        url=url,
        database=influx_db,
        username=influx_user,
        password_file=_path(base, _get(i, "password_file", str, None, path, "must be a path")),
        write_username=_get(i, "write_username", str, None, path, "must be a user name"),
        write_password_file=_path(
            base, _get(i, "write_password_file", str, None, path, "must be a path")
        ),
        timeout_s=timeout,
        marks_rp=rps["marks_rp"],
        events_rp=rps["events_rp"],
    )
    secret_path = _path(base, secret)
    db_path = _path(base, database)
    assert secret_path is not None and db_path is not None
    return Config(
        sites=dict(sites),
        secret_file=secret_path,
        database=db_path,
        listen_host=_get(
            c, "listen_host", str, "127.0.0.1", path, "must be a host name or address"
        ),
        listen_port=port,
        base_url=base_url.rstrip("/"),
        rules=_path(base, _get(c, "rules", str, None, path, "must be a path to a rules TOML file")),
        plan=_path(base, _get(c, "plan", str, None, path, "must be a path to plan.json")),
        cookie_secure=_get(c, "cookie_secure", bool, True, path, "must be true or false"),
        cache_s=cache_s,
        invitation_days=inv_days,
        session_days=ses_days,
        log_level=level,
        influxdb=influx,
        path=path,
    )


def load_config(path: str | Path) -> Config:
    """Read and check a config file."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text("utf-8"))
    except OSError as err:
        raise ConfigError("(file)", str(p), f"must be a readable file ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("(file)", str(p), f"must be valid TOML ({err})") from None
    return parse_config(doc, base=p.resolve().parent, path=str(p))
