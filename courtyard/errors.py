"""Errors of klankkast-courtyard."""

from __future__ import annotations

__all__ = ["ConfigError", "CourtyardError", "StorageError"]


class CourtyardError(Exception):
    """Base class of the errors raised here."""


class ConfigError(CourtyardError):
    """A configuration value is invalid: one line naming key, value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str, *, path: str = "") -> None:
        where = f"{path}: " if path else ""
        name = key if key.startswith(("-", "(")) else f"[courtyard] {key}"
        super().__init__(f"{where}{name} {allowed}; got {value!r}")
        self.key = key
        self.value = value


class StorageError(CourtyardError):
    """InfluxDB could not be read or written (the page says so; nothing half-written)."""
