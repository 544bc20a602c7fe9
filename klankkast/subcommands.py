"""A program's command line of lazily imported subcommands.

Each subcommand lives in its own module of the program's package, exposing
``add_arguments(parser)`` and ``main(args) -> int``. Only the module of the subcommand
that runs is imported (all of them for the top-level ``--help``), so one subcommand's
missing optional dependency cannot break the others, and ``--help`` of one is quick.

Standard library only; shared by the programs, importing no part of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping

from klankkast.version import version

__all__ = ["parse_args", "run"]


def parse_args(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    epilog: str,
    package: str,
    commands: Mapping[str, tuple[str, str]],
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``) against ``prog COMMAND ...``.

    ``commands`` maps a subcommand to (module within ``package``, one-line help); the
    help is also the subcommand's description. ``configure`` is called with each
    subcommand's parser after its module has added its arguments. The namespace has
    the subcommand in ``command``; :func:`run` runs it.
    """
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = [argv[0]] if argv and argv[0] in commands else list(commands)
    for name in names:
        module, help_text = commands[name]
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(f"{package}.{module}")
        mod.add_arguments(p)
        if configure is not None:
            configure(p)
        p.set_defaults(_module=mod)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Run the parsed subcommand's ``main(args)``; its exit status (None counts as 0)."""
    return int(args._module.main(args) or 0)
