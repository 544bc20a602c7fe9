"""The patrol plan's windows: parsed, re-read when the file changes, a broken
replacement keeps the previous windows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from klankkast.courtyard.errors import ConfigError
from klankkast.courtyard.planfile import PlanFile, parse_windows


def _plan(path: Path, windows: list[dict[str, object]], mtime: int) -> None:
    path.write_text(json.dumps({"windows": windows, "backtest": {}}))
    os.utime(path, (mtime, mtime))


def test_windows_per_site() -> None:
    doc = {"windows": [
        {"site": "yard1", "weekday": "Friday", "weekday_iso": 5, "start": "23:00", "end": "01:00"},
        {"site": "yard2", "weekday_iso": 6, "start": "22:30", "end": "23:30"},
    ]}  # fmt: skip
    assert parse_windows(json.dumps(doc)) == {
        "yard1": [(5, "23:00", "01:00")],
        "yard2": [(6, "22:30", "23:30")],
    }
    with pytest.raises(ValueError, match=r"windows\[0\]"):
        parse_windows(
            json.dumps(
                {"windows": [{"site": "y", "weekday_iso": 8, "start": "1:00", "end": "2:00"}]}
            )
        )


def test_reread_on_change_and_keep_on_breakage(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    _plan(path, [{"site": "yard1", "weekday_iso": 5, "start": "23:00", "end": "01:00"}], 1_000)
    plan = PlanFile(path)
    assert plan() == {"yard1": [(5, "23:00", "01:00")]}
    _plan(path, [{"site": "yard1", "weekday_iso": 4, "start": "22:00", "end": "23:00"}], 2_000)
    assert plan() == {"yard1": [(4, "22:00", "23:00")]}
    path.write_text("{ broken")
    os.utime(path, (3_000, 3_000))
    assert plan() == {"yard1": [(4, "22:00", "23:00")]}
    assert PlanFile(None)() == {}


def test_a_bad_plan_at_start_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plan"):
        PlanFile(tmp_path / "missing.json")
