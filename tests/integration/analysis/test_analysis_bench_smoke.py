"""The analysis benchmark still runs (tiny ``--quick`` scenario), so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_bench_analysis_quick():
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_analysis.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "full analysis:" in r.stdout and "peak memory" in r.stdout
    assert "identical episodes: True" in r.stdout


def test_bench_detection_quick():
    """The detection bench runs on reduced scenarios and prints both rule sets."""
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_detection.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    for text in ("rain/wind false episodes per week", "legacy/new", "1-s resolution", "(default)"):
        assert text in r.stdout
    assert "targets met (all classes but rain/wind, 1-min and 1-s): True" in r.stdout
