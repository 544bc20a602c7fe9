"""The metrology benchmark runs end to end (``--quick``: seconds of audio; figures not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_core.py"


def test_bench_core_quick_prints_all_figures() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "core_realtime_factor",
        "peer_realtime_factor",
        "core_over_peer",
        "replay_peak_rss_mb",
    ):
        assert name in proc.stdout
