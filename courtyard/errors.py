"""Errors of klankkast-courtyard."""

from __future__ import annotations

from klankkast import configcheck as _configcheck

__all__ = ["ConfigError", "CourtyardError", "StorageError"]


class CourtyardError(Exception):
    """Base class of the errors raised here."""


class ConfigError(CourtyardError, _configcheck.ConfigError):
    """A configuration value is invalid: ``{key} = {value!r}: {allowed}``.

    One line a problem; :attr:`errors` holds every problem of the file (see
    :mod:`klankkast.configcheck`).
    """


class StorageError(CourtyardError):
    """InfluxDB could not be read or written (the page says so; nothing half-written)."""
