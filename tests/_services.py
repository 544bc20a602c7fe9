"""Service helpers behind the fixtures in ``tests/conftest.py``.

The process management lives in ``deploy/local/services.py`` (standard library only,
shared with the demo and the benchmarks); this module adds what only tests need:

* :func:`require` turns a missing program into a test failure naming the exact
  ``apt-get install`` line when ``CI`` is set, and a skip with the same line otherwise;
* the ACL broker built from ``deploy/mosquitto/`` (:func:`start_acl_broker`);
* the two test microphones (:class:`UnpacedMic`, :class:`PacedMic`).

Importable without pytest (pytest is imported lazily), so benches can use it too.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_LOCAL = str(REPO / "deploy" / "local")
if _LOCAL not in sys.path:
    sys.path.insert(0, _LOCAL)

from services import (  # type: ignore[import-not-found]  # noqa: E402
    DEPLOY_MOSQUITTO,
    Broker,
    Influx,
    MissingBinaryError,
    ServiceError,
    TlsFiles,
    find_binary,
    free_port,
    make_tls_files,
)

__all__ = [
    "ACL_NODES",
    "ACL_SERVICE_USERS",
    "AclBroker",
    "Broker",
    "Influx",
    "MissingBinaryError",
    "ServiceError",
    "TlsFiles",
    "find_binary",
    "free_port",
    "in_ci",
    "make_tls_files",
    "reinit_sounddevice",
    "render_production_conf",
    "require",
    "start_acl_broker",
]


def in_ci() -> bool:
    """True when the environment variable ``CI`` is set to anything but empty/0/false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(*binaries: str) -> None:
    """Fail (``CI`` set) or skip (otherwise) the current test when a program is missing,
    naming the exact ``apt-get install`` line."""
    missing: list[MissingBinaryError] = []
    for name in binaries:
        try:
            find_binary(name)
        except MissingBinaryError as err:
            missing.append(err)
    if missing:
        _missing(missing)


def _missing(errors: list[MissingBinaryError]) -> None:
    import pytest

    packages = " ".join(dict.fromkeys(e.package for e in errors))
    names = ", ".join(e.binary for e in errors)
    msg = f"{names} not installed; install with: sudo apt-get install -y {packages}"
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


# --------------------------------------------------------------------------- ACL broker

#: Service users of the production ACL (``deploy/mosquitto/acl``).
ACL_SERVICE_USERS = ("ingest", "alerts", "dispatch")
#: Nodes the ACL fixture adds with ``deploy/mosquitto/add-node.sh`` as (site, node).
ACL_NODES = (("yard1", "n1"), ("yard1", "n2"))


_DROP_KEYS = {
    "listener", "port", "cafile", "capath", "certfile", "keyfile", "tls_version",
    "require_certificate", "use_identity_as_username", "password_file", "acl_file",
    "persistence_location", "log_dest", "user", "pid_file", "include_dir",
}  # fmt: skip


def render_production_conf(
    text: str,
    *,
    port: int,
    directory: Path,
    password_file: Path,
    acl_file: Path,
    log_file: Path,
    tls: TlsFiles | None = None,
    max_queued_messages: int | None = None,
) -> str:
    """Rewrite ``deploy/mosquitto/mosquitto.conf`` for a private test instance.

    Every setting is kept except the machine-specific ones: the listener becomes
    ``listener PORT 127.0.0.1`` (with the throwaway CA's files if ``tls``, plain
    otherwise), and the password file, ACL file, persistence directory and log go
    to ``directory``.
    """
    kept = []
    for line in text.splitlines():
        key = (
            line.strip().split(" ", 1)[0]
            if line.strip() and not line.lstrip().startswith("#")
            else ""
        )
        if key in _DROP_KEYS:
            continue
        if key == "max_queued_messages" and max_queued_messages is not None:
            continue
        kept.append(line)
    listener = [f"listener {port} 127.0.0.1"]
    if tls is not None:
        listener += [
            f"cafile {tls.ca_file}",
            f"certfile {tls.server_cert}",
            f"keyfile {tls.server_key}",
            "require_certificate false",
        ]
    extra = [
        f"password_file {password_file}",
        f"acl_file {acl_file}",
        f"persistence_location {directory / 'data'}/",
        f"log_dest file {log_file}",
    ]
    if max_queued_messages is not None:
        extra.append(f"max_queued_messages {max_queued_messages}")
    if os.geteuid() == 0:
        extra.append("user root")
    return "\n".join([*kept, "", "# --- test instance ---", *listener, *extra]) + "\n"


class AclBroker(Broker):  # type: ignore[misc]
    """A :class:`Broker` running the production config, password file and ACL."""

    passwords: dict[str, str]
    password_dir: Path

    def credentials(self, user: str) -> tuple[str, str, Path]:
        """``(username, password, password_file)`` of ``user``; the file holds the
        password alone (no newline), as ``[mqtt] password_file`` expects."""
        if user not in self.passwords:
            raise KeyError(f"no such user {user!r}; known: {sorted(self.passwords)}")
        return user, self.passwords[user], self.password_dir / f"{user}.password"


def _add_user(password_file: Path, user: str, password: str) -> None:
    passwd = find_binary("mosquitto_passwd")
    if not password_file.exists():
        password_file.touch(mode=0o600)
    res = subprocess.run(
        [passwd, "-b", str(password_file), user, password], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise ServiceError(f"mosquitto_passwd for {user} failed: {res.stderr.strip()}")


def setup_acl_dir(directory: Path) -> tuple[Path, Path, dict[str, str]]:
    """Make a password file and an ACL in ``directory`` the way production does:
    the base ``deploy/mosquitto/acl`` and service users, then each node through
    ``deploy/mosquitto/add-node.sh``. Returns (password_file, acl_file, passwords)."""
    directory.mkdir(parents=True, exist_ok=True)
    password_file = directory / "passwd"
    acl_file = directory / "acl"
    shutil.copyfile(DEPLOY_MOSQUITTO / "acl", acl_file)
    passwords: dict[str, str] = {}
    pw_dir = directory / "passwords"
    pw_dir.mkdir(exist_ok=True)
    for user in ACL_SERVICE_USERS:
        passwords[user] = secrets.token_urlsafe(12)
        _add_user(password_file, user, passwords[user])
    env = dict(os.environ)
    env.update(
        KLANKKAST_MOSQUITTO_DIR=str(directory),
        KLANKKAST_PASSWORD_FILE=str(password_file),
        KLANKKAST_ACL_FILE=str(acl_file),
        KLANKKAST_NODE_SECRETS_DIR=str(pw_dir),
        KLANKKAST_NO_RELOAD="1",
    )
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/usr/bin"
    for site, node in ACL_NODES:
        res = subprocess.run(
            ["bash", str(DEPLOY_MOSQUITTO / "add-node.sh"), site, node, "--host", "127.0.0.1"],
            capture_output=True,
            text=True,
            env=env,
        )
        if res.returncode != 0:
            raise ServiceError(f"add-node.sh {site} {node} failed: {res.stderr.strip()}")
        user = f"{site}-{node}"
        passwords[user] = (pw_dir / f"{user}.password").read_text().strip()
    for user, pw in passwords.items():
        path = pw_dir / f"{user}.password"
        path.write_text(pw)
        path.chmod(0o600)
    return password_file, acl_file, passwords


def start_acl_broker(base_dir: Path | None = None, *, tls: TlsFiles | None = None) -> AclBroker:
    """Start a broker from the production ``deploy/mosquitto/mosquitto.conf`` with its
    ACL and users ingest, alerts, dispatch, yard1-n1, yard1-n2 (plain listener unless
    ``tls``)."""
    base = (
        Path(tempfile.mkdtemp(prefix="klankkast-mosquitto-acl-")) if base_dir is None else base_dir
    )
    password_file, acl_file, passwords = setup_acl_dir(base / "auth")
    prod = (DEPLOY_MOSQUITTO / "mosquitto.conf").read_text()
    port = free_port()
    (base / "data").mkdir(parents=True, exist_ok=True)

    def body(port: int) -> str:
        # doubled braces: Broker formats conf_body with {port}/{dir}/{log}
        return (
            render_production_conf(
                prod,
                port=port,
                directory=base,
                password_file=password_file,
                acl_file=acl_file,
                log_file=base / "mosquitto.log",
                tls=tls,
                max_queued_messages=1_000_000,
            )
            .replace("{", "{{")
            .replace("}", "}}")
        )

    broker = AclBroker(base, port=port, conf_body=body(port), tls=tls)
    broker._own_dir = base_dir is None
    broker.passwords = passwords
    broker.password_dir = base / "auth" / "passwords"

    def reselect() -> None:
        broker.port = free_port()
        broker.conf_body = body(broker.port)
        broker._write_conf()

    broker._reselect_ports = reselect  # type: ignore[method-assign]
    try:
        broker.start(_first=True)
    except BaseException:
        broker.close()
        raise
    return broker


# --------------------------------------------------------------------------- microphones


def reinit_sounddevice(env: dict[str, str]) -> None:
    """Apply ``env`` (ALSA_CONFIG_PATH, PULSE_SERVER, ...) to this process and
    re-initialise PortAudio, which reads the ALSA configuration only at start-up."""
    import sounddevice as sd

    for key in (
        "ALSA_CONFIG_PATH",
        "PULSE_SERVER",
        "PULSE_SOURCE",
        "PULSE_SINK",
        "PULSE_RUNTIME_PATH",
    ):
        if key in env:
            os.environ[key] = env[key]
    # Our ALSA config must be re-read too: alsa-lib caches the global config tree.
    sd._terminate()
    sd._initialize()


@contextmanager
def sounddevice_env(env: dict[str, str]) -> Iterator[None]:
    """Use ``env`` for in-process PortAudio within the block, then restore."""
    keys = ("ALSA_CONFIG_PATH", "PULSE_SERVER", "PULSE_SOURCE", "PULSE_SINK", "PULSE_RUNTIME_PATH")
    saved = {k: os.environ.get(k) for k in keys}
    reinit_sounddevice(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        import sounddevice as sd

        sd._terminate()
        sd._initialize()
