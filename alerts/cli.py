"""``klankkast-alerts [check] --config F``: the command line (``--check`` kept as a
deprecated alias of ``check``)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from klankkast.ingest.errors import ConfigError
from klankkast.version import version as _version

if TYPE_CHECKING:
    pass
from klankkast.alerts.config import load
from klankkast.alerts.service import AlertsService, secret_error

log = logging.getLogger("klankkast.alerts")


EXIT_STATUSES: Final = """exit status:
  0  run: stopped by SIGTERM/SIGINT; check: configuration valid and connections OK
  1  configuration error (one line naming key, value and what is allowed), or a failed check
  2  usage error (unknown option, missing argument)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "command",
        nargs="?",
        choices=("run", "check"),
        default="run",
        help="run (default): run until SIGTERM/SIGINT; check: validate what a start validates "
        "(config, rules, secret and TLS files), connect to the broker and InfluxDB, and exit",
    )
    parser.add_argument(
        "--config", required=True, type=Path, help="central configuration (TOML) with [alerts]"
    )
    parser.add_argument(
        "--check", action="store_true", help="deprecated spelling of the check command"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="check: seconds per connection"
    )
    parser.add_argument("--version", action="version", version=f"klankkast-alerts {_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="klankkast-alerts",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Live nuisance alerts: apply the analysis' episode rules to the MQTT stream per "
            "site, confirm, and publish start/update/end alerts on klankkast/v1/{site}/alerts "
            "(retained), to InfluxDB (measurement alert) and to webhooks. Settings: the "
            "[alerts] section of the central configuration."
        ),
    )
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from klankkast.analysis.errors import AnalysisError

    try:
        central, acfg, rules = load(args.config)
    except (ConfigError, AnalysisError) as err:
        print(f"klankkast-alerts: {err}", file=sys.stderr)
        return 1
    if args.check:
        print(
            "klankkast-alerts: --check is deprecated; use: klankkast-alerts check --config FILE",
            file=sys.stderr,
        )
    if args.check or args.command == "check":
        from klankkast.alerts.check import check

        return check(central, acfg, args.timeout)
    logging.basicConfig(
        level=acfg.log_level, format="%(asctime)s klankkast-alerts %(levelname)s %(message)s"
    )
    service = AlertsService(central, acfg, rules)
    stop = threading.Event()

    def _signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        service.start()
    except ConfigError as err:
        print(f"klankkast-alerts: {secret_error(err, acfg)}", file=sys.stderr)
        return 1
    while not stop.wait(1.0):
        pass
    log.info("klankkast-alerts: stopping")
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
