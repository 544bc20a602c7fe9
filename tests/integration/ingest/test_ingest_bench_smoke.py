"""The ingest benchmark runs end to end (``--quick``: 2000 frames) and reports both rates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_bench_ingest_quick() -> None:
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_ingest.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    assert figures["frames"] == 2000
    assert figures["bare_fps"] > 0 and figures["ingest_fps"] > 0 and figures["ratio"] > 0
    # acks on and off, side by side (issue 18)
    assert figures["ingest_acks_fps"] > 0 and figures["ratio_acks"] > 0
    assert "ratio acks on/off" in res.stdout
