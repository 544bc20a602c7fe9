"""Errors of the central ingest.

Configuration problems live here; the outcomes of InfluxDB writes and queries
(retry vs. drop vs. split, sorted the way Telegraf's InfluxDB output sorts them) are
the storage module's: :mod:`klankkast.influx`.
"""

from __future__ import annotations

__all__ = ["ConfigError", "IngestError"]


class IngestError(Exception):
    """Base class of the errors raised by ``klankkast.ingest`` itself."""


class ConfigError(IngestError):
    """The central configuration is invalid.

    ``str(err)`` is one line naming the key, the bad value and what is allowed.
    """

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key}: {allowed}; got {value!r}")
        self.key = key
        self.value = value
        self.allowed = allowed
