"""What every step of the demo shares: where things are, its options, progress lines,
its error."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DB = "klankkast"
DASHBOARD_UIDS = ("courtyard-now", "nuisance-vs-reports", "fleet-health")
AUDIO_FS_HZ = 16000
AUDIO_OFFSET_DB = 110.0  # calibration of the demo node: mean square 1.0 reads 110 dB
NODE_ID = "n"  # virtual node i is "n-00i", as klankkast-sensor simulate names them


class Progress:
    """Progress lines with the elapsed time: ``[demo  12.3 s] ...``."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, text: str) -> None:
        print(f"[demo {self.elapsed():6.1f} s] {text}", flush=True)


say = Progress()


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and where its log is."""


@dataclass
class Options:
    """The demo's options, as :func:`demo.cli.parse_args` makes them from the command line."""

    out: Path
    weeks: int
    short: bool
    audio_s: float
    seconds_s: float
    sites: tuple[tuple[str, str, int], ...]
    seed: int
    keep: bool
    capacity: int
    plan_minutes: int
    #: the demo's "now" (UTC ms): the end of the simulated history
    now_ms: int
    #: where a Grafana on this data would answer (links are printed only when one does)
    grafana: str = "http://localhost:3000"
