"""Console-script entry points: each program, or one line naming the extra it needs.

``pip install klankkast`` without extras installs the code but none of numpy, scipy,
paho-mqtt, pandas, ...: a program started there stops with exit status 1 and one
line saying which extra to install, instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Final

#: distribution-level packages that come only with an extra (import names)
_THIRD_PARTY: Final = frozenset(
    {"numpy", "scipy", "sounddevice", "_cffi_backend", "cffi", "paho", "pandas", "matplotlib",
     "icalendar", "dateutil", "pytz", "tzdata", "starlette", "jinja2", "markupsafe", "uvicorn",
     "httptools", "segno", "anyio", "h11", "click"}
)  # fmt: skip


def _run(script: str, module: str, extra: str) -> int:
    try:
        main: Callable[[], int] = importlib.import_module(module).main
        return main()
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if top not in _THIRD_PARTY:
            raise
        print(
            f"{script}: the Python package {top!r} is missing; install this program with its "
            f"extra: pip install 'klankkast[{extra}]'",
            file=sys.stderr,
        )
        return 1


def sensor() -> int:
    """``klankkast-sensor``."""
    return _run("klankkast-sensor", "klankkast.sensor.cli", "sensor")


def ingest() -> int:
    """``klankkast-ingest``."""
    return _run("klankkast-ingest", "klankkast.ingest.cli", "central")


def analyze() -> int:
    """``klankkast-analyze``."""
    return _run("klankkast-analyze", "klankkast.analysis.cli", "central")


def alerts() -> int:
    """``klankkast-alerts``."""
    return _run("klankkast-alerts", "klankkast.alerts.cli", "central")


def courtyard() -> int:
    """``klankkast-courtyard``."""
    return _run("klankkast-courtyard", "klankkast.courtyard.cli", "central")
