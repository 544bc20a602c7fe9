"""``klankkast-sensor``: the node's command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``main(args) -> int``, imported only when its subcommand runs, so ``replay`` does
not pull in sounddevice or paho and one broken optional dependency cannot break
the other subcommands.
"""

from __future__ import annotations

import sys

from klankkast.subcommands import parse_args, run

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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(
        argv,
        prog="klankkast-sensor",
        description="klankkast noise-measurement node: calibrated levels (never audio) over MQTT.",
        epilog=EPILOG,
        package="klankkast.sensor",
        commands=COMMANDS,
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
