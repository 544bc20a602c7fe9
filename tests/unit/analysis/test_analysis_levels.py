"""Level loading: energy-correct combination of nodes and time, CSV reading, rules files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from klankkast.analysis.errors import ConfigError, LevelSourceError
from klankkast.analysis.levels import (
    build_grids,
    combine_db,
    parse_influx_url,
    read_levels_csv,
)
from klankkast.analysis.rules import legacy_rules, load_rules
from klankkast.analysis.timeutil import parse_time_ms

T0 = parse_time_ms("2026-06-01T00:00:00Z")


def _df(rows):
    return pd.DataFrame(rows, columns=["t_ms", "site", "node", "LAeq", "LCeq", "LAFmax", "LA90"])


def test_two_co_located_nodes_at_60_combine_to_60():
    """Issue 15: nodes of one courtyard hear the same field, so the site level is their
    energy mean, 60.0 dB (the earlier requirement of 63.0 dB, the energy sum
    10·log10(2·10^6) = 63.01, is kept only for the legacy rules)."""
    assert combine_db([60.0, 60.0]) == pytest.approx(60.0)
    assert combine_db([50.0, 60.0]) == pytest.approx(10 * math.log10((1e5 + 1e6) / 2))
    assert combine_db([60.0, 60.0], "sum") == pytest.approx(10 * math.log10(2e6))
    df = _df(
        [
            (T0, "yard1", "n1", 60.0, 66.0, 70.0, 50.0),
            (T0, "yard1", "n2", 60.0, 66.0, 75.0, 50.0),
        ]
    )
    (g,) = build_grids(df, step_s=60)
    assert g.laeq_db[0] == pytest.approx(60.0)
    assert g.lceq_db[0] == pytest.approx(66.0)
    assert g.lafmax_db[0] == 75.0  # maximum, not a sum
    assert g.nodes is not None and g.nodes[0] == 2
    (g,) = build_grids(df, step_s=60, node_combine="sum")
    assert g.laeq_db[0] == pytest.approx(10 * math.log10(2e6))


def test_half_hour_at_40_and_half_hour_at_70_is_67_not_55():
    """Minute rows put on a 1-hour grid: 10·log10((30·10^4 + 30·10^7)/60) = 67.0 dB."""
    rows = [(T0 + i * 60_000, "yard1", "n1", 40.0 if i < 30 else 70.0, np.nan, 50.0, np.nan)
            for i in range(60)]  # fmt: skip
    (g,) = build_grids(_df(rows), step_s=3600)
    assert len(g) == 1
    assert g.laeq_db[0] == pytest.approx(10 * math.log10((1e4 + 1e7) / 2))
    assert round(g.laeq_db[0], 1) == 67.0
    assert math.isnan(g.lceq_db[0])


def test_grid_fills_missing_steps_and_shares_origin():
    df = _df(
        [
            (T0, "a", "n1", 50.0, 55.0, 60.0, 45.0),
            (T0 + 180_000, "a", "n1", 52.0, 55.0, 60.0, 45.0),
            (T0 + 60_000, "b", "n1", 40.0, 45.0, 50.0, 35.0),
            (T0 + 120_000, "b", "n1", 41.0, 45.0, 50.0, 35.0),
        ]
    )
    ga, gb = build_grids(df)
    assert ga.step_s == 60 and gb.step_s == 60
    assert ga.t0_ms == gb.t0_ms == T0
    assert np.isnan(ga.laeq_db[1]) and np.isnan(ga.laeq_db[2])
    assert ga.laeq_db[3] == 52.0
    assert np.isnan(gb.laeq_db[0])


def test_read_csv_iso_and_ms_times(tmp_path):
    p = tmp_path / "levels.csv"
    p.write_text(
        "time,site,node,LAeq,LCeq,LAFmax,LA90,LZeq\n"
        f"{T0},yard1,n1,50.5,56,61,44,70\n"
        "2026-06-01T02:01:00+02:00,yard1,n1,51.5,,,,\n"
        "2026-06-01T02:02,yard1,n1,52.5,,,,\n"
    )
    df = read_levels_csv(p)
    assert df["t_ms"].tolist() == [T0, T0 + 60_000, T0 + 120_000]
    assert df["LAeq"].tolist() == [50.5, 51.5, 52.5]
    assert np.isnan(df["LCeq"].iloc[1])


def test_read_csv_errors_name_file_line_column(tmp_path):
    p = tmp_path / "levels.csv"
    p.write_text("time,site,LAeq\n1,yard1,50\n")
    with pytest.raises(LevelSourceError, match=r"levels.csv:1: missing column\(s\) node"):
        read_levels_csv(p)
    p.write_text("time,site,node,LAeq\n1780000000000,yard1,n1,50\n1780000060000,yard1,n1,loud\n")
    with pytest.raises(LevelSourceError, match=r"levels\.csv:3: column LAeq"):
        read_levels_csv(p)
    p.write_text("time,site,node,LAeq\n2026-03-29T02:30,yard1,n1,50\n")
    with pytest.raises(LevelSourceError, match=r"levels\.csv:2: column time"):
        read_levels_csv(p)


def test_influx_url_form():
    src = parse_influx_url(
        "influxdb+http://reader:s%40cret@127.0.0.1:8086/klankkast?measurement=second"
    )
    assert (src.url, src.database, src.measurement) == (
        "http://127.0.0.1:8086",
        "klankkast",
        "second",
    )
    assert (src.username, src.password) == ("reader", "s@cret")
    with pytest.raises(LevelSourceError):
        parse_influx_url("influxdb+http://127.0.0.1:8086/")


def test_rules_defaults_documented_and_overrides(tmp_path):
    r = load_rules()
    assert r.limits_db() == (50.0, 45.0, 40.0)
    assert r.emergences_db() == (5.0, 5.0, 3.0)
    assert (r.day_start_h, r.evening_start_h, r.night_start_h) == (7, 19, 23)
    assert r.window_s == 300 and r.background_window_s == 600
    assert (r.node_combine, r.absolute_level, r.residual) == ("mean", "specific", "quiet_laeq")
    old = legacy_rules()
    assert (old.node_combine, old.absolute_level, old.residual) == ("sum", "total", "la90")
    assert old.background_window_s == 3600 and old.background_quantile_la90 == 0.5
    p = tmp_path / "rules.toml"
    p.write_text("[absolute]\nnight_db = 42\n[emergence]\nduration_correction = true\n")
    r = load_rules(p)
    assert r.limit_night_db == 42.0 and r.limit_day_db == 50.0 and r.duration_correction


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[absolute]\nnight_db = 'loud'\n", "absolute.night_db"),
        ("[absolute]\nnight_db = 400\n", "absolute.night_db"),
        ("[episodes]\nnode_combine = 'max'\n", "episodes.node_combine"),
        ("[absolute]\nlevel = 'ambient'\n", "absolute.level"),
        ("[emergence]\nresidual = 'median'\n", "emergence.residual"),
        ("[emergence]\nresidual_quantile = 0\n", "emergence.residual_quantile"),
        ("[absolute]\nnigth_db = 40\n", "absolute.nigth_db"),
        ("[periods]\ntimezone = 'Mars/Olympus'\n", "periods.timezone"),
    ],
)
def test_rules_errors_name_key_value_and_allowed(tmp_path, text, key):
    p = tmp_path / "rules.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_rules(p)
    msg = str(err.value)
    assert key in msg and str(p) in msg and "\n" not in msg


def test_read_csv_offset_times_vectorised_path(tmp_path):
    """Times that all carry offsets take the vectorised parser; same instants."""
    p = tmp_path / "levels.csv"
    p.write_text(
        "time,site,node,LAeq\n"
        "2026-06-01T02:00:00+02:00,yard1,n1,50\n"
        "2026-06-01T00:01:00Z,yard1,n1,51\n"
        "2026-06-01T00:02:00.000+00:00,yard1,n1,52\n"
    )
    assert read_levels_csv(p)["t_ms"].tolist() == [T0, T0 + 60_000, T0 + 120_000]


def test_one_short_step_does_not_set_the_grid():
    """A day of minutes from two nodes, one of which restarted 7 s into a minute: the
    grid stays at 60 s (the smallest step, 7 s, would hold no whole minute)."""
    from klankkast.analysis.levels import infer_step_s

    t = np.arange(0, 86_400_000, 60_000, dtype=np.int64)
    restarted = np.sort(np.append(t, 3_600_000 + 7_000))
    t_all = np.concatenate([t, restarted])
    nodes = np.concatenate([np.zeros(len(t), np.int64), np.ones(len(restarted), np.int64)])
    assert infer_step_s(t_all, nodes) == 60
    seconds = np.arange(0, 600_000, 1_000, dtype=np.int64)
    assert infer_step_s(seconds, np.zeros(len(seconds), np.int64)) == 1
