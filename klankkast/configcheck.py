"""One checker for every TOML configuration: typed keys, ranges, allowed values.

A part declares its file as a :data:`Schema` (table -> key -> :class:`Field`) and calls
:func:`check_all`, which reads the whole document and reports **every** problem of the
file in one run: unknown tables and keys (with "did you mean" for a near miss), missing
required keys, wrong types, values out of range or not among the allowed ones. The
part then adds its checks across keys (``password_file`` needs ``username`` ...) to the
same :class:`Problems` and raises once.

Every problem has one form, ``ConfigError(key, value, allowed)``, printed as one line::

    ingest.batch_ms = -5: must be an integer from 1 to 600000
    audio.rate = 48000: unknown key; did you mean 'samplerate'? allowed: device, ...
    mqtt.url = (missing): required; add it to [mqtt]

and a file with several problems raises one :class:`ConfigError` whose
:attr:`~ConfigError.errors` holds them all and whose ``str`` is one line each. The
parts' own ``ConfigError`` classes (``klankkast.sensor.errors.ConfigError`` ...) are
subclasses, so each part's ``except`` clauses catch what its checker raises.

Standard library only; imports no part.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

__all__ = [
    "MISSING",
    "ConfigError",
    "Field",
    "Problems",
    "Schema",
    "boolean",
    "check_all",
    "choice",
    "custom",
    "did_you_mean",
    "integer",
    "number",
    "read_toml",
    "resolve_path",
    "string",
]

E = TypeVar("E", bound="ConfigError")


class _Missing:
    """The value of a key that is not in the file."""

    def __repr__(self) -> str:
        return "(missing)"


#: Stands for an absent key: as a :class:`Field` default it makes the key required;
#: as a :class:`ConfigError` value it prints ``(missing)``.
MISSING: Final = _Missing()


class ConfigError(Exception):
    """A configuration value is not allowed: ``{key} = {value!r}: {allowed}``.

    ``path`` (the file), when given, is put in front. :meth:`of` makes one error of
    several; :attr:`errors` then holds each (a single error holds itself).
    """

    def __init__(self, key: str, value: object, allowed: str, *, path: str | None = None) -> None:
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{key} = {value!r}: {allowed}")
        self.key = key
        self.value = value
        self.allowed = allowed
        self.path = path
        self.errors: tuple[ConfigError, ...] = (self,)

    @classmethod
    def of(cls: type[E], errors: Sequence[ConfigError]) -> E:
        """One ``cls`` error carrying all of ``errors`` (key, value, allowed of the first)."""
        first = errors[0]
        err = cls(first.key, first.value, first.allowed, path=first.path)
        err.errors = tuple(errors)
        err.args = ("\n".join(str(e) for e in errors),)
        return err


class Problems:
    """The problems found in one file, collected so that all are reported at once."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.errors: list[ConfigError] = []

    def add(self, key: str, value: object, allowed: str) -> None:
        self.errors.append(ConfigError(key, value, allowed, path=self.path))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_as(self, cls: type[ConfigError]) -> None:
        """Raise one ``cls`` carrying every problem; nothing when there is none."""
        if self.errors:
            raise cls.of(self.errors)


Kind = Literal["int", "float", "str", "bool", "choice", "any"]


@dataclass(frozen=True, slots=True)
class Field:
    """One key: its type, default (:data:`MISSING`: required) and what is allowed.

    Build with :func:`integer`, :func:`number`, :func:`string`, :func:`boolean`,
    :func:`choice` or :func:`custom`. ``check`` runs after the type and range checks
    and returns what is allowed when the value is not (``None`` when it is).
    """

    kind: Kind
    default: Any = None
    lo: int | float = -math.inf
    hi: int | float = math.inf
    unit: str = ""
    choices: tuple[Any, ...] = ()
    check: Callable[[Any], str | None] | None = None
    allowed: str = ""
    allow_empty: bool = False
    one_line: bool = False

    def parse(self, value: Any) -> tuple[Any, str | None]:
        """``(checked value, None)`` or ``(value, what is allowed)``."""
        problem = self._type_and_range(value)
        if problem is None and self.check is not None:
            problem = self.check(value)
        if problem is not None:
            return value, problem
        if self.kind == "float":
            return float(value), None
        return value, None

    def _type_and_range(self, value: Any) -> str | None:
        kind = self.kind
        if kind == "int":
            text = self.allowed or f"must be an integer from {self.lo} to {self.hi}{self.unit}"
            ok = isinstance(value, int) and not isinstance(value, bool)
            return None if ok and self.lo <= value <= self.hi else text
        if kind == "float":
            text = self.allowed or f"must be a number from {self.lo:g} to {self.hi:g}{self.unit}"
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return None if ok and math.isfinite(value) and self.lo <= value <= self.hi else text
        if kind == "str":
            text = self.allowed or (
                "must be a one-line string" if self.allow_empty else "must be a non-empty string"
            )
            if not isinstance(value, str) or not (value or self.allow_empty):
                return text
            return text if self.one_line and (len(value) > 512 or "\n" in value) else None
        if kind == "bool":
            return None if isinstance(value, bool) else (self.allowed or "must be true or false")
        if kind == "choice":
            ok = not isinstance(value, bool) and value in self.choices
            text = self.allowed or "must be one of " + ", ".join(map(str, self.choices))
            return None if ok else text
        return None


def integer(
    default: Any,
    lo: int,
    hi: int,
    unit: str = "",
    *,
    check: Callable[[Any], str | None] | None = None,
) -> Field:
    """An integer ``lo <= x <= hi`` (``unit`` such as ``" s"`` is named in the message)."""
    return Field("int", default, lo, hi, unit, check=check)


def number(default: Any, lo: float, hi: float, unit: str = "") -> Field:
    """A finite number ``lo <= x <= hi`` (an integer is taken as a float)."""
    return Field("float", default, lo, hi, unit)


def string(
    default: Any = None,
    *,
    check: Callable[[Any], str | None] | None = None,
    allow_empty: bool = False,
    one_line: bool = False,
) -> Field:
    """A string: non-empty unless ``allow_empty``; at most 512 characters on one line if
    ``one_line``; then ``check``."""
    return Field("str", default, check=check, allow_empty=allow_empty, one_line=one_line)


def boolean(default: Any) -> Field:
    """``true`` or ``false``."""
    return Field("bool", default)


def choice(default: Any, options: Sequence[Any], allowed: str = "") -> Field:
    """One of ``options`` (compared with ``==``; a boolean is never one)."""
    return Field("choice", default, choices=tuple(options), allowed=allowed)


def custom(default: Any, check: Callable[[Any], str | None]) -> Field:
    """Any TOML value that ``check`` accepts (it returns what is allowed, or ``None``)."""
    return Field("any", default, check=check)


#: table -> key -> field
Schema = Mapping[str, Mapping[str, Field]]


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """``" did you mean 'x'?"`` for the nearest of ``known`` (difflib), else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" did you mean {close[0]!r}?" if close else ""


def _unknown(what: str, name: str, known: Sequence[str], shown: str) -> str:
    return f"unknown {what};{did_you_mean(name, known)} allowed: {shown}"


def check_all(
    data: Mapping[str, Any],
    schema: Schema,
    problems: Problems,
    *,
    other_tables: Literal["reject", "ignore"] = "reject",
    present_only: bool = False,
) -> dict[str, dict[str, Any]]:
    """Check ``data`` (a parsed TOML document) against ``schema``; every problem goes to
    ``problems``.

    Returns table -> key -> value for every key of the schema (the default where the
    key is absent; only the keys present with ``present_only``). A key with a problem
    keeps its default (or is left out), so the caller can go on checking across keys.
    Tables outside the schema are problems (``other_tables="reject"``) or left to
    their owners (``"ignore"``).
    """
    out: dict[str, dict[str, Any]] = {}
    for table in data:
        if table not in schema and other_tables == "reject":
            shown = ", ".join(f"[{t}]" for t in schema)
            problems.add(table, data[table], _unknown("table", table, list(schema), shown))
    for table, fields in schema.items():
        body = data.get(table, {})
        if not isinstance(body, Mapping):
            problems.add(table, body, f"must be a table [{table}]")
            body = {}
        values: dict[str, Any] = {}
        for key in body:
            if key not in fields:
                shown = ", ".join(fields)
                problems.add(f"{table}.{key}", body[key], _unknown("key", key, list(fields), shown))
        for key, f in fields.items():
            if key not in body:
                if f.default is MISSING:
                    problems.add(f"{table}.{key}", MISSING, f"required; add it to [{table}]")
                elif not present_only:
                    values[key] = f.default
                continue
            value, problem = f.parse(body[key])
            if problem is None:
                values[key] = value
            else:
                problems.add(f"{table}.{key}", body[key], problem)
                if not present_only and f.default is not MISSING:
                    values[key] = f.default
        out[table] = values
    return out


def resolve_path(value: str | None, base_dir: Path) -> Path | None:
    """``value`` as a path, ``~`` expanded, relative ones against ``base_dir``."""
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else base_dir / p


def read_toml(path: str | Path, error: type[E], key: str = "config") -> dict[str, Any]:
    """The parsed TOML document of ``path``; one ``error(key, path, why)`` when the file
    cannot be read or is not TOML."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise error(key, str(p), f"must be a readable file ({reason})") from None
    except tomllib.TOMLDecodeError as err:
        raise error(key, str(p), f"must be valid TOML ({err})") from None
