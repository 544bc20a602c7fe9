"""Run a private Mosquitto and InfluxDB 1.x as child processes on free loopback ports.

Standard library only, no pytest: the test fixtures (``tests/support/stack.py``), the
benchmarks and the demo (the package ``deploy/local/demo/``) all start their servers
through this module, and the demo its programs too (:func:`spawn`). Import it by path::

    sys.path.insert(0, str(repo / "deploy" / "local"))
    from services import Broker, Influx

Each server lives in its own directory (config, data, log) and listens on
127.0.0.1 only. ``stop()`` ends it (SIGTERM, or SIGKILL with ``kill=True``),
``start()`` brings it back on the same port with the same data, so tests can
exercise outages and crash recovery. A server that fails to start raises
:class:`ServiceError` carrying its log.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

__all__ = [
    "Broker",
    "Influx",
    "MissingBinaryError",
    "ServiceError",
    "TlsFiles",
    "find_binary",
    "free_port",
    "make_tls_files",
    "spawn",
]

REPO = Path(__file__).resolve().parents[2]
DEPLOY_MOSQUITTO = REPO / "deploy" / "mosquitto"

#: Debian package providing each binary the services need.
DEBIAN_PACKAGE = {
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",
    "mosquitto_pub": "mosquitto-clients",
    "mosquitto_sub": "mosquitto-clients",
    "influxd": "influxdb",
    "openssl": "openssl",
    "nginx": "nginx",
    "pulseaudio": "pulseaudio",
    "pactl": "pulseaudio-utils",
    "paplay": "pulseaudio-utils",
    "arecord": "alsa-utils",
    "systemd-analyze": "systemd",
}

_EXTRA_PATH = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class ServiceError(RuntimeError):
    """A server did not start or stop; the message carries its log."""


class _HttpError(ServiceError):
    def __init__(self, path: str, code: int, payload: bytes) -> None:
        self.code = code
        self.payload = payload
        super().__init__(
            f"influxdb {path} returned HTTP {code}: {payload.decode(errors='replace').strip()}"
        )


class MissingBinaryError(ServiceError):
    """A program is not installed; ``install_hint`` is the exact apt-get line."""

    def __init__(self, binary: str) -> None:
        package = DEBIAN_PACKAGE.get(binary, binary)
        self.binary = binary
        self.package = package
        self.install_hint = f"sudo apt-get install -y {package}"
        super().__init__(f"{binary} is not installed; install it with: {self.install_hint}")


def find_binary(name: str) -> str:
    """Return the path of program ``name`` (also looking in sbin), or raise
    :class:`MissingBinaryError` naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        extra = os.pathsep.join(_EXTRA_PATH)
        path = shutil.which(name, path=extra)
    if path is None:
        raise MissingBinaryError(name)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def spawn(
    cmd: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with its output (stdout and stderr) appended to ``log``.

    The child runs in a session of its own, so a Ctrl-C in the terminal reaches only
    the parent, which stops its children in order; stdin is closed.
    """
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def _port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _port_bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


_LIVE: set[_Process] = set()


@atexit.register
def _stop_all() -> None:
    """Do not leave servers behind when the interpreter exits without closing them."""
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.stop(kill=True, timeout_s=5.0)


class _Process:
    """Common start/stop/kill of one child server process."""

    name = "server"
    host = "127.0.0.1"
    start_timeout_s = 20.0

    def __init__(self, base_dir: Path | None) -> None:
        self._own_dir = base_dir is None
        self.base_dir = (
            Path(tempfile.mkdtemp(prefix=f"klankkast-{self.name}-"))
            if base_dir is None
            else Path(base_dir)
        )
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.base_dir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdout = self.base_dir / f"{self.name}.stdout"

    # -- subclass hooks -------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ports(self) -> list[int]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _reselect_ports(self) -> None:
        """Pick new free ports (first start only, after a bind race)."""

    def _after_start(self) -> None:
        """Run once the server answers."""

    # -- public ---------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """The server's log so far (its log file and its stdout/stderr)."""
        parts = []
        for path in dict.fromkeys((self.log_path, self._stdout)):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(p for p in parts if p)

    def start(self, *, _first: bool = False) -> None:
        """Start the server (same ports and data as before) and wait until it answers.

        On the first start a port taken in the meantime is replaced by another free
        one; on a restart the same ports are retried until ``start_timeout_s``.
        """
        if self.running():
            return
        deadline = time.monotonic() + self.start_timeout_s
        attempts = 0
        while True:
            attempts += 1
            busy = [p for p in self._ports() if not _port_bindable(self.host, p)]
            if busy:
                if _first and attempts < 5:
                    self._reselect_ports()
                    continue
                if time.monotonic() > deadline:
                    raise ServiceError(f"{self.name}: port(s) {busy} on {self.host} stay busy")
                time.sleep(0.1)
                continue
            if self._spawn(deadline):
                self._after_start()
                return
            if time.monotonic() > deadline or attempts >= 5:
                raise ServiceError(
                    f"{self.name} failed to start (command: {' '.join(self._command())});"
                    f" log:\n{self.log_text()[-6000:]}"
                )
            if _first:
                self._reselect_ports()
            time.sleep(0.2)

    def _spawn(self, deadline: float) -> bool:
        self._proc = spawn(self._command(), self._stdout, cwd=self.base_dir)
        _LIVE.add(self)
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if self._ready():
                return True
            time.sleep(0.05)
        self.stop(kill=True)
        return False

    def stop(self, kill: bool = False, timeout_s: float = 15.0) -> None:
        """Stop the server: SIGTERM and wait (clean shutdown, data saved), or SIGKILL
        with ``kill=True`` (a crash: only what was already on disk survives)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        self._proc = None
        _LIVE.discard(self)
        # Wait until the ports are free again so that start() can rebind at once.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(_port_open(self.host, p) for p in self._ports()):
            time.sleep(0.05)

    def start_new(self) -> None:
        """The first start: a port taken in the meantime is replaced by another free one;
        on failure the server is closed (its directory removed if this object made it)."""
        try:
            self.start(_first=True)
        except BaseException:
            self.close()
            raise

    @classmethod
    def launch(cls, base_dir: Path | None = None, **opts: Any) -> Self:
        """Create and start a server (choosing other free ports after a bind race)."""
        server = cls(base_dir, **opts)
        server.start_new()
        return server

    def restart(self) -> None:
        """Clean stop then start on the same port(s)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory if this object created it."""
        self.stop(kill=False)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- Mosquitto


class TlsFiles:
    """A throwaway CA with a server certificate for 127.0.0.1/localhost and a client certificate."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca_file = directory / "ca.crt"
        self.ca_key = directory / "ca.key"
        self.server_cert = directory / "server.crt"
        self.server_key = directory / "server.key"
        self.client_cert = directory / "client.crt"
        self.client_key = directory / "client.key"


def make_tls_files(directory: Path, client_cn: str = "klankkast-test-client") -> TlsFiles:
    """Generate a CA (EC P-256, valid 2 days), a server certificate with
    subjectAltName 127.0.0.1/localhost and a client certificate, with ``openssl``."""
    openssl = find_binary("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    tls = TlsFiles(directory)

    def run(*args: str) -> None:
        res = subprocess.run([openssl, *args], capture_output=True, text=True, cwd=directory)
        if res.returncode != 0:
            raise ServiceError(f"openssl {' '.join(args)} failed: {res.stderr.strip()}")

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", str(tls.ca_key), "-out", str(tls.ca_file),
        "-days", "2", "-subj", "/CN=klankkast test CA")  # fmt: skip
    for cert, key, cn, ext in (
        (tls.server_cert, tls.server_key, "127.0.0.1",
         "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        (tls.client_cert, tls.client_key, client_cn, "extendedKeyUsage=clientAuth\n"),
    ):  # fmt: skip
        csr = cert.with_suffix(".csr")
        extfile = cert.with_suffix(".ext")
        extfile.write_text(ext)
        run("req", "-new", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
        run("x509", "-req", "-in", str(csr), "-CA", str(tls.ca_file), "-CAkey", str(tls.ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extfile))  # fmt: skip
    for key in (tls.ca_key, tls.server_key, tls.client_key):
        key.chmod(0o644)  # mosquitto may drop privileges; keys are throwaway
    return tls


class Broker(_Process):
    """A private ``mosquitto`` (2.x) on a free loopback port.

    Parameters
    ----------
    base_dir
        Directory for config, persistence and log; a new temporary one if None.
    port
        Listener port; a free one if None.
    allow_anonymous
        ``allow_anonymous`` of the listener (ignored when ``conf_body`` is given).
    tls
        Serve MQTT over TLS with these files (``url`` becomes ``mqtts://``).
    require_certificate
        With ``tls``: demand a client certificate signed by the CA.
    extra_conf
        Lines appended to the generated config (e.g. ``password_file``, ``acl_file``).
    conf_body
        A complete config to use instead of the generated listener/security part;
        ``{port}``, ``{dir}``, ``{log}`` are substituted. Persistence and logging lines
        are still added unless it sets them itself.
    """

    name = "mosquitto"

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        port: int | None = None,
        allow_anonymous: bool = True,
        tls: TlsFiles | None = None,
        require_certificate: bool = False,
        extra_conf: str = "",
        conf_body: str | None = None,
        max_queued_messages: int = 1_000_000,
    ) -> None:
        super().__init__(base_dir)
        self.port = port if port is not None else free_port()
        # the listener's security, then what the config adds or replaces
        self.allow_anonymous, self.tls = allow_anonymous, tls
        self.require_certificate = require_certificate
        self.extra_conf, self.conf_body = extra_conf, conf_body
        self.max_queued_messages = max_queued_messages
        self.data_dir = self.base_dir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.conf_path = self.base_dir / "mosquitto.conf"
        self.log_path = self.base_dir / "mosquitto.log"
        self._write_conf()

    # The fixture API ---------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls is not None else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        return None if self.tls is None else self.tls.ca_file

    @property
    def client_cert(self) -> Path | None:
        return None if self.tls is None else self.tls.client_cert

    @property
    def client_key(self) -> Path | None:
        return None if self.tls is None else self.tls.client_key

    def render_conf(self) -> str:
        """The mosquitto.conf this broker runs with."""
        lines = [
            "# generated by klankkast deploy/local/services.py",
            "per_listener_settings false",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto would otherwise drop to the 'mosquitto' user, which
            # cannot write our temporary directory.
            lines.append("user root")
        if self.conf_body is not None:
            body = self.conf_body.format(port=self.port, dir=self.base_dir, log=self.log_path)
            lines = [ln for ln in lines if not ln.startswith("per_listener_settings")]
            lines.append(body)
        else:
            lines += [
                f"listener {self.port} {self.host}",
                f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            ]
            if self.tls is not None:
                lines += [
                    f"cafile {self.tls.ca_file}",
                    f"certfile {self.tls.server_cert}",
                    f"keyfile {self.tls.server_key}",
                    "tls_version tlsv1.2",
                    f"require_certificate {'true' if self.require_certificate else 'false'}",
                ]
        text = "\n".join(lines)

        def has(key: str) -> bool:
            return any(ln.split(" ", 1)[0] == key for ln in text.splitlines())

        defaults = []
        if not has("persistence"):
            defaults.append("persistence true")
        if not has("persistence_location"):
            defaults.append(f"persistence_location {self.data_dir}/")
        if not has("autosave_interval"):
            # Save the in-memory store every second: a SIGKILL loses at most ~1 s of
            # queued messages (the production config documents its own choice).
            defaults += ["autosave_interval 1", "autosave_on_changes false"]
        if not has("max_queued_messages"):
            # Ingest tests queue 60,000+ messages for an offline persistent session.
            defaults.append(f"max_queued_messages {self.max_queued_messages}")
        if not has("max_queued_bytes"):
            defaults.append("max_queued_bytes 0")
        if not has("log_dest"):
            defaults += [f"log_dest file {self.log_path}", "log_timestamp_format %Y-%m-%dT%H:%M:%S"]
        if not has("log_type"):
            defaults += [
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_type information",
            ]
        if not has("connection_messages"):
            defaults.append("connection_messages true")
        out = text + "\n" + "\n".join(defaults) + "\n"
        if self.extra_conf:
            out += self.extra_conf.rstrip("\n") + "\n"
        return out

    def _write_conf(self) -> None:
        self.conf_path.write_text(self.render_conf())

    # _Process hooks -----------------------------------------------------------
    def _command(self) -> list[str]:
        return [find_binary("mosquitto"), "-c", str(self.conf_path)]

    def _ports(self) -> list[int]:
        return [self.port]

    def _ready(self) -> bool:
        return _port_open(self.host, self.port)

    def _reselect_ports(self) -> None:
        self.port = free_port()
        self._write_conf()

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads the password and ACL files."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

    def __repr__(self) -> str:
        return f"Broker(url={self.url!r}, dir={str(self.base_dir)!r}, running={self.running()})"


# --------------------------------------------------------------------------- InfluxDB 1.x


_INFLUX_CONF = """\
# generated by klankkast deploy/local/services.py
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{dir}/meta"
  logging-enabled = false

[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
  wal-fsync-delay = "0s"

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = true
  check-interval = "30m"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "{host}:{http_port}"
  auth-enabled = {auth}
  log-enabled = false
  write-tracing = false
  max-body-size = 0
  flux-enabled = false

[logging]
  format = "logfmt"
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = true
  log-enabled = false
"""


class Influx(_Process):
    """A private ``influxd`` (InfluxDB 1.x) on free loopback ports.

    Talks to it through the v1 HTTP API only (``/ping``, ``/write``, ``/query``),
    the API that InfluxDB 1.x, 2.x and 3.x all serve.

    Parameters
    ----------
    base_dir
        Directory for config, data and log; a new temporary one if None.
    auth
        Enable ``[http] auth-enabled`` and create the admin ``username``/``password``
        (InfluxDB 1.x accepts the first admin user without credentials).
    """

    name = "influxd"
    start_timeout_s = 60.0

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        port: int | None = None,
        rpc_port: int | None = None,
        auth: bool = False,
        username: str = "admin",
        password: str | None = None,
    ) -> None:
        super().__init__(base_dir)
        self.port = port if port is not None else free_port()
        self.rpc_port = rpc_port if rpc_port is not None else free_port()
        while self.rpc_port == self.port:
            self.rpc_port = free_port()
        self.auth = auth
        self.username: str | None = username if auth else None
        self.password: str | None = (password or secrets.token_urlsafe(16)) if auth else None
        self.data_dir = self.base_dir / "influx"
        self.data_dir.mkdir(exist_ok=True)
        self.conf_path = self.base_dir / "influxdb.conf"
        self.log_path = self.base_dir / "influxd.log"
        self._stdout = self.log_path
        self._admin_created = False
        self._write_conf()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def render_conf(self) -> str:
        return _INFLUX_CONF.format(
            host=self.host,
            rpc_port=self.rpc_port,
            http_port=self.port,
            dir=self.data_dir,
            auth="true" if self.auth else "false",
        )

    def _write_conf(self) -> None:
        self.conf_path.write_text(self.render_conf())

    def _command(self) -> list[str]:
        return [find_binary("influxd"), "run", "-config", str(self.conf_path)]

    def _ports(self) -> list[int]:
        return [self.port, self.rpc_port]

    def _reselect_ports(self) -> None:
        self.port = free_port()
        self.rpc_port = free_port()
        while self.rpc_port == self.port:
            self.rpc_port = free_port()
        self._write_conf()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1.0) as resp:
                return bool(resp.status == 204)
        except (OSError, urllib.error.URLError):
            return False

    def _after_start(self) -> None:
        if self.auth and not self._admin_created:
            q = f"CREATE USER \"{self.username}\" WITH PASSWORD '{self.password}' WITH ALL PRIVILEGES"
            _, payload = self._request("/query", {"q": q}, auth=False)
            errors = self.errors(json.loads(payload))
            if errors:
                raise ServiceError(f"influxdb: creating the admin user failed: {'; '.join(errors)}")
            self._admin_created = True

    # HTTP helpers --------------------------------------------------------------
    def _request(
        self,
        path: str,
        params: Mapping[str, str],
        body: bytes | None = None,
        *,
        auth: bool = True,
        timeout_s: float = 60.0,
    ) -> tuple[int, bytes]:
        query = dict(params)
        headers = {}
        if auth and self.auth:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        url = f"{self.url}{path}?{urllib.parse.urlencode(query)}"
        if body is None:
            data = urllib.parse.urlencode(query).encode()
            url = f"{self.url}{path}"
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = body
            headers["Content-Type"] = "text/plain; charset=utf-8"
        req = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as err:
            raise _HttpError(path, err.code, err.read()) from None

    def write(
        self,
        lines: str | Iterable[str],
        db: str,
        rp: str | None = None,
        precision: str = "ms",
    ) -> None:
        """Write line protocol (one string with newlines, or an iterable of lines)."""
        text = lines if isinstance(lines, str) else "\n".join(lines)
        params = {"db": db, "precision": precision}
        if rp is not None:
            params["rp"] = rp
        status, payload = self._request("/write", params, text.encode())
        if status != 204:
            raise ServiceError(f"influxdb /write returned {status}: {payload!r}")

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL; the raw JSON of ``/query`` with times as epoch milliseconds.

        Statement errors stay in the JSON (``results[i]["error"]``, or a top-level
        ``"error"`` for a 4xx answer such as a parse error), as InfluxDB returns them;
        :meth:`rows` raises on them instead.
        """
        params = {"q": q, "epoch": "ms"}
        if db is not None:
            params["db"] = db
        try:
            _, payload = self._request("/query", params)
        except _HttpError as err:
            try:
                doc: dict[str, Any] = json.loads(err.payload)
            except ValueError:
                raise ServiceError(str(err)) from None
            return doc
        doc = json.loads(payload)
        return doc

    @staticmethod
    def errors(doc: Mapping[str, Any]) -> list[str]:
        """Error messages in a ``/query`` answer (empty when every statement succeeded)."""
        errors = [str(r["error"]) for r in doc.get("results", []) if "error" in r]
        if "error" in doc:
            errors.insert(0, str(doc["error"]))
        return errors

    def rows(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL and flatten every series into dicts of column -> value, plus the
        series' tags (GROUP BY) as keys; ``time`` is epoch milliseconds."""
        doc = self.query(q, db)
        errors = self.errors(doc)
        if errors:
            raise ServiceError(f"influxdb query {q!r} failed: {'; '.join(errors)}")
        out: list[dict[str, Any]] = []
        for result in doc.get("results", []):
            for series in result.get("series", []):
                columns = series.get("columns", [])
                tags = series.get("tags", {}) or {}
                for values in series.get("values", []):
                    row = dict(tags)
                    row.update(zip(columns, values, strict=False))
                    out.append(row)
        return out

    def create_database(self, name: str) -> None:
        self.rows(f'CREATE DATABASE "{name}"')

    def __repr__(self) -> str:
        return f"Influx(url={self.url!r}, dir={str(self.base_dir)!r}, running={self.running()})"


def _main() -> int:  # pragma: no cover - manual use
    """Start a broker and an InfluxDB and print their URLs until Ctrl-C."""
    with Broker.launch() as broker, Influx.launch() as influx:
        print(f"mosquitto {broker.url}  ({broker.base_dir})", flush=True)
        print(f"influxdb  {influx.url}  ({influx.base_dir})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
