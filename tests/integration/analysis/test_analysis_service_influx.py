"""``klankkast-analyze run --once`` against a real InfluxDB: levels read from it, the
report and plan into a dated folder, and the headline numbers per site written back as
measurement ``analysis`` (what Grafana's headline panels read per ``$site``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from support.analysis_scenario import make_scenario, write_files

from klankkast.influx import InfluxHTTP

BIN = Path(sys.executable).parent


def test_run_once_writes_the_dated_run_and_the_headline_per_site(influxdb, tmp_path) -> None:
    sc = make_scenario(11, sites=2, days=21, founded=12, unfounded=3, gap_day=None)
    paths = write_files(sc, tmp_path / "in", two_nodes=False)
    client = InfluxHTTP(influxdb.url, "klankkast")
    try:
        client.ensure_layout()
    finally:
        client.close()
    lines = [
        f"minute,node=n1,site={g.site} LAeq={g.laeq_db[i]:.3f},LCeq={g.lceq_db[i]:.3f},"
        f"LAFmax={g.lafmax_db[i]:.3f},LA90={g.la90_db[i]:.3f} {int(g.t_ms[i])}"
        for g in sc.grids
        for i in np.flatnonzero(np.isfinite(g.laeq_db))
    ]
    for k in range(0, len(lines), 5000):
        influxdb.write(lines[k : k + 5000], db="klankkast", rp="forever")
    address = influxdb.url.replace("http://", "influxdb+http://") + "/klankkast"
    central = tmp_path / "central.toml"
    central.write_text(
        f"""[analysis]
levels = "{address}"
out_dir = "{tmp_path / "reports"}"
complaints = "{paths["complaints"]}"
visits = "{paths["visits"]}"
lang = "en"
"""
    )
    res = subprocess.run(
        [str(BIN / "klankkast-analyze"), "run", "--config", str(central), "--once",
         "--now", "2026-03-23T06:00:00+01:00"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    folder = tmp_path / "reports" / "2026-03-23"
    assert (tmp_path / "reports" / "latest").resolve() == folder.resolve()
    summary = json.loads((folder / "report" / "summary.json").read_text())
    plan = json.loads((folder / "plan" / "plan.json").read_text())
    assert plan["windows"]
    rows = influxdb.rows(
        'SELECT last("complaints_corroborated") AS c, last("complaints_total") AS n '
        'FROM "forever"."analysis" WHERE "scope" = \'site\' GROUP BY "site"',
        db="klankkast",
    )
    got = {r["site"]: (r["c"], r["n"]) for r in rows}
    want = {
        site: (float(s["complaints"]["corroborated"]), float(s["complaints"]["total"]))
        for site, s in summary["sites"].items()
    }
    assert got == want and len(got) == 2
    (p,) = influxdb.rows(
        'SELECT last("plan_windows") AS w FROM "forever"."analysis" WHERE "scope" = \'plan\'',
        db="klankkast",
    )
    assert p["w"] == float(len(plan["windows"]))
    # a bad table: every problem on its own line, exit 1
    central.write_text('[analysis]\nlevels = "http://x:8086/db"\nlnag = "en"\n')
    res = subprocess.run(
        [str(BIN / "klankkast-analyze"), "run", "--config", str(central), "--once"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 1
    errs = res.stderr.strip().splitlines()
    assert len(errs) == 3, res.stderr
    assert any("did you mean 'lang'" in e for e in errs)
    assert any("analysis.out_dir = (missing): required" in e for e in errs)
