"""Errors of ``klankkast.analysis``.

A small tree: configuration (rules files), input files (complaints, visits, site
mapping, level exports) and level sources. ``str(err)`` is always one line that
names where the problem is (file, line, column or key), the bad value and what
is allowed, so a command line can print it as it is.
"""

from __future__ import annotations

from klankkast import configcheck as _configcheck

__all__ = [
    "AnalysisError",
    "ConfigError",
    "InputError",
    "InputErrors",
    "LevelSourceError",
    "PlanError",
    "TimeParseError",
]


class AnalysisError(Exception):
    """Base class of every error raised by ``klankkast.analysis``."""


class ConfigError(AnalysisError, _configcheck.ConfigError):
    """A rules or configuration file is invalid: ``{path}: {key} = {value!r}: {allowed}``.

    One line a problem; :attr:`errors` holds every problem of the file (see
    :mod:`klankkast.configcheck`).
    """


class TimeParseError(AnalysisError, ValueError):
    """A timestamp could not be parsed, or names a local time that does not exist (DST gap)."""


class InputError(AnalysisError):
    """One problem in an input file, located by file, line and column.

    ``line`` is the 1-based line of the file (the header is line 1 of a CSV);
    ``column`` the CSV column or JSON key; ``value`` the offending value.
    """

    def __init__(
        self,
        path: str,
        line: int | None,
        column: str | None,
        value: object,
        message: str,
    ) -> None:
        where = path
        if line is not None:
            where += f":{line}"
        if column:
            where += f": column {column}"
        shown = "" if value is None else f" (value {value!r})"
        super().__init__(f"{where}: {message}{shown}")
        self.path = path
        self.line = line
        self.column = column
        self.value = value
        self.message = message


class InputErrors(AnalysisError):
    """Every problem found in one or more input files; nothing was imported.

    ``errors`` holds one :class:`InputError` per problem; ``str(err)`` lists them
    one per line.
    """

    def __init__(self, errors: list[InputError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class LevelSourceError(AnalysisError):
    """A level source (CSV export or InfluxDB) cannot be read or has the wrong shape."""


class PlanError(AnalysisError):
    """A patrol-plan parameter or input cannot be used (appended by the plan's owner).

    One line naming the parameter, the bad value and what is allowed.
    """

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key} = {value!r} cannot be used; {allowed}")
        self.key = key
        self.value = value
        self.allowed = allowed
