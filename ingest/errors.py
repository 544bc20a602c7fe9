"""Errors of the central ingest (and, appended by their owners, the alerts).

A small tree: configuration problems, InfluxDB write outcomes sorted the way
Telegraf's InfluxDB output sorts them (retry vs. drop vs. split), and query errors.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "IngestError",
    "PayloadTooLargeError",
    "PermanentWriteError",
    "QueryError",
    "RetryableWriteError",
    "WriteError",
]


class IngestError(Exception):
    """Base class of every error raised by ``klankkast.ingest``."""


class ConfigError(IngestError):
    """The central configuration is invalid.

    ``str(err)`` is one line naming the key, the bad value and what is allowed.
    """

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key}: {allowed}; got {value!r}")
        self.key = key
        self.value = value
        self.allowed = allowed


class WriteError(IngestError):
    """A write to InfluxDB did not succeed."""


class RetryableWriteError(WriteError):
    """429, 5xx or a connection problem: keep the batch, back off and retry.

    ``retry_after_s`` is the server's ``Retry-After`` in seconds, or ``None``.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentWriteError(WriteError):
    """Another 4xx: the batch (or a line in it) will never be accepted; drop and count."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"InfluxDB refused the write with HTTP {status}: {body.strip()[:500]}")
        self.status = status
        self.body = body


class PayloadTooLargeError(PermanentWriteError):
    """HTTP 413: the request body is larger than the server accepts; split the batch."""


class QueryError(IngestError):
    """An InfluxQL query failed (HTTP error or an ``error`` in the result)."""
