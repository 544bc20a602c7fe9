"""The demo's planted residents' marks (deploy/local/demo/residents.py): followers mark while
planted nuisance is on, the odd household marks when nothing is going on."""

from __future__ import annotations

import tomllib
from pathlib import Path

from demo.residents import courtyard_section, plant_marks, with_plan

REPO = Path(__file__).resolve().parents[3]

H = 3_600_000
WEEK = 7 * 24 * H


def test_followers_mark_during_episodes_and_the_odd_household_away_from_them() -> None:
    episodes = [("a", "party", 10 * H, 14 * H), ("a", "music", 200 * H, 201 * H)]
    episodes += [("b", "voices", 50 * H, 50 * H + 5 * 60_000)]  # too short to mark
    marks = plant_marks(episodes, {"a": 4, "b": 4}, 0, 2 * WEEK, seed=1)
    follow = [m for m in marks if m.follows_episode]
    other = [m for m in marks if not m.follows_episode]
    assert follow and other
    for m in follow:
        assert m.site == "a" and m.household_index >= 1
        assert any(m.t_ms >= a + 5 * 60_000 and m.t_ms < b for _s, _k, a, b in episodes[:2])
        assert m.kind in ("music", "voices") and 3 <= (m.severity or 0) <= 5
    for m in other:
        assert m.household_index == 0
        assert all(abs(m.t_ms - a) > 3 * H and abs(m.t_ms - b) > 3 * H
                   for s, _k, a, b in episodes if s == m.site)  # fmt: skip
    # about two a week per courtyard
    assert len(other) == 2 * 2 * 2


def test_courtyard_section_is_valid_toml_with_and_without_plan(tmp_path: Path) -> None:
    text = "[mqtt]\nurl = 'x'\n" + courtyard_section(
        {"a": "A yard"}, tmp_path, "http://127.0.0.1:1", "db", 8123
    )
    doc = tomllib.loads(text)
    assert doc["courtyard"]["sites"] == {"a": "A yard"}
    assert "plan" not in doc["courtyard"]
    planned = tomllib.loads(with_plan(text, tmp_path / "plan.json"))
    assert planned["courtyard"]["plan"] == str(tmp_path / "plan.json")
    assert (tmp_path / "courtyard.key").stat().st_mode & 0o777 == 0o600
