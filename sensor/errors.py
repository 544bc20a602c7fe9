"""Errors of the klankkast node (``klankkast.sensor``).

A small tree: everything the node raises on purpose is a :class:`SensorError`.
Messages name the field, the bad value and what is allowed, on one line.
"""

from __future__ import annotations

from klankkast.sensor.wire import SchemaError

__all__ = [
    "AudioDeviceError",
    "CalibrationError",
    "ConfigError",
    "MicResponseError",
    "OutboxError",
    "SchemaError",
    "SensorError",
    "WavError",
]


class SensorError(Exception):
    """Base class of the node's own errors."""


class ConfigError(SensorError):
    """The node configuration is invalid: one line naming key, value and what is allowed."""


class CalibrationError(SensorError):
    """A calibration was refused (tone not steady, not near 1 kHz, too quiet ...)."""


class AudioDeviceError(SensorError):
    """The audio device cannot be opened or was lost."""


class OutboxError(SensorError):
    """The durable outbox cannot be opened or written."""


class WavError(SensorError):
    """A WAV file cannot be measured (not a WAV, empty, unsupported format or rate)."""


class MicResponseError(CalibrationError):
    """A microphone frequency-response file cannot be used (unreadable, too few points)."""
