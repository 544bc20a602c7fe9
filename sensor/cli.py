"""``klankkast-sensor``: the node's command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``main(args) -> int``, imported only when its subcommand runs, so ``replay`` does
not pull in sounddevice or paho and one broken optional dependency cannot break
the other subcommands.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys

from klankkast.version import version as _version

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("service", "run the node: capture, measure, publish (systemd runs this)"),
    "devices": ("devices", "list audio input devices with their sample rates"),
    "check": ("check", "health check: measure 10 s, connect to the broker, clock, disk, outbox"),
    "calibrate": (
        "calibrate",
        "calibrate against a 1 kHz acoustic calibrator and store the offset",
    ),
    "replay": ("replay", "measure a WAV file through the node's core; JSON lines on stdout"),
    "simulate": ("simulate", "publish synthetic frames for N virtual nodes (load tests, demo)"),
}


EPILOG = """exit status:
  0  success
  1  configuration error (one line naming key, value and what is allowed)
  2  usage error (unknown option, missing argument); check: unhealthy; calibrate:
     refused; replay: bad input; simulate: frames undelivered
  each COMMAND --help states its own
"""


def _add(sub: argparse._SubParsersAction, name: str) -> None:  # type: ignore[type-arg]
    module, help_text = COMMANDS[name]
    p = sub.add_parser(name, help=help_text, description=help_text)
    mod = importlib.import_module(f"klankkast.sensor.{module}")
    mod.add_arguments(p)
    p.set_defaults(_module=mod)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="klankkast-sensor",
        description="klankkast noise-measurement node: calibrated levels (never audio) over MQTT.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"klankkast-sensor {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = [argv[0]] if argv and argv[0] in COMMANDS else list(COMMANDS)
    for name in names:
        _add(sub, name)
    args = parser.parse_args(argv)
    return int(args._module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
