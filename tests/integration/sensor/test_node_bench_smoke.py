"""Smoke run of bench/bench_node.py --quick (the benchmark itself is not part of the suite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.stack import require

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_node.py"


@pytest.mark.slow
def test_bench_node_quick_prints_both_figures() -> None:
    require("mosquitto", "pulseaudio", "paplay")
    res = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "pure core" in out and "whole node loop" in out and "ratio loop / core" in out
    assert "RSS of a running node" in out
    assert "confirm = ingest (acks)" in out and "ratio acks / broker" in out
