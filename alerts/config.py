"""``[alerts]`` of the central configuration: its schema, checked with
:mod:`klankkast.configcheck` (every problem of the table at once), and :func:`load`, which
reads the central file, the table and the analysis rules before any I/O (quiet hours on
the wall clock of the rules' time zone).

Keys (all optional; documented in ``deploy/central/central.example.toml``):
``confirm_s`` (300), ``update_s`` (60), ``min_gap_s`` (900), ``hysteresis_db`` (1.0),
``late_after_s`` (600), ``quiet_hours`` (table site -> list of ``"HH:MM-HH:MM"``, ``"*"``
= every site), ``webhooks`` (array of tables ``{url, format = "json" | "slack",
timeout_s = 5}``), ``rules`` (rules TOML of the analysis), ``frames`` (``"second"`` or
``"minute"``), ``hold_s`` (10), ``idle_end_s`` (900), ``client_id``, ``influx`` (true),
``log_level``, ``username``/``password_file``.
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from klankkast import configcheck as _cc
from klankkast.alerts.engine import (
    AlertSettings,
    QuietHours,
    parse_quiet_range,
)
from klankkast.ingest.config import check_log_level
from klankkast.ingest.errors import ConfigError
from klankkast.sensor import wire

if TYPE_CHECKING:
    from klankkast.analysis.rules import Rules
    from klankkast.ingest.config import CentralConfig

log = logging.getLogger("klankkast.alerts")


_FORMATS: Final = ("json", "slack")
_FRAMES: Final = ("second", "minute")


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str = "json"
    timeout_s: float = 5.0


@dataclass(frozen=True)
class AlertsConfig:
    """The validated ``[alerts]`` section."""

    settings: AlertSettings = field(default_factory=AlertSettings)
    webhooks: tuple[Webhook, ...] = ()
    rules_path: Path | None = None
    frames: str = "second"
    client_id: str | None = None
    influx: bool = True
    log_level: str = "INFO"
    username: str | None = None
    password_file: Path | None = None


def _http_url(value: str) -> str | None:
    parts = urllib.parse.urlsplit(value)
    ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    return None if ok else "must be an http:// or https:// URL"


def _a_table(value: Any) -> str | None:
    return None if isinstance(value, dict) else 'must be a table: site = ["HH:MM-HH:MM", ...]'


def _a_list(value: Any) -> str | None:
    return None if isinstance(value, list) else "must be an array of tables {url, format}"


def _at_most_64(value: str) -> str | None:
    return None if len(value) <= 64 else "must be at most 64 characters"


#: Every key of ``[alerts]`` (documented in ``deploy/central/central.example.toml``).
SCHEMA: Final[_cc.Schema] = {
    "alerts": {
        "confirm_s": _cc.integer(300, 0, 86_400),
        "update_s": _cc.integer(60, 1, 86_400),
        "min_gap_s": _cc.integer(900, 0, 86_400),
        "hysteresis_db": _cc.number(1.0, 0.0, 20.0),
        "late_after_s": _cc.integer(600, 1, 7 * 86_400),
        "quiet_hours": _cc.custom({}, _a_table),
        "webhooks": _cc.custom([], _a_list),
        "rules": _cc.string(None),
        "frames": _cc.choice("second", _FRAMES),
        "hold_s": _cc.number(10.0, 0.0, 600.0),
        "idle_end_s": _cc.number(900.0, 10.0, 86_400.0),
        "client_id": _cc.string(None, check=_at_most_64),
        "influx": _cc.boolean(True),
        "log_level": _cc.custom("INFO", check_log_level),
        "username": _cc.string(None),
        "password_file": _cc.string(None),
    }
}
#: The keys of ``[alerts]`` that are :class:`AlertSettings` fields of the same name.
_SETTINGS: Final = (
    "confirm_s", "update_s", "min_gap_s", "hysteresis_db", "late_after_s", "hold_s", "idle_end_s",
)  # fmt: skip
#: One table of ``[[alerts.webhooks]]``.
WEBHOOK: Final[Mapping[str, _cc.Field]] = {
    "url": _cc.string(_cc.MISSING, check=_http_url),
    "format": _cc.choice("json", _FORMATS),
    "timeout_s": _cc.number(5.0, 0.1, 120.0),
}


def _quiet_hours(qh: dict[str, Any], problems: _cc.Problems) -> dict[str, list[tuple[int, int]]]:
    quiet: dict[str, list[tuple[int, int]]] = {}
    for site, ranges in qh.items():
        key = f"alerts.quiet_hours.{site}"
        if site != "*" and not wire.valid_id(site):
            problems.add(key, site, 'must be a site id or "*" (the key)')
            continue
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, list):
            problems.add(key, ranges, 'must be a list of "HH:MM-HH:MM" local times')
            continue
        for r in ranges:
            try:
                quiet.setdefault(site, []).append(parse_quiet_range(str(r)))
            except ValueError as err:
                problems.add(key, r, f'must be "HH:MM-HH:MM" local time ({err})')
    return quiet


def _webhooks(hooks: list[Any], problems: _cc.Problems) -> list[Webhook]:
    out = []
    for i, h in enumerate(hooks):
        key = f"alerts.webhooks[{i}]"
        before = len(problems.errors)
        v = _cc.check_all({key: h}, {key: WEBHOOK}, problems)[key]
        if len(problems.errors) == before:
            out.append(Webhook(str(v["url"]), v["format"], v["timeout_s"]))
    return out


def parse_alerts_config(raw: Any, base_dir: Path | None = None) -> AlertsConfig:
    """Validate ``[alerts]`` (a dict from the TOML file); one :class:`ConfigError` names
    every bad key."""
    base = base_dir or Path.cwd()
    problems = _cc.Problems()
    v = _cc.check_all({"alerts": {} if raw is None else raw}, SCHEMA, problems)["alerts"]
    quiet = _quiet_hours(v["quiet_hours"], problems)
    webhooks = _webhooks(v["webhooks"], problems)
    password_file = _cc.resolve_path(v["password_file"], base)
    if password_file is not None and v["username"] is None:
        problems.add("alerts.username", _cc.MISSING, "must be set when alerts.password_file is set")
    problems.raise_as(ConfigError)
    settings = AlertSettings(
        **{k: v[k] for k in _SETTINGS},
        step_s=1 if v["frames"] == "second" else 60,
        quiet=QuietHours(quiet),
    )
    return AlertsConfig(
        settings=settings,
        webhooks=tuple(webhooks),
        rules_path=_cc.resolve_path(v["rules"], base),
        frames=v["frames"],
        client_id=v["client_id"],
        influx=v["influx"],
        log_level=v["log_level"].upper(),
        username=v["username"],
        password_file=password_file,
    )


def load(path: Path) -> tuple[CentralConfig, AlertsConfig, Rules]:
    """Load and validate everything before any I/O (raises the packages' ConfigErrors)."""
    from klankkast.analysis.rules import load_rules
    from klankkast.ingest.config import load_central_config

    central = load_central_config(path)
    acfg = parse_alerts_config(central.raw.get("alerts"), path.resolve().parent)
    rules = load_rules(acfg.rules_path)
    # quiet hours on the wall clock of the rules' time zone, like the periods
    quiet = dataclasses.replace(acfg.settings.quiet, tz=rules.timezone)
    acfg = dataclasses.replace(acfg, settings=dataclasses.replace(acfg.settings, quiet=quiet))
    return central, acfg, rules
