"""Levels from a real InfluxDB; complaints, visits and episodes written back for Grafana."""

from __future__ import annotations

import json

import numpy as np
from support.analysis_scenario import make_scenario, write_files

from klankkast.analysis.cli import main as analyze
from klankkast.influx import InfluxHTTP


def _layout(url: str, db: str) -> None:
    """Create the database as the ingest does: RPs raw (default) and forever."""
    client = InfluxHTTP(url, db)
    try:
        client.ensure_layout()
    finally:
        client.close()


def _minute_lines(sc):
    lines = []
    for g in sc.grids:
        t = g.t_ms
        for i in np.flatnonzero(np.isfinite(g.laeq_db)):
            lines.append(
                f"minute,node=n1,site={g.site} LAeq={g.laeq_db[i]:.3f},LCeq={g.lceq_db[i]:.3f},"
                f"LAFmax={g.lafmax_db[i]:.3f},LA90={g.la90_db[i]:.3f} {int(t[i])}"
            )
    return lines


def test_report_from_influxdb_and_annotations_written(influxdb, tmp_path, capsys):
    sc = make_scenario(31, sites=2, days=10, founded=15, unfounded=5)
    paths = write_files(sc, tmp_path / "in", two_nodes=False)
    _layout(influxdb.url, "klankkast")
    lines = _minute_lines(sc)
    for k in range(0, len(lines), 5000):
        influxdb.write(lines[k : k + 5000], db="klankkast", rp="forever")
    _layout(influxdb.url, "annotations")
    src = influxdb.url.replace("http://", "influxdb+http://") + "/klankkast"
    dst = influxdb.url.replace("http://", "influxdb+http://") + "/annotations"
    out = tmp_path / "out"
    rc = analyze(
        ["report", "--levels", src, "--complaints", paths["complaints"], "--visits",
         paths["visits"], "--from", "2026-03-02T00:00+01:00", "--to", "2026-03-12T00:00+01:00",
         "--out", str(out), "--influx", dst, "--quiet", "--lang", "en"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert s["episodes"]["count"] == sc.truth["episodes"]
    assert s["complaints"]["corroborated"] == sc.truth["corroborated"]
    assert s["visits"]["during_nuisance"] == sc.truth["visits_during"]

    def count(measurement, field):
        rows = influxdb.rows(
            f'SELECT count("{field}") FROM "forever"."{measurement}"', db="annotations"
        )
        return rows[0]["count"] if rows else 0

    assert count("complaint", "received") == len(sc.complaints)
    assert count("visit", "left") == len(sc.visits)
    rows = influxdb.rows(
        'SELECT "duration_s", "LAeq", "end" FROM "forever"."episode" GROUP BY "site", "rule"',
        db="annotations",
    )
    assert len(rows) == sc.truth["episodes"]
    planted = sorted((site, a, b) for site, v in sc.planted.items() for a, b in v)
    assert sorted((r["site"], r["time"], r["end"]) for r in rows) == planted
    assert {r["rule"] for r in rows} == {"absolute+emergence"}


def test_import_writes_complaints_and_visits(influxdb, tmp_path, capsys):
    sc = make_scenario(32, sites=1, days=4, founded=5, unfounded=2, gap_day=None)
    paths = write_files(sc, tmp_path, two_nodes=False)
    _layout(influxdb.url, "imp")
    url = influxdb.url.replace("http://", "influxdb+http://") + "/imp"
    rc = analyze(
        ["import", "--complaints", paths["complaints"], "--visits", paths["visits"],
         "--sites", "yard1", "--influx", url]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    rows = influxdb.rows(
        'SELECT "received" FROM "forever"."complaint" GROUP BY "id", "site"', db="imp"
    )
    assert sorted(r["id"] for r in rows) == sorted(c.id for c in sc.complaints)
    by_id = {c.id: c for c in sc.complaints}
    for r in rows:
        assert r["time"] == by_id[r["id"]].incident_start_ms
        assert r["received"] == by_id[r["id"]].received_ms


def test_report_one_site_from_influxdb(influxdb, tmp_path, capsys):
    """--sites selects one site's levels in the query; other sites' complaints are left out."""
    sc = make_scenario(33, sites=2, days=5, founded=8, unfounded=2, gap_day=None)
    paths = write_files(sc, tmp_path / "in", two_nodes=False)
    _layout(influxdb.url, "one")
    influxdb.write(_minute_lines(sc), db="one", rp="forever")
    src = influxdb.url.replace("http://", "influxdb+http://") + "/one"
    out = tmp_path / "out"
    rc = analyze(
        ["report", "--levels", src, "--complaints", paths["complaints"], "--sites", "yard2",
         "--from", "2026-03-02", "--to", "2026-03-07", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert s["run"]["sites"] == ["yard2"]
    assert s["episodes"]["count"] == len(sc.planted["yard2"])
    assert s["complaints"]["total"] == sum(c.site == "yard2" for c in sc.complaints)
