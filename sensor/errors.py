"""Errors of the klankkast node (``klankkast.sensor``).

A small tree: everything the node raises on purpose is a :class:`SensorError`.
Messages name the field, the bad value and what is allowed, on one line.
"""

from __future__ import annotations

from klankkast import configcheck as _configcheck
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


class ConfigError(SensorError, _configcheck.ConfigError):
    """The node configuration is invalid: ``{key} = {value!r}: {allowed}``, one line a
    problem (see :mod:`klankkast.configcheck`; :attr:`errors` holds every problem).

    The command-line checks of ``check``/``calibrate`` still pass one preformatted
    message (``ConfigError("--seconds must be ...")``); it is kept as it is.
    """

    def __init__(
        self, key: str, value: object = None, allowed: str | None = None, *, path: str | None = None
    ) -> None:
        if allowed is None:  # a preformatted message (command-line options)
            Exception.__init__(self, key)
            self.key, self.value, self.allowed, self.path = key, value, key, path
            self.errors = (self,)
        else:
            super().__init__(key, value, allowed, path=path)


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
