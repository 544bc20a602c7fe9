"""Configuration of ``klankkast-courtyard``: one TOML file, checked whole before any I/O.

See ``deploy/central/courtyard.example.toml`` for every key with its meaning. Relative
paths are resolved against the directory of the file. A bad value raises
:class:`~klankkast.courtyard.errors.ConfigError` naming the key, the value and what
is allowed.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from klankkast import configcheck as _cc
from klankkast.courtyard.errors import ConfigError
from klankkast.influx import InfluxTarget, check_url_value, redact_address, split_address_keys

__all__ = ["Config", "InfluxConfig", "load_config", "parse_config"]

_SITE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RP_RE = re.compile(r"[A-Za-z0-9_]{1,64}")


@dataclass(frozen=True, slots=True)
class InfluxConfig(InfluxTarget):
    """``[courtyard.influxdb]``: ``username`` is the read-only user (levels, episodes,
    alerts, complaints, visits, marks)."""

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
                "courtyard.secret_file",
                str(self.secret_file),
                f"must be a readable file ({err.strerror})",
                path=self.path or None,
            ) from None
        if len(key) < 32:
            raise ConfigError(
                "courtyard.secret_file",
                str(self.secret_file),
                "must hold at least 32 bytes of random key (make-secrets.sh writes one)",
                path=self.path or None,
            )
        return key


def _check_sites(value: Any) -> str | None:
    allowed = 'must be a table of site id = "display name" with at least one site'
    if not isinstance(value, dict) or not value:
        return allowed
    for site, name in value.items():
        if not _SITE_RE.fullmatch(site):
            return f"must have site ids of 1-64 of [A-Za-z0-9_-] (not {site!r})"
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            return f"must have display names of 1-100 characters ({site!r} has {name!r})"
    return None


def _check_base_url(value: str) -> str | None:
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query:
        return "must be http(s)://host[:port][/path] without a query"
    return None


def _check_rp(value: str) -> str | None:
    ok = _RP_RE.fullmatch(value)
    return None if ok else "must be a retention policy name of [A-Za-z0-9_]"


_C, _I = InfluxConfig(), "influxdb"

#: ``[courtyard]`` and ``[courtyard.influxdb]`` (documented in
#: ``deploy/central/courtyard.example.toml``), checked by :mod:`klankkast.configcheck`
SCHEMA: Final[_cc.Schema] = {
    "courtyard": {
        "sites": _cc.custom(_cc.MISSING, _check_sites),
        "secret_file": _cc.string(_cc.MISSING),
        "database": _cc.string("courtyard.sqlite"),
        "listen_host": _cc.string("127.0.0.1"),
        "listen_port": _cc.integer(8090, 1, 65535),
        "base_url": _cc.string(None, check=_check_base_url),
        "rules": _cc.string(None),
        "plan": _cc.string(None),
        "cookie_secure": _cc.boolean(True),
        "cache_s": _cc.number(5.0, 0.0, 300.0, " s"),
        "invitation_days": _cc.integer(730, 1, 3650, " days"),
        "session_days": _cc.integer(180, 1, 730, " days"),
        "log_level": _cc.choice("INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        "influxdb": _cc.custom({}, lambda v: None if isinstance(v, dict) else "must be a table"),
    },
    "courtyard.influxdb": {
        "url": _cc.string(_C.url, check=check_url_value),
        "database": _cc.string(_C.database),
        "username": _cc.string(None),
        "password_file": _cc.string(None),
        "write_username": _cc.string(None),
        "write_password_file": _cc.string(None),
        "timeout_s": _cc.number(_C.timeout_s, 0.1, 60.0, " s"),
        "marks_rp": _cc.string(_C.marks_rp, check=_check_rp),
        "events_rp": _cc.string(_C.events_rp, check=_check_rp),
    },
}


def parse_config(doc: dict[str, Any], *, base: Path, path: str = "") -> Config:
    """Check the ``[courtyard]`` table of a parsed TOML document: every problem of the
    table at once, in the one message form (:mod:`klankkast.configcheck`)."""
    problems = _cc.Problems(path or None)
    body = doc.get("courtyard")
    if not isinstance(body, dict):
        problems.add("courtyard", _cc.MISSING, "required; add a [courtyard] table")
        problems.raise_as(ConfigError)
    assert isinstance(body, dict)
    raw_influx = body.get("influxdb")
    influx_doc = raw_influx if isinstance(raw_influx, dict) else {}
    if isinstance(influx_doc.get("url"), str):  # never show a password put in the address
        influx_doc = {**influx_doc, "url": redact_address(influx_doc["url"])}
    v = _cc.check_all({"courtyard": body, "courtyard.influxdb": influx_doc}, SCHEMA, problems)
    c, i = v["courtyard"], v["courtyard.influxdb"]
    split_address_keys(i, influx_doc, problems.add, table="courtyard.influxdb")
    problems.raise_as(ConfigError)
    port = c["listen_port"]
    base_url = c["base_url"] or f"http://127.0.0.1:{port}"
    for key in ("password_file", "write_password_file"):
        i[key] = _cc.resolve_path(i[key], base)
    secret_path = _cc.resolve_path(c["secret_file"], base)
    db_path = _cc.resolve_path(c["database"], base)
    assert secret_path is not None and db_path is not None
    return Config(
        sites=dict(c["sites"]),
        secret_file=secret_path,
        database=db_path,
        listen_host=c["listen_host"],
        listen_port=port,
        base_url=base_url.rstrip("/"),
        rules=_cc.resolve_path(c["rules"], base),
        plan=_cc.resolve_path(c["plan"], base),
        cookie_secure=c["cookie_secure"],
        cache_s=c["cache_s"],
        invitation_days=c["invitation_days"],
        session_days=c["session_days"],
        log_level=c["log_level"],
        influxdb=InfluxConfig(**i),
        path=path,
    )


def load_config(path: str | Path) -> Config:
    """Read and check a config file."""
    p = Path(path)
    doc = _cc.read_toml(p, ConfigError)
    return parse_config(doc, base=p.resolve().parent, path=str(p))
