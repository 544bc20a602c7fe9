"""The courtyard benchmark runs end to end (``--quick``) and reports what it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_bench_courtyard_quick() -> None:
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_courtyard.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    assert figures["errors"] == 0 and figures["burst_errors"] == 0
    assert figures["page_n"] > 0 and figures["peer_n"] > 0 and figures["mark_n"] > 0
    # every posted mark came from its own household, so every one was written
    assert figures["marks_written"] == figures["mark_n"]
    assert figures["page_p95_ms"] > 0 and figures["ratio_p95"] > 0
    assert "p95" in res.stdout and "ratio page/peer" in res.stdout
