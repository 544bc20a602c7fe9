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
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from klankkast.analysis.errors import ConfigError

__all__ = [
    "DEFAULT_RULES_FILE",
    "LEGACY_RULES_FILE",
    "PERIODS",
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


# (section, key) in the TOML file -> Rules field, type, check, allowed text
_Check = tuple[str, type, Any, str]
_KEYS: dict[tuple[str, str], _Check] = {
    ("periods", "timezone"): ("timezone", str, None, "an IANA time zone such as Europe/Amsterdam"),
    ("periods", "day_start_h"): ("day_start_h", int, (0, 23), "an hour 0-23"),
    ("periods", "evening_start_h"): ("evening_start_h", int, (0, 23), "an hour 0-23"),
    ("periods", "night_start_h"): ("night_start_h", int, (0, 23), "an hour 0-23"),
    ("absolute", "enabled"): ("absolute_enabled", bool, None, "true or false"),
    ("absolute", "level"): (
        "absolute_level", str, ("specific", "total"), "one of specific, total",
    ),
    ("absolute", "specific_min_db"): ("specific_min_db", float, (0.0, 20.0), "0-20 dB"),
    ("absolute", "window_s"): ("window_s", int, (1, 86400), "whole seconds 1-86400"),
    ("absolute", "day_db"): ("limit_day_db", float, (0.0, 140.0), "a level 0-140 dB"),
    ("absolute", "evening_db"): ("limit_evening_db", float, (0.0, 140.0), "a level 0-140 dB"),
    ("absolute", "night_db"): ("limit_night_db", float, (0.0, 140.0), "a level 0-140 dB"),
    ("emergence", "enabled"): ("emergence_enabled", bool, None, "true or false"),
    ("emergence", "day_db"): ("emergence_day_db", float, (0.0, 60.0), "0-60 dB"),
    ("emergence", "evening_db"): ("emergence_evening_db", float, (0.0, 60.0), "0-60 dB"),
    ("emergence", "night_db"): ("emergence_night_db", float, (0.0, 60.0), "0-60 dB"),
    ("emergence", "background_window_s"): (
        "background_window_s", int, (60, 86400), "whole seconds 60-86400",
    ),
    ("emergence", "residual"): ("residual", str, ("quiet_laeq", "la90"), "one of quiet_laeq, la90"),
    ("emergence", "residual_quantile"): (
        "residual_quantile", float, (0.01, 1.0), "a fraction 0.01-1",
    ),
    ("emergence", "residual_hold_max_s"): (
        "residual_hold_max_s", int, (0, 7 * 86400), "whole seconds 0-604800",
    ),
    ("emergence", "background_quantile_la90"): (
        "background_quantile_la90", float, (0.0, 1.0), "a fraction 0-1",
    ),
    ("emergence", "background_quantile_laeq"): (
        "background_quantile_laeq", float, (0.0, 1.0), "a fraction 0-1",
    ),
    ("emergence", "min_laeq_db"): ("emergence_min_laeq_db", float, (0.0, 140.0), "0-140 dB"),
    ("emergence", "duration_correction"): ("duration_correction", bool, None, "true or false"),
    ("episodes", "min_duration_s"): ("min_duration_s", int, (0, 86400), "whole seconds 0-86400"),
    ("episodes", "gap_merge_s"): ("gap_merge_s", int, (0, 86400), "whole seconds 0-86400"),
    ("episodes", "min_coverage"): ("min_coverage", float, (0.01, 1.0), "a fraction 0.01-1"),
    ("episodes", "node_combine"): ("node_combine", str, ("sum", "mean"), "one of sum, mean"),
    ("correlation", "lookback_s"): ("lookback_s", int, (0, 7 * 86400), "0-604800 s"),
    ("correlation", "grace_s"): ("grace_s", int, (0, 7 * 86400), "0-604800 s"),
    ("correlation", "visit_lookback_s"): ("visit_lookback_s", int, (60, 7 * 86400), "60-604800 s"),
    ("correlation", "permutations"): ("permutations", int, (19, 1_000_000), "19-1000000"),
    ("correlation", "seed"): ("seed", int, (0, 2**63 - 1), "a non-negative integer"),
}  # fmt: skip


def _check(section: str, key: str, value: Any, path: str) -> tuple[str, Any]:
    name, typ, allowed, text = _KEYS[(section, key)]
    dotted = f"{section}.{key}"
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is int and isinstance(value, bool):
        raise ConfigError(dotted, value, f"must be {text}", path=path)
    if not isinstance(value, typ):
        raise ConfigError(dotted, value, f"must be {text}", path=path)
    if isinstance(allowed, tuple) and len(allowed) == 2 and typ in (int, float):
        lo, hi = allowed
        if not lo <= value <= hi:
            raise ConfigError(dotted, value, f"must be {text}", path=path)
    elif isinstance(allowed, tuple) and value not in allowed:
        raise ConfigError(dotted, value, f"must be {text}", path=path)
    if name == "timezone":
        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(dotted, value, f"must be {text}", path=path) from None
    return name, value


def _apply(doc: dict[str, Any], path: str, values: dict[str, Any]) -> None:
    for section, body in doc.items():
        if not isinstance(body, dict):
            raise ConfigError(section, body, "must be a [section] table", path=path)
        for key, value in body.items():
            if (section, key) not in _KEYS:
                known = sorted({f"{s}.{k}" for s, k in _KEYS if s == section}) or sorted(
                    {s for s, _ in _KEYS}
                )
                raise ConfigError(
                    f"{section}.{key}", value, "unknown key; known: " + ", ".join(known), path=path
                )
            name, checked = _check(section, key, value, path)
            values[name] = checked


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
