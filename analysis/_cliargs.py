"""Flags and parsing shared by the ``report`` and ``plan`` subcommands."""

from __future__ import annotations

import argparse

from klankkast.analysis.errors import ConfigError
from klankkast.analysis.timeutil import parse_time_ms

#: ``--levels`` forms, for the epilog of every subcommand that reads levels.
LEVELS_FORMS = (
    "--levels forms:\n"
    "  levels.csv          columns time,site,node,LAeq,LCeq,LAFmax,LA90 (1-s or 1-min rows;\n"
    "                      time in UTC ms or ISO 8601, no offset = Europe/Amsterdam)\n"
    "  influxdb+http://[user:pass@]host:8086/klankkast[?measurement=minute|second]\n"
    "times (--from/--to): ISO 8601 or a date; without an offset Europe/Amsterdam.\n"
)


def add_source_arguments(parser: argparse.ArgumentParser, span: str) -> None:
    """``--levels``, ``--rules``, ``--from``, ``--to`` and ``--out``; ``span`` names the
    period in the help ("analysis", "history")."""
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
