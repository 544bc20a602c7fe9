"""``klankkast-analyze``: complaints and visits against measured nuisance.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``main(args) -> int``, imported only when its subcommand runs
(:mod:`klankkast.subcommands`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from klankkast.analysis._cliargs import add_password_argument, resolve_influx_args
from klankkast.analysis.errors import ConfigError
from klankkast.subcommands import parse_args, run

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "report": ("report", "corroborate complaints, audit visits, find silent nuisance; write DIR"),
    "plan": ("plan", "weekly patrol plan from the episode history, back-tested on held-out weeks"),
    "import": (
        "importer",
        "validate complaints/visits files and optionally write them to InfluxDB",
    ),
    "run": (
        "service",
        "the analysis on a schedule: nightly report, weekly plan, headline numbers to InfluxDB",
    ),
    "check": ("check", "check the rules and connect to the level source and InfluxDB; exit"),
}

EXIT_STATUSES: Final = """exit status:
  0  success
  1  bad input, rules or data; a failed check (one line per problem)
  2  usage error: unknown option, missing argument, malformed InfluxDB address
"""


def _configure(p: argparse.ArgumentParser) -> None:
    """Every subcommand: the exit statuses after its own epilog, and the InfluxDB
    password flag where it reads levels or writes to InfluxDB."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (p.epilog + "\n" if p.epilog else "") + EXIT_STATUSES
    if any(a.dest in ("levels", "influx") for a in p._actions):
        add_password_argument(p)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(
        argv,
        prog="klankkast-analyze",
        description="Does measured nuisance match complaints and enforcement visits?",
        epilog=EXIT_STATUSES,
        package="klankkast.analysis",
        commands=COMMANDS,
        configure=_configure,
    )
    try:
        resolve_influx_args(args)
    except ConfigError as err:
        print(f"klankkast-analyze {args.command}: {err}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
