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
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

# deploy/local is on the import path through pyproject.toml's pytest pythonpath (and the
# benchmarks add it themselves)
from services import (  # type: ignore[import-not-found]
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

REPO = Path(__file__).resolve().parents[2]

__all__ = [
    "ACL_NODES",
    "ACL_SERVICE_USERS",
    "AclBroker",
    "Broker",
    "Influx",
    "MissingBinaryError",
    "MqttProbe",
    "PacedMic",
    "ServiceError",
    "TlsFiles",
    "UnpacedMic",
    "find_binary",
    "free_port",
    "in_ci",
    "make_tls_files",
    "reinit_sounddevice",
    "render_production_conf",
    "require",
    "require_library",
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


def require_library(name: str, package: str) -> None:
    """Like :func:`require` for a shared library (``ctypes.util.find_library(name)``)."""
    import ctypes.util

    if ctypes.util.find_library(name) is None:
        err = MissingBinaryError(package)
        err.binary = f"lib{name}"
        _missing([err])


def _missing(errors: list[MissingBinaryError]) -> NoReturn:
    packages = " ".join(dict.fromkeys(e.package for e in errors))
    names = ", ".join(e.binary for e in errors)
    skip_or_fail(f"{names} not installed; install with: sudo apt-get install -y {packages}")


def skip_or_fail(reason: str) -> NoReturn:
    """Fail under CI (a missing service is a failure there), skip otherwise."""
    import pytest

    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- ACL broker

#: Service users of the production ACL (``deploy/mosquitto/acl``).
ACL_SERVICE_USERS = ("ingest", "alerts", "dispatch")
#: Nodes the ACL fixture adds with ``deploy/mosquitto/add-node.sh`` as (site, node).
ACL_NODES = (("yard1", "n1"), ("yard1", "n2"))


_DROP_KEYS = {
    "listener", "port", "protocol", "cafile", "capath", "certfile", "keyfile", "tls_version",
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
    overrides: dict[str, str] | None = None,
) -> str:
    """Rewrite ``deploy/mosquitto/mosquitto.conf`` for a private test instance.

    Every setting is kept except the machine-specific ones: the listener becomes
    ``listener PORT 127.0.0.1`` (with the throwaway CA's files if ``tls``, plain
    otherwise), and the password file, ACL file, persistence directory and log go
    to ``directory``. ``overrides`` replaces settings (e.g. a shorter
    ``autosave_interval`` for tests that kill the broker).
    """
    overrides = dict(overrides or {})
    kept = []
    for line in text.splitlines():
        key = (
            line.strip().split(" ", 1)[0]
            if line.strip() and not line.lstrip().startswith("#")
            else ""
        )
        if key in _DROP_KEYS:
            continue
        if key in overrides:
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
    extra += [f"{key} {value}" for key, value in overrides.items()]
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


def start_acl_broker(
    base_dir: Path | None = None,
    *,
    tls: TlsFiles | None = None,
    autosave_interval_s: int | None = 1,
) -> AclBroker:
    """Start a broker from the production ``deploy/mosquitto/mosquitto.conf`` with its
    ACL and users ingest, alerts, dispatch, yard1-n1, yard1-n2 (plain listener unless
    ``tls``; ``autosave_interval 1`` instead of production's 10 s unless
    ``autosave_interval_s`` says otherwise: None keeps production's)."""
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
                # Tests kill the broker: save every second as the plain fixture does.
                overrides={}
                if autosave_interval_s is None
                else {"autosave_interval": str(autosave_interval_s)},
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
    broker.start_new()
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


def _as_frames(signal: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) float array -> (n, channels) float32."""
    arr = np.asarray(signal)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(
            f"signal must have shape (n,) or (n, channels) with n > 0; got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"signal must be floating point (full scale 1.0); got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype="<f4")


class UnpacedMic:
    """An ALSA PCM that PortAudio captures a given signal from, sample for sample.

    The chain is ``klankmic`` (``plug``, so any client format/rate works) →
    ``klankfile`` (the ALSA ``file`` plugin; its ``infile`` feeds capture with raw
    FLOAT_LE frames at ``fs_hz``) → ``klanknull`` (``null``: no clock). A stream
    opened at ``fs_hz`` with dtype ``float32`` receives the signal (rounded to
    float32) exactly; ``int16`` goes through alsa-lib's conversion. Every stream
    opened reads the signal from its start; after the signal come ``tail_s`` seconds
    of zeros, and after that stale buffer contents, so read at most
    ``len(signal)/fs_hz + tail_s`` seconds per stream. There is no clock: samples
    arrive as fast as they are read, so use it for level checks only.

    ``.device`` is the PCM name for sounddevice and ``[audio] device``; ``.env`` the
    environment for a subprocess (``ALSA_CONFIG_PATH`` with our file after
    ``/usr/share/alsa/alsa.conf``). In-process, use ``with mic.activated():`` (or
    :func:`reinit_sounddevice`) because PortAudio reads the ALSA config at start-up.
    """

    device = "klankmic"

    def __init__(
        self, directory: Path, signal: np.ndarray, fs_hz: int, *, tail_s: float = 5.0
    ) -> None:
        if int(fs_hz) != fs_hz or fs_hz <= 0:
            raise ValueError(f"fs_hz must be a positive integer; got {fs_hz}")
        frames = _as_frames(signal)
        self.fs_hz = int(fs_hz)
        self.channels = int(frames.shape[1])
        self.signal = frames if frames.shape[1] > 1 else frames[:, 0]
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.raw_path = directory / "signal.f32le"
        tail = np.zeros((round(tail_s * self.fs_hz), self.channels), dtype="<f4")
        np.concatenate([frames, tail]).tofile(self.raw_path)
        self.conf_path = directory / "asound-klankmic.conf"
        self.conf_path.write_text(
            "# klankkast unpaced test microphone (tests/support/stack.py)\n"
            "pcm.klanknull { type null }\n"
            "pcm.klankfile {\n"
            "    type file\n"
            '    slave.pcm "klanknull"\n'
            '    file "/dev/null"\n'
            f'    infile "{self.raw_path}"\n'
            '    format "raw"\n'
            "}\n"
            "pcm.klankmic {\n"
            "    type plug\n"
            "    slave {\n"
            '        pcm "klankfile"\n'
            "        format FLOAT_LE\n"
            f"        rate {self.fs_hz}\n"
            f"        channels {self.channels}\n"
            "    }\n"
            '    hint { show on description "klankkast unpaced test microphone" }\n'
            "}\n"
        )
        self.alsa_config_path = f"/usr/share/alsa/alsa.conf:{self.conf_path}"
        self.env = dict(os.environ)
        self.env["ALSA_CONFIG_PATH"] = self.alsa_config_path

    def activated(self) -> Any:
        """Context manager: this process's PortAudio sees the mic within the block."""
        return sounddevice_env({"ALSA_CONFIG_PATH": self.alsa_config_path})

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"UnpacedMic(device={self.device!r}, fs_hz={self.fs_hz}, n={len(self.signal)})"


def _write_wav_int32(path: Path, signal: np.ndarray, fs_hz: int) -> None:
    """32-bit PCM WAV (24 significant bits survive float32 sources exactly)."""
    frames = _as_frames(signal).astype(np.float64)
    ints = np.clip(np.round(frames * 2147483647.0), -2147483648, 2147483647).astype("<i4")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(4)
        w.setframerate(int(fs_hz))
        w.writeframes(ints.tobytes())


class PacedMic:
    """A private PulseAudio daemon with a null sink ``klank``; captured through the
    ALSA ``pulse`` device from ``klank.monitor`` it delivers audio in real time.

    ``.device`` is ``"pulse"``; ``.env`` (``PULSE_SERVER``, ``PULSE_SOURCE``,
    ``PULSE_SINK``, ``ALSA_CONFIG_PATH``) is for subprocesses; in-process use
    ``with mic.activated():``. ``.play(signal | path, fs_hz)`` starts ``paplay`` into
    the sink and returns the process; silence is captured when nothing plays. The
    sink runs at ``rate_hz`` (float32, ``channels``); other rates are resampled by
    PulseAudio, so levels are close but not sample-exact.
    """

    device = "pulse"

    def __init__(self, directory: Path, *, rate_hz: int = 48000, channels: int = 1) -> None:
        self.dir = directory
        self.rate_hz = rate_hz
        self.channels = channels
        self.socket = directory / "native"
        self.log_path = directory / "pulseaudio.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._players: list[subprocess.Popen[bytes]] = []
        self._n_played = 0
        run = directory / "run"
        home = directory / "home"
        for d in (run, home):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
        base = dict(os.environ)
        for key in (
            "PULSE_SERVER",
            "PULSE_SOURCE",
            "PULSE_SINK",
            "PULSE_COOKIE",
            "DISPLAY",
            "DBUS_SESSION_BUS_ADDRESS",
        ):
            base.pop(key, None)
        base.update(
            XDG_RUNTIME_DIR=str(run),
            HOME=str(home),
            PULSE_RUNTIME_PATH=str(run / "pulse"),
            PULSE_STATE_PATH=str(home / "state"),
        )
        self._daemon_env = base
        self.env = dict(base)
        self.env.update(
            PULSE_SERVER=f"unix:{self.socket}",
            PULSE_SOURCE="klank.monitor",
            PULSE_SINK="klank",
            ALSA_CONFIG_PATH="/usr/share/alsa/alsa.conf",
        )

    def start(self, timeout_s: float = 20.0) -> None:
        pulseaudio = find_binary("pulseaudio")
        pactl = find_binary("pactl")
        find_binary("paplay")
        cmd = [
            pulseaudio, "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
            "--use-pid-file=false", "--disable-shm=yes", "--realtime=false", "--high-priority=false",
            "--system=false", "--log-level=notice", f"--log-target=file:{self.log_path}",
            "-L", f"module-null-sink sink_name=klank rate={self.rate_hz} format=float32le "
                  f"channels={self.channels} sink_properties=device.description=klankkast-test",
            "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
        ]  # fmt: skip
        with open(self.dir / "pulseaudio.stdout", "ab") as out:
            self._proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self._daemon_env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self.socket.exists():
                res = subprocess.run(
                    [pactl, "info"], env=self.env, capture_output=True, text=True, timeout=10
                )
                if res.returncode == 0:
                    subprocess.run([pactl, "set-default-source", "klank.monitor"], env=self.env,
                                   capture_output=True, timeout=10)  # fmt: skip
                    subprocess.run([pactl, "set-default-sink", "klank"], env=self.env,
                                   capture_output=True, timeout=10)  # fmt: skip
                    return
            time.sleep(0.05)
        log = self.log_text()
        self.close()
        raise ServiceError(f"pulseaudio failed to start; log:\n{log[-4000:]}")

    def log_text(self) -> str:
        parts = []
        for p in (self.log_path, self.dir / "pulseaudio.stdout"):
            if p.exists():
                parts.append(p.read_text(errors="replace"))
        return "\n".join(parts)

    def activated(self) -> Any:
        """Context manager: this process's PortAudio uses the private PulseAudio."""
        return sounddevice_env(self.env)

    def play(
        self, signal: np.ndarray | Path | str, fs_hz: int | None = None
    ) -> subprocess.Popen[bytes]:
        """Play ``signal`` (array, full scale 1.0, at ``fs_hz``) or a sound file into the
        null sink with ``paplay``; returns the running ``paplay`` process."""
        if isinstance(signal, (str, Path)):
            path = Path(signal)
        else:
            if fs_hz is None:
                raise ValueError("fs_hz is required when playing an array")
            self._n_played += 1
            path = self.dir / f"play-{self._n_played}.wav"
            _write_wav_int32(path, signal, fs_hz)
        proc = subprocess.Popen(
            [find_binary("paplay"), "--device=klank", str(path)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._players.append(proc)
        return proc

    def stop_playing(self) -> None:
        """Stop every ``paplay`` started by :meth:`play`."""
        for proc in self._players:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._players:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stderr is not None:
                proc.stderr.close()
        self._players.clear()

    def close(self) -> None:
        self.stop_playing()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"PacedMic(device={self.device!r}, server={self.env['PULSE_SERVER']!r})"


def make_unpaced_mic_factory(
    base_dir: Path,
) -> tuple[Callable[..., UnpacedMic], Callable[[], None]]:
    """(factory, cleanup) for ``test_mic_unpaced``."""
    mics: list[UnpacedMic] = []

    def factory(signal: np.ndarray, fs_hz: int, *, tail_s: float = 5.0) -> UnpacedMic:
        mic = UnpacedMic(
            Path(tempfile.mkdtemp(prefix="mic-", dir=base_dir)), signal, fs_hz, tail_s=tail_s
        )
        mics.append(mic)
        return mic

    def cleanup() -> None:
        for mic in mics:
            mic.close()

    return factory, cleanup


def start_paced_mic(*, rate_hz: int = 48000, channels: int = 1) -> PacedMic:
    """Start a private PulseAudio test microphone in a new temporary directory."""
    # Unix socket paths are limited to 108 bytes: keep the directory short.
    mic = PacedMic(Path(tempfile.mkdtemp(prefix="kk-pa-")), rate_hz=rate_hz, channels=channels)
    mic.start()
    return mic


# --------------------------------------------------------------------------- MQTT probe


class MqttProbe:
    """A small synchronous MQTT v5 client (paho) for tests: connect, subscribe,
    publish QoS 1 and read PUBACK / SUBACK / CONNACK reason codes.

    ``messages`` is a queue of received ``MQTTMessage``. Raises ``ConnectionRefusedError``
    carrying the CONNACK reason code when the broker refuses the connection.
    """

    def __init__(
        self,
        broker: Any,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool | None = None,
        client_cert: bool = False,
        clean_start: bool = True,
        session_expiry_s: int | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        import queue
        import ssl

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.timeout_s = timeout_s
        self.messages: queue.Queue[Any] = queue.Queue()
        self._acks: queue.Queue[tuple[int, int]] = queue.Queue()
        self._connacks: queue.Queue[int] = queue.Queue()
        self._subacks: queue.Queue[list[int]] = queue.Queue()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            c.username_pw_set(username, password)
        use_tls = broker.url.startswith("mqtts://") if tls is None else tls
        if use_tls:
            c.tls_set(
                ca_certs=str(broker.ca_file),
                certfile=str(broker.client_cert) if client_cert else None,
                keyfile=str(broker.client_key) if client_cert else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        c.on_connect = lambda _c, _u, _f, rc, _p: self._connacks.put(rc.value)
        c.on_message = lambda _c, _u, msg: self.messages.put(msg)
        c.on_publish = lambda _c, _u, mid, rc, _p: self._acks.put((mid, rc.value))
        c.on_subscribe = lambda _c, _u, _mid, rcs, _p: self._subacks.put([r.value for r in rcs])
        props = None
        if session_expiry_s is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry_s
        self.client = c
        c.connect(broker.host, broker.port, keepalive=30, clean_start=clean_start, properties=props)
        c.loop_start()
        try:
            rc = self._connacks.get(timeout=timeout_s)
        except queue.Empty:
            self.close()
            raise TimeoutError(f"no CONNACK from {broker.url} within {timeout_s} s") from None
        if rc != 0:
            self.close()
            raise ConnectionRefusedError(rc, f"CONNACK reason code {rc:#04x}")

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        """Subscribe and return the SUBACK reason codes (granted QoS, or >= 0x80)."""
        self.client.subscribe(topic, qos=qos)
        return self._subacks.get(timeout=self.timeout_s)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code: 0x00 success, 0x10 no
        matching subscribers (also a success), 0x87 not authorized."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return 0
        mid, rc = self._acks.get(timeout=self.timeout_s)
        if mid != info.mid:
            raise AssertionError(f"PUBACK for mid {mid}, expected {info.mid}")
        return rc

    def drain(self, wait_s: float = 0.5) -> list[Any]:
        """Messages that arrive within ``wait_s`` (for asserting that nothing came)."""
        import queue

        out = []
        deadline = time.monotonic() + wait_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
