"""Fixtures for the real services: Mosquitto, InfluxDB 1.x and PortAudio test microphones.

Every server runs as a child process on a free loopback port in its own temporary
directory, and is stopped and removed after the test. A missing program fails the
test with the exact ``apt-get install`` line when ``CI`` is set (and skips with it
otherwise); a server that fails to start fails the test with its log.

Fixture API (implementation in ``tests/support/stack.py`` and ``deploy/local/services.py``):

``mosquitto``          plain broker, anonymous, persistence on (autosave 1 s)
``mosquitto_acl``      production config + password file + ACL; ``.credentials(user)``
``mosquitto_production``  the same with production's persistence timing too (autosave 10 s)
``mosquitto_tls``      TLS listener with a throwaway CA; ``.ca_file``, ``.client_cert``, ``.client_key``
``mosquitto_factory``  ``(**opts) -> Broker`` for extra/custom brokers
``influxdb``           InfluxDB 1.x; ``.write``, ``.query``, ``.rows``, ``.create_database``
``influxdb_auth``      the same with ``auth-enabled``; ``.username``, ``.password``
``test_mic_unpaced``   ``(signal, fs_hz) -> UnpacedMic`` (ALSA file plugin: exact, unclocked)
``test_mic_paced``     private PulseAudio null sink captured through ALSA ``pulse`` (real time)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.stack import (
    Broker,
    Influx,
    MissingBinaryError,
    PacedMic,
    ServiceError,
    UnpacedMic,
    make_tls_files,
    make_unpaced_mic_factory,
    require,
    require_library,
    skip_or_fail,
    start_acl_broker,
    start_paced_mic,
)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report so fixtures can show server logs on failure."""
    rep = yield
    setattr(item, f"_klankkast_rep_{rep.when}", rep)
    return rep


def _failed(request: pytest.FixtureRequest) -> bool:
    rep = getattr(request.node, "_klankkast_rep_call", None)
    return bool(rep is not None and rep.failed)


def _start(factory: Callable[[], Any]) -> Any:
    """Start a service; missing program -> fail (CI) / skip; start failure -> fail with log."""
    try:
        return factory()
    except MissingBinaryError as err:
        skip_or_fail(str(err))
    except ServiceError as err:
        pytest.fail(str(err), pytrace=False)


def _finish(request: pytest.FixtureRequest, service: Any) -> None:
    if _failed(request):
        sys.stderr.write(f"\n----- log of {service!r} -----\n{service.log_text()[-4000:]}\n")
    service.close()


@pytest.fixture
def mosquitto(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A real mosquitto on a free loopback port: anonymous, persistence on."""
    require("mosquitto")
    broker = _start(Broker.launch)
    yield broker
    _finish(request, broker)


@pytest.fixture
def mosquitto_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Broker]]:
    """``factory(**opts)`` starts another broker (options of ``services.Broker``, e.g.
    ``extra_conf="..."``, ``allow_anonymous``, ``port``, ``tls``); all stop after the test."""
    require("mosquitto")
    started: list[Broker] = []

    def factory(**opts: Any) -> Broker:
        broker = _start(lambda: Broker.launch(**opts))
        started.append(broker)
        return broker

    yield factory
    for broker in started:
        _finish(request, broker)


@pytest.fixture
def mosquitto_acl(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """The production config, password file and ACL of ``deploy/mosquitto/``, on a
    plain loopback listener; users ingest, alerts, dispatch, yard1-n1, yard1-n2."""
    require("mosquitto", "mosquitto_passwd")
    broker = _start(start_acl_broker)
    yield broker
    _finish(request, broker)


@pytest.fixture
def mosquitto_production(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """``mosquitto_acl`` with every production setting, persistence timing included
    (``autosave_interval 10``): a SIGKILL loses what the broker acknowledged since
    its last save, as in production."""
    require("mosquitto", "mosquitto_passwd")
    broker = _start(lambda: start_acl_broker(autosave_interval_s=None))
    yield broker
    _finish(request, broker)


@pytest.fixture
def mosquitto_tls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    """A broker with a TLS listener (anonymous; client certificates optional) and a
    throwaway CA: ``.url`` is ``mqtts://127.0.0.1:PORT``."""
    require("mosquitto", "openssl")
    tls = _start(lambda: make_tls_files(tmp_path_factory.mktemp("tls")))
    broker = _start(lambda: Broker.launch(tls=tls))
    yield broker
    _finish(request, broker)


@pytest.fixture
def influxdb(request: pytest.FixtureRequest) -> Iterator[Influx]:
    """A real influxd (1.x) on free loopback ports."""
    require("influxd")
    influx = _start(Influx.launch)
    yield influx
    _finish(request, influx)


@pytest.fixture
def influxdb_auth(request: pytest.FixtureRequest) -> Iterator[Influx]:
    """influxd with ``auth-enabled``; admin ``.username`` / ``.password``."""
    require("influxd")
    influx = _start(lambda: Influx.launch(auth=True))
    yield influx
    _finish(request, influx)


@pytest.fixture
def test_mic_unpaced(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., UnpacedMic]]:
    """``factory(signal, fs_hz, *, tail_s=5.0) -> UnpacedMic``: an ALSA PCM (``.device``,
    environment ``.env``) from which PortAudio captures ``signal`` exactly, unclocked."""
    require("arecord")  # alsa-utils: alsa-lib with its config tree and plugins
    require_library("portaudio", "libportaudio2")
    factory, cleanup = make_unpaced_mic_factory(tmp_path_factory.mktemp("mic"))
    yield factory
    cleanup()


@pytest.fixture
def test_mic_paced(request: pytest.FixtureRequest) -> Iterator[PacedMic]:
    """A private PulseAudio null sink captured through ALSA ``pulse`` in real time:
    ``.device``, ``.env``, ``.play(signal, fs_hz)``, ``.stop_playing()``."""
    require("pulseaudio", "pactl", "paplay")
    require_library("portaudio", "libportaudio2")
    if not any(Path("/usr/lib").glob("**/alsa-lib/libasound_module_pcm_pulse.so")):
        skip_or_fail(
            "ALSA pulse plugin missing; install with: sudo apt-get install -y libasound2-plugins"
        )
    mic = _start(start_paced_mic)
    yield mic
    if _failed(request):
        sys.stderr.write(f"\n----- log of {mic!r} -----\n{mic.log_text()[-4000:]}\n")
    mic.close()
