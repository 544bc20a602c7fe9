"""``klankkast-analyze``: complaints and visits against measured nuisance.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``main(args) -> int``, imported only when its subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
}


def _add(sub: argparse._SubParsersAction, name: str) -> None:  # type: ignore[type-arg]
    module, help_text = COMMANDS[name]
    p = sub.add_parser(name, help=help_text, description=help_text)
    mod = importlib.import_module(f"klankkast.analysis.{module}")
    mod.add_arguments(p)
    p.set_defaults(_module=mod)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="klankkast-analyze",
        description="Does measured nuisance match complaints and enforcement visits?",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = [argv[0]] if argv and argv[0] in COMMANDS else list(COMMANDS)
    for name in names:
        _add(sub, name)
    args = parser.parse_args(argv)
    return int(args._module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
