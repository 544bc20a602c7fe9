"""Flags and parsing shared by the subcommands of ``klankkast-analyze``.

InfluxDB addresses (``--levels``, ``--influx``) have the one form of every klankkast
program, :data:`klankkast.influx.ADDRESS_FORM`; the password comes from
``--influx-password-file``, never from the address. :func:`resolve_influx_args`
checks them right after argument parsing, so a wrong form is one line and exit
status 2 before anything runs.
"""

from __future__ import annotations

import argparse
import textwrap
import urllib.parse
from pathlib import Path

from klankkast.analysis.errors import ConfigError
from klankkast.analysis.timeutil import parse_time_ms
from klankkast.influx import ADDRESS_FORM, InfluxAddress, parse_address

#: ``--levels`` forms, for the epilog of every subcommand that reads levels.
LEVELS_FORMS = (
    "--levels forms:\n"
    "  levels.csv          columns time,site,node,LAeq,LCeq,LAFmax,LA90 (1-s or 1-min rows;\n"
    "                      time in UTC ms or ISO 8601, no offset = Europe/Amsterdam)\n"
    "  influxdb+http(s)://[user@]host:port/database[?measurement=minute|second]\n"
    "                      (the password in --influx-password-file FILE)\n"
    "times (--from/--to): ISO 8601 or a date; without an offset Europe/Amsterdam.\n"
)


def add_source_arguments(
    parser: argparse.ArgumentParser, span: str, description: str, epilog: str = ""
) -> None:
    """The help text (``description`` filled to 88 columns; the ``--levels`` forms, then
    ``epilog``) and ``--levels``, ``--rules``, ``--from``, ``--to`` and ``--out`` of a
    subcommand that reads levels; ``span`` names the period ("analysis", "history")."""
    parser.description = textwrap.fill(description, width=88)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = LEVELS_FORMS + epilog
    parser.add_argument(
        "--levels", required=True, metavar="SOURCE", help="level CSV or InfluxDB URL"
    )
    parser.add_argument("--rules", metavar="FILE", help="rules TOML (default: documented defaults)")
    parser.add_argument("--from", dest="t_from", metavar="TIME", help=f"start of the {span}")
    parser.add_argument("--to", dest="t_to", metavar="TIME", help=f"end of the {span} (exclusive)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")


def time_arg(name: str, value: str | None) -> int | None:
    """``--from``/``--to`` in UTC ms; :class:`ConfigError` naming the flag when unparseable."""
    if value is None:
        return None
    try:
        return int(parse_time_ms(value))
    except ValueError as err:
        raise ConfigError(name, value, f"must be an ISO 8601 time or date ({err})") from None


#: ``dest`` of the flags that take an InfluxDB address, and the options each allows
ADDRESS_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "levels": ("--levels", ("measurement",)),
    "influx": ("--influx", ()),
}


def add_password_argument(parser: argparse.ArgumentParser) -> None:
    """``--influx-password-file``: the password of the ``user@`` in an address."""
    parser.add_argument(
        "--influx-password-file",
        metavar="FILE",
        help="password of the user in an influxdb+http(s)://user@... address (one line)",
    )


def is_address(text: str) -> bool:
    """Whether a ``--levels`` value means a server (anything with ``://``), not a file."""
    return "://" in text


def address_arg(flag: str, text: str, options: tuple[str, ...] = ()) -> InfluxAddress:
    """Parse an address given to ``flag``; :class:`ConfigError` (one line) if malformed."""
    from klankkast.influx import AddressError

    try:
        return parse_address(text, options=options)
    except AddressError as err:
        raise ConfigError(flag, err.shown, err.reason) from None


def read_password(path: str | None, address: InfluxAddress, flag: str) -> str | None:
    """The password of ``address``'s user from ``--influx-password-file``."""
    if address.username is None:
        return None
    if path is None:
        raise ConfigError(
            flag, str(address), f"user {address.username!r} needs --influx-password-file FILE"
        )
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(
            "--influx-password-file", path, f"must be a readable file ({err.strerror})"
        ) from None


def _internal_url(address: InfluxAddress, password: str | None) -> str:
    """The URL :mod:`klankkast.analysis.levels` reads (it takes the password inline)."""
    user = ""
    if address.username is not None:
        user = urllib.parse.quote(address.username, safe="")
        user += ":" + urllib.parse.quote(password or "", safe="") + "@"
    host = f"[{address.host}]" if ":" in address.host else address.host
    query = f"?{urllib.parse.urlencode(address.options)}" if address.options else ""
    return f"influxdb+{address.scheme}://{user}{host}:{address.port}/{address.database}{query}"


def resolve_influx_args(args: argparse.Namespace) -> None:
    """Check every address flag of ``args`` and read its password file.

    A valid address is replaced in ``args`` by what the level loader reads, and kept
    as given in ``args.<dest>_address``. Raises :class:`ConfigError` naming the flag;
    the caller prints it and exits 2. An ``http://host:8086/db`` gets that one line
    (it used to be taken for a CSV file name, or end in a traceback).
    """
    for dest, (flag, options) in ADDRESS_FLAGS.items():
        text = getattr(args, dest, None)
        if not isinstance(text, str):
            continue
        if dest == "levels" and not is_address(text):
            continue
        address = address_arg(flag, text, options)
        password = read_password(getattr(args, "influx_password_file", None), address, flag)
        setattr(args, f"{dest}_address", address)
        setattr(args, dest, _internal_url(address, password))


__all__ = [
    "ADDRESS_FLAGS",
    "ADDRESS_FORM",
    "LEVELS_FORMS",
    "add_password_argument",
    "add_source_arguments",
    "address_arg",
    "is_address",
    "read_password",
    "resolve_influx_args",
    "time_arg",
]
