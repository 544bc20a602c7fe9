"""The demo's child processes: the klankkast programs it runs, started and stopped in
order. The servers (Mosquitto, InfluxDB) are the stack runner's (``services.py``,
shared with the tests' fixtures); this module only keeps them for the ordered stop.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from services import spawn

from ._common import DemoError

__all__ = ["Children", "check_exit", "has_alerts", "has_courtyard", "run_step", "tool"]

_MODULES = {
    "klankkast-sensor": "klankkast.sensor.cli",
    "klankkast-ingest": "klankkast.ingest.cli",
    "klankkast-analyze": "klankkast.analysis.cli",
    "klankkast-courtyard": "klankkast.courtyard.cli",
}


class Children:
    """Child processes of the demo, stopped in reverse order (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.services: list[Any] = []
        self.pools: list[concurrent.futures.ProcessPoolExecutor] = []

    def spawn(
        self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        proc = spawn(cmd, log, env=env)
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for pool in self.pools:
            for worker in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    worker.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
        self.pools.clear()
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()
        for svc in reversed(self.services):
            with contextlib.suppress(Exception):
                svc.close()
        self.services.clear()


def tool(name: str) -> list[str]:
    """The command of a klankkast console script of this interpreter's environment."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", _MODULES[name]]


def _installed(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except ModuleNotFoundError:
        return False


def has_alerts() -> bool:
    return _installed("klankkast.alerts.service")


def has_courtyard() -> bool:
    """klankkast-courtyard and its web stack (the central extra) are installed."""
    return _installed("klankkast.courtyard.cli", "starlette", "uvicorn")


def check_exit(name: str, returncode: int, log: Path) -> None:
    """Raise DemoError naming ``name``, its exit status and the end of its log."""
    if returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise DemoError(f"{name} failed with exit status {returncode}; see {log}:\n{tail}")


def run_step(name: str, cmd: list[str], log: Path, timeout_s: float = 600.0) -> None:
    """Run one CLI to completion, its output in ``log``; raise DemoError on failure.

    The CLI runs in a session of its own and is killed when the demo stops waiting for
    it (a timeout, or Ctrl-C)."""
    proc = spawn(cmd, log)
    try:
        returncode = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DemoError(f"{name} took longer than {timeout_s:.0f} s; see {log}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check_exit(name, returncode, log)
