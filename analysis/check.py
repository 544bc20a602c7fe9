"""``klankkast-analyze check``: would a ``report`` / ``plan`` / ``import`` run start?

Validates what those commands validate before they read anything -- the rules file
and the InfluxDB addresses with their password file -- and then connects: a level
CSV must be a readable file; an InfluxDB address is pinged, its database must exist
with the retention policies of the layout, and the level measurement must be
readable by the address's user. Prints one ``OK``/``FAIL`` line per item.

Exit status: 0 everything OK; 1 a bad rules file, a failed connection or a missing
retention policy; 2 bad usage (unknown flag, malformed address).
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from pathlib import Path

from klankkast.analysis._cliargs import is_address
from klankkast.analysis.errors import AnalysisError

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``klankkast-analyze check``."""
    parser.description = (
        "Check the rules file and connect to the level source and InfluxDB as report, plan "
        "and import would: exit 0 when they would start."
    )
    parser.add_argument("--rules", metavar="FILE", help="rules TOML (default: documented defaults)")
    parser.add_argument(
        "--levels", metavar="SOURCE", help="level CSV or influxdb+http(s)://[user@]host:port/db"
    )
    parser.add_argument(
        "--influx", metavar="ADDRESS", help="where report/import write: influxdb+http(s)://..."
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds per request (default 10)"
    )


def _line(ok: bool, what: str, detail: str) -> None:
    print(f"{'OK  ' if ok else 'FAIL'} {what}: {detail}", flush=True)


def _check_influx(what: str, internal: str, measurement: str | None, timeout_s: float) -> bool:
    """Ping, read the retention policies, and (for levels) read the measurement."""
    from klankkast.influx import (
        RETENTION_POLICIES,
        InfluxHTTP,
        QueryError,
        quote_ident,
        rp_of,
    )

    parts = urllib.parse.urlsplit(internal)
    scheme = parts.scheme.split("+", 1)[1]
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    shown = f"{scheme}://{host}:{parts.port}/{parts.path.strip('/')}"
    client = InfluxHTTP(
        f"{scheme}://{host}:{parts.port}",
        parts.path.strip("/"),
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password or "") if parts.username else None,
        timeout_s=timeout_s,
    )
    try:
        if not client.ping():
            _line(False, what, f"no answer from {shown}/ping")
            return False
        try:
            rps = client.query(f"SHOW RETENTION POLICIES ON {quote_ident(client.database)}", db="")
        except QueryError as err:
            _line(False, what, f"{shown}: {err}")
            return False
        missing = sorted(set(RETENTION_POLICIES) - {str(r.get("name")) for r in rps})
        if missing:
            _line(
                False,
                what,
                f"{shown}: retention policies {', '.join(missing)} missing "
                "(run deploy/influxdb/setup.sh)",
            )
            return False
        if measurement is not None:
            rp = rp_of(measurement)
            q = f"SELECT * FROM {quote_ident(rp)}.{quote_ident(measurement)} LIMIT 1"
            try:
                client.query(q)
            except QueryError as err:
                _line(False, what, f"{shown}: cannot read {rp}.{measurement}: {err}")
                return False
        _line(True, what, f"{shown} answers; retention policies complete")
        return True
    finally:
        client.close()


def main(args: argparse.Namespace) -> int:
    """Run ``klankkast-analyze check`` (addresses were resolved by the CLI)."""
    from klankkast.analysis.rules import load_rules

    ok = True
    try:
        load_rules(Path(args.rules) if args.rules else None)
        _line(True, "rules", args.rules or "documented defaults")
    except AnalysisError as err:
        _line(False, "rules", str(err))
        ok = False
    except OSError as err:
        _line(False, "rules", f"{args.rules}: {err.strerror}")
        ok = False
    if args.levels:
        if is_address(args.levels):
            address = args.levels_address
            measurement = address.option("measurement", "minute")
            ok &= _check_influx("levels", args.levels, measurement, args.timeout)
        elif Path(args.levels).is_file():
            _line(True, "levels", f"{args.levels} is a readable file")
        else:
            _line(False, "levels", f"{args.levels} is not a readable file")
            ok = False
    if args.influx:
        ok &= _check_influx("influx", args.influx, None, args.timeout)
    print("check OK" if ok else "check FAILED", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
