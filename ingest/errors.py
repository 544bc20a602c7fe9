"""Errors of the central ingest.

Configuration problems live here; the outcomes of InfluxDB writes and queries
(retry vs. drop vs. split, sorted the way Telegraf's InfluxDB output sorts them) are
the storage module's: :mod:`klankkast.influx`.
"""

from __future__ import annotations

from klankkast import configcheck as _configcheck

__all__ = ["ConfigError", "IngestError"]


class IngestError(Exception):
    """Base class of the errors raised by ``klankkast.ingest`` itself."""


class ConfigError(IngestError, _configcheck.ConfigError):
    """The central configuration is invalid: ``{key} = {value!r}: {allowed}``.

    One line a problem; :attr:`errors` holds every problem of the file (see
    :mod:`klankkast.configcheck`).
    """
