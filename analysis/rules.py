"""Episode and correlation rules: a TOML file with documented defaults.

:func:`load_rules` reads ``rules.default.toml`` (shipped next to this module) and
overlays a user file, so a user file only names what it changes. Every value is
checked; a bad one raises :class:`~klankkast.analysis.errors.ConfigError` naming the
key, the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from klankkast import configcheck as _cc
from klankkast.analysis.errors import ConfigError

__all__ = [
    "DEFAULT_RULES_FILE",
    "LEGACY_RULES_FILE",
    "PERIODS",
    "SCHEMA",
    "Rules",
    "default_rules",
    "legacy_rules",
    "load_rules",
]

PERIODS = ("day", "evening", "night")
DEFAULT_RULES_FILE = "rules.default.toml"
#: The rules before issue 15 (node sum, absolute limit on the total level, LA90-median
#: background), kept only so that the detection benchmark and its tests can measure
#: the change on the same scenarios. Not for enforcement use.
LEGACY_RULES_FILE = "rules.legacy.toml"


@dataclass(frozen=True, slots=True)
class Rules:
    """All settings of episode detection and correlation (see ``rules.default.toml``)."""

    timezone: str = "Europe/Amsterdam"
    day_start_h: int = 7
    evening_start_h: int = 19
    night_start_h: int = 23

    absolute_enabled: bool = True
    absolute_level: str = "specific"
    specific_min_db: float = 3.0
    window_s: int = 300
    limit_day_db: float = 50.0
    limit_evening_db: float = 45.0
    limit_night_db: float = 40.0

    emergence_enabled: bool = True
    emergence_day_db: float = 5.0
    emergence_evening_db: float = 5.0
    emergence_night_db: float = 3.0
    background_window_s: int = 600
    residual: str = "quiet_laeq"
    residual_quantile: float = 1.0
    residual_hold_max_s: int = 14400
    background_quantile_la90: float = 0.5
    background_quantile_laeq: float = 0.1
    emergence_min_laeq_db: float = 30.0
    duration_correction: bool = False

    min_duration_s: int = 120
    gap_merge_s: int = 300
    min_coverage: float = 0.5
    node_combine: str = "mean"

    lookback_s: int = 1800
    grace_s: int = 1800
    visit_lookback_s: int = 10800
    permutations: int = 999
    seed: int = 20260101

    def limits_db(self) -> tuple[float, float, float]:
        """Absolute limits (day, evening, night)."""
        return (self.limit_day_db, self.limit_evening_db, self.limit_night_db)

    def emergences_db(self) -> tuple[float, float, float]:
        """Allowed emergence (day, evening, night)."""
        return (self.emergence_day_db, self.emergence_evening_db, self.emergence_night_db)

    def as_dict(self) -> dict[str, Any]:
        """Flat mapping of every setting (for summary.json)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _timezone(value: Any) -> str | None:
    allowed = "must be an IANA time zone such as Europe/Amsterdam"
    if not isinstance(value, str):
        return allowed
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return allowed
    return None


_WEEK_S: Final = 7 * 86400
_HOUR = _cc.integer(None, 0, 23, " h")
_LEVEL = _cc.number(None, 0.0, 140.0, " dB")
_EMERGENCE = _cc.number(None, 0.0, 60.0, " dB")
_FRACTION = _cc.number(None, 0.0, 1.0)
_DURATION = _cc.integer(None, 0, 86400, " s")

#: Every key of a rules file (documented in ``rules.default.toml``); a file names only
#: what it changes, so no key has a default here.
SCHEMA: Final[_cc.Schema] = {
    "periods": {
        "timezone": _cc.custom(None, _timezone),
        "day_start_h": _HOUR,
        "evening_start_h": _HOUR,
        "night_start_h": _HOUR,
    },
    "absolute": {
        "enabled": _cc.boolean(None),
        "level": _cc.choice(None, ("specific", "total")),
        "specific_min_db": _cc.number(None, 0.0, 20.0, " dB"),
        "window_s": _cc.integer(None, 1, 86400, " s"),
        "day_db": _LEVEL,
        "evening_db": _LEVEL,
        "night_db": _LEVEL,
    },
    "emergence": {
        "enabled": _cc.boolean(None),
        "day_db": _EMERGENCE,
        "evening_db": _EMERGENCE,
        "night_db": _EMERGENCE,
        "background_window_s": _cc.integer(None, 60, 86400, " s"),
        "residual": _cc.choice(None, ("quiet_laeq", "la90")),
        "residual_quantile": _cc.number(None, 0.01, 1.0),
        "residual_hold_max_s": _cc.integer(None, 0, _WEEK_S, " s"),
        "background_quantile_la90": _FRACTION,
        "background_quantile_laeq": _FRACTION,
        "min_laeq_db": _LEVEL,
        "duration_correction": _cc.boolean(None),
    },
    "episodes": {
        "min_duration_s": _DURATION,
        "gap_merge_s": _DURATION,
        "min_coverage": _cc.number(None, 0.01, 1.0),
        "node_combine": _cc.choice(None, ("sum", "mean")),
    },
    "correlation": {
        "lookback_s": _cc.integer(None, 0, _WEEK_S, " s"),
        "grace_s": _cc.integer(None, 0, _WEEK_S, " s"),
        "visit_lookback_s": _cc.integer(None, 60, _WEEK_S, " s"),
        "permutations": _cc.integer(None, 19, 1_000_000),
        "seed": _cc.integer(None, 0, 2**63 - 1),
    },
}
#: (table, key) -> the :class:`Rules` field, where the names differ
_FIELD: Final = {
    ("absolute", "enabled"): "absolute_enabled",
    ("absolute", "level"): "absolute_level",
    ("absolute", "day_db"): "limit_day_db",
    ("absolute", "evening_db"): "limit_evening_db",
    ("absolute", "night_db"): "limit_night_db",
    ("emergence", "enabled"): "emergence_enabled",
    ("emergence", "day_db"): "emergence_day_db",
    ("emergence", "evening_db"): "emergence_evening_db",
    ("emergence", "night_db"): "emergence_night_db",
    ("emergence", "min_laeq_db"): "emergence_min_laeq_db",
}


def _apply(doc: dict[str, Any], path: str, values: dict[str, Any]) -> None:
    """Check every key of one rules file (all problems in one error) and overlay them."""
    problems = _cc.Problems(path)
    checked = _cc.check_all(doc, SCHEMA, problems, present_only=True)
    problems.raise_as(ConfigError)
    for table, body in checked.items():
        for key, value in body.items():
            values[_FIELD.get((table, key), key)] = value


def _read(path: Path | str, text: str | None = None) -> dict[str, Any]:
    try:
        data = text if text is not None else Path(path).read_text(encoding="utf-8")
        return tomllib.loads(data)
    except FileNotFoundError:
        raise ConfigError("rules", str(path), "the rules file must exist", path=str(path)) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            "rules", str(path), f"must be valid TOML ({err})", path=str(path)
        ) from None


def default_rules() -> Rules:
    """The rules of ``rules.default.toml``."""
    return load_rules(None)


def legacy_rules() -> Rules:
    """The pre-issue-15 rules (``rules.legacy.toml`` over the defaults): node energy
    sum, absolute limits on the total level, background = median of per-minute LA90.

    Only for the detection benchmark and its tests, to measure the change.
    """
    return load_rules(None, preset=LEGACY_RULES_FILE)


def load_rules(path: Path | str | None = None, *, preset: str | None = None) -> Rules:
    """Defaults from ``rules.default.toml``, overlaid with a packaged ``preset`` file
    (such as :data:`LEGACY_RULES_FILE`) and then with ``path`` when given."""
    values: dict[str, Any] = {}
    pkg = resources.files("klankkast.analysis")
    text = pkg.joinpath(DEFAULT_RULES_FILE).read_text("utf-8")
    _apply(_read(DEFAULT_RULES_FILE, text), DEFAULT_RULES_FILE, values)
    if preset is not None:
        _apply(_read(preset, pkg.joinpath(preset).read_text("utf-8")), preset, values)
    if path is not None:
        _apply(_read(path), str(path), values)
    rules = Rules(**values)
    starts = (rules.day_start_h, rules.evening_start_h, rules.night_start_h)
    if not (starts[0] < starts[1] < starts[2]):
        raise ConfigError(
            "periods.day_start_h/evening_start_h/night_start_h",
            starts,
            "must increase within the day (day < evening < night)",
            path=str(path or DEFAULT_RULES_FILE),
        )
    return rules
