"""``klankkast-courtyard``: serve the residents' page; make, list and revoke invitations.

The wiring lives here: config -> adapters (SQLite invitations, InfluxDB) -> app ->
uvicorn. Every subcommand checks the whole config first and stops with one line on
a bad value (exit 1) before any I/O.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import socket
import sys
import time
from pathlib import Path
from typing import Final

from klankkast.courtyard.config import Config, load_config
from klankkast.courtyard.errors import ConfigError, CourtyardError
from klankkast.courtyard.invitations import SqliteInvitations
from klankkast.version import version as _version

__all__ = ["main"]

EXIT_STATUSES: Final = """exit status:
  0  success
  1  configuration error (one line naming key, value and what is allowed)
  2  usage error (unknown option, missing argument)
  3  InfluxDB or the invitation store is not usable (check; serve at start-up)
  4  revoke: no such invitation
"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="klankkast-courtyard",
        description="The residents' courtyard page: measurements, 'ik heb nu last' marks, invitations.",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--config", required=True, help="the courtyard TOML file (courtyard.example.toml)"
    )
    ap.add_argument("--version", action="version", version=f"klankkast-courtyard {_version()}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the web application under uvicorn", epilog=EXIT_STATUSES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    s.add_argument("--host", help="listen address (default: listen_host of the config)")
    s.add_argument("--port", type=int, help="listen port (default: listen_port)")
    s.add_argument(
        "--now",
        help="freeze the clock at this ISO 8601 time with offset (tests and demos only)",
    )
    i = sub.add_parser("invite", help="make one invitation letter per household",
                       epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    i.add_argument("--site", required=True)
    i.add_argument("--count", type=int, required=True, help="households (1-1000)")
    i.add_argument("--out", required=True, help="directory for the letters (HTML, A4, nl + en)")
    r = sub.add_parser("revoke", help="withdraw invitations by id", epilog=EXIT_STATUSES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    r.add_argument("ids", nargs="+", help="invitation ids (as printed on the letter and by list)")
    li = sub.add_parser("list", help="list invitations (never tokens)", epilog=EXIT_STATUSES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    li.add_argument("--site")
    li.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    sub.add_parser("check", help="check the config, the key, the store and InfluxDB",
                   epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    return ap


def _now_ms() -> int:
    return int(time.time() * 1000)


def _frozen(text: str) -> int:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ConfigError(
            "--now", text, "must be an ISO 8601 time with an offset (2026-06-11T23:20:00+02:00)"
        )
    return int(when.timestamp() * 1000)


def _invitations(cfg: Config) -> SqliteInvitations:
    store = SqliteInvitations(cfg.database)
    store.start()
    return store


def _serve(cfg: Config, args: argparse.Namespace) -> int:
    import uvicorn

    from klankkast.analysis.errors import ConfigError as RulesError
    from klankkast.analysis.rules import load_rules
    from klankkast.courtyard.app import Services, create_app
    from klankkast.courtyard.influxstore import InfluxCourtyard
    from klankkast.courtyard.model import Limits
    from klankkast.courtyard.planfile import PlanFile

    key = cfg.secret_key()
    try:
        rules = load_rules(cfg.rules)
    except RulesError as err:
        raise ConfigError("rules", str(cfg.rules), f"must be a valid rules file ({err})") from None
    plan = PlanFile(cfg.plan)
    now_ms = _now_ms
    if args.now:
        frozen = _frozen(args.now)

        def now_ms() -> int:
            return frozen

    store = _invitations(cfg)
    influx = InfluxCourtyard(cfg.influxdb)
    influx.start()
    svc = Services(
        cfg=cfg, key=key, invitations=store, store=influx, limits=Limits.from_rules(rules),
        plan=plan, now_ms=now_ms,
    )  # fmt: skip
    app = create_app(svc)
    host = args.host or cfg.listen_host
    port = args.port or cfg.listen_port
    # uvicorn's access log prints client addresses: off; the app logs requests without them
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=port, access_log=False, proxy_headers=False,
            server_header=False, log_level=cfg.log_level.lower(), lifespan="off",
            http="httptools", timeout_keep_alive=30, backlog=2048,
        )
    )  # fmt: skip
    logging.getLogger("klankkast.courtyard").info(
        "klankkast-courtyard: %d site(s) on http://%s:%d%s", len(cfg.sites), host, port,
        cfg.root_path or "/",
    )  # fmt: skip
    _notify_ready_later(server)
    try:
        server.run()
    finally:
        influx.close()
        store.close()
    return 0


def _notify_ready_later(server: object) -> None:
    """Tell systemd (Type=notify) READY=1 once uvicorn listens, if NOTIFY_SOCKET is set."""
    import os
    import threading

    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return

    def wait() -> None:
        for _ in range(600):
            if getattr(server, "started", False):
                break
            time.sleep(0.1)
        path = "\0" + addr[1:] if addr.startswith("@") else addr
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(b"READY=1")

    threading.Thread(target=wait, daemon=True, name="sd-notify").start()


def _invite(cfg: Config, args: argparse.Namespace) -> int:
    from klankkast.courtyard.letters import write_letters

    if args.site not in cfg.sites:
        raise ConfigError(
            "--site",
            args.site,
            f"must be one of the configured sites ({', '.join(sorted(cfg.sites))})",
        )
    if not 1 <= args.count <= 1000:
        raise ConfigError("--count", args.count, "must be 1-1000 households")
    store = _invitations(cfg)
    try:
        now = _now_ms()
        made = store.create(args.site, args.count, now, cfg.invitation_days)
    finally:
        store.close()
    paths = write_letters(
        Path(args.out), args.site, cfg.sites[args.site], [(inv.id, tok) for inv, tok in made],
        cfg.base_url, dt.datetime.fromtimestamp(now / 1000, dt.UTC).date(),
    )  # fmt: skip
    print(f"klankkast-courtyard: {len(paths)} invitation letter(s) for {args.site} in {args.out}")
    return 0


def _revoke(cfg: Config, args: argparse.Namespace) -> int:
    store = _invitations(cfg)
    try:
        missing = [i for i in args.ids if not store.revoke(i, _now_ms())]
    finally:
        store.close()
    for i in missing:
        print(f"klankkast-courtyard: no invitation {i!r}", file=sys.stderr)
    print(f"klankkast-courtyard: revoked {len(args.ids) - len(missing)} invitation(s)")
    return 4 if missing else 0


def _list(cfg: Config, args: argparse.Namespace) -> int:
    store = _invitations(cfg)
    try:
        rows = store.all(args.site)
    finally:
        store.close()
    now = _now_ms()

    def state(expires: int, revoked: int | None) -> str:
        return "revoked" if revoked is not None else ("expired" if now >= expires else "valid")

    def iso(ms: int | None) -> str | None:
        return (
            None
            if ms is None
            else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
        )

    if args.json:
        print(json.dumps([
            {"id": r.id, "site": r.site, "created": iso(r.created_ms), "expires": iso(r.expires_ms),
             "revoked": iso(r.revoked_ms), "state": state(r.expires_ms, r.revoked_ms)} for r in rows
        ], indent=1))  # fmt: skip
        return 0
    print(f"{'id':8}  {'site':16}  {'state':7}  {'created (UTC)':25}  expires (UTC)")
    for r in rows:
        print(f"{r.id:8}  {r.site:16}  {state(r.expires_ms, r.revoked_ms):7}  "
              f"{iso(r.created_ms):25}  {iso(r.expires_ms)}")  # fmt: skip
    return 0


def _check(cfg: Config) -> int:
    from klankkast.courtyard.influxstore import InfluxCourtyard

    cfg.secret_key()
    store = _invitations(cfg)
    n = len(store.all())
    store.close()
    influx = InfluxCourtyard(cfg.influxdb)
    try:
        influx.start()
        problems = influx.check()
    except CourtyardError as err:
        problems = [str(err)]
    finally:
        influx.close()
    for p in problems:
        print(f"klankkast-courtyard check: {p}", file=sys.stderr)
    if problems:
        return 3
    print(f"klankkast-courtyard check: ok ({len(cfg.sites)} site(s), {n} invitation(s))")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        logging.basicConfig(
            level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        if args.cmd == "serve":
            return _serve(cfg, args)
        if args.cmd == "invite":
            return _invite(cfg, args)
        if args.cmd == "revoke":
            return _revoke(cfg, args)
        if args.cmd == "list":
            return _list(cfg, args)
        return _check(cfg)
    except ConfigError as err:
        print(f"klankkast-courtyard: {err}", file=sys.stderr)
        return 1
    except CourtyardError as err:
        print(f"klankkast-courtyard: {err}", file=sys.stderr)
        return 3
