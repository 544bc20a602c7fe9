"""The demo's summary: ``summary.json`` (its keys are what scripts read), the lines
printed at the end, and the Grafana links (printed only when a Grafana answers)."""

from __future__ import annotations

import json
import math
import urllib.request
from pathlib import Path
from typing import Any

from ._common import DASHBOARD_UIDS, DB, NODE_ID, REPO, Options, say
from .scenario import HOUR_MS, Timeline, TrueEpisode, iso_local

__all__ = [
    "build_summary",
    "grafana_answers",
    "grafana_hint",
    "grafana_lines",
    "print_summary",
    "read_json",
]


def read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _get(d: dict[str, Any], key: str) -> Any:
    from klankkast.analysis.headline import dotted

    return dotted(d, key)


def build_summary(
    opts: Options,
    tl: Timeline,
    out: Path,
    report_dir: Path,
    plan_dir: Path,
    got: dict[str, int],
    rows_c: list[dict[str, str]],
    rows_v: list[dict[str, str]],
    episodes: list[TrueEpisode],
    audio_seconds: int,
    minutes: int,
) -> dict[str, Any]:
    """``summary.json``: the headline numbers from the report's and the plan's own
    summaries, where the files are, and what data went in."""
    rep = read_json(report_dir / "summary.json")
    plan = read_json(plan_dir / "plan.json")
    return {
        "out_dir": str(out),
        "elapsed_s": round(say.elapsed(), 1),
        "period": {
            "start": iso_local(tl.start_ms),
            "end": iso_local(tl.end_ms),
            "weeks": opts.weeks,
        },
        "sites": [s for s, _d, _n in opts.sites],
        "headline": {
            "complaints_total": _get(rep, "complaints.total"),
            "corroborated_complaints": _get(rep, "complaints.corroborated"),
            "corroboration_rate": _get(rep, "complaints.corroboration_rate"),
            "visits_total": _get(rep, "visits.total"),
            "visit_hit_rate": _get(rep, "visits.hit_rate"),
            "plan_hit_rate": _get(plan, "backtest.hit_rate_plan"),
            "random_plan_hit_rate": _get(plan, "backtest.hit_rate_random"),
            "historical_hit_rate": _get(plan, "backtest.hit_rate_historical"),
            "episodes_detected": _get(rep, "episodes.count"),
            "episodes_without_complaint_rate": _get(rep, "episodes.without_complaint_rate"),
            "association_p_value": _get(rep, "association.p_value"),
            "residents_marks": _get(rep, "marks.total"),
            "residents_marks_during_nuisance": _get(rep, "marks.matched"),
        },
        "files": {
            "report": str(report_dir / "report.html"),
            "report_summary": str(report_dir / "summary.json"),
            "plan": str(plan_dir / "plan.json"),
            "plan_ics": str(plan_dir / "plan.ics"),
            "complaints": str(out / "complaints.csv"),
            "visits": str(out / "visits.csv"),
            "truth": str(out / "truth.json"),
            "logs": str(out / "logs"),
        },
        "dashboards": {
            "dir": str(REPO / "deploy" / "grafana" / "dashboards"),
            "uids": list(DASHBOARD_UIDS),
            "grafana": {"url": opts.grafana, "answers": grafana_answers(opts.grafana)},
            "audio_window": {
                "from": tl.audio_start_ms,
                "to": tl.audio_start_ms + audio_seconds * 1000,
            },
            # where to look once Grafana runs on this data (see --keep)
            "links": {
                "courtyard-now": f"{opts.grafana}/d/courtyard-now?from="
                f"{tl.audio_start_ms}&to={tl.audio_end_ms + 2 * HOUR_MS}&var-site={opts.sites[0][0]}",
                "nuisance-vs-reports": f"{opts.grafana}/d/nuisance-vs-reports?from="
                f"{tl.start_ms}&to={tl.end_ms}",
                "fleet-health": f"{opts.grafana}/d/fleet-health?from=now-24h&to=now",
            },
        },
        "data": {
            "real_audio": {
                "what": "synthesised courtyard audio measured by the node's metrology core "
                "(klankkast-sensor simulate --wav)",
                "site": opts.sites[0][0],
                "node": f"{NODE_ID}-001",
                "start": iso_local(tl.audio_start_ms),
                "seconds": audio_seconds,
            },
            "synthetic_seconds": {
                "what": "1-s frames from the node simulator (klankkast-sensor simulate)",
                "start": iso_local(tl.seconds_start_ms),
                "seconds_per_node": round(opts.seconds_s),
            },
            "synthesised_minutes": {
                "what": "per-minute summaries synthesised by the demo, published with the wire "
                "encoder",
                "count": minutes,
            },
            "influxdb_points": got,
        },
        "truth": {
            "episodes": len(episodes),
            "complaints": len(rows_c),
            "complaints_unfounded": sum(1 for r in rows_c if r["category"] == "overig"),
            "visits": len(rows_v),
        },
    }


def _fmt_rate(x: Any) -> str:
    return "n/a" if not isinstance(x, int | float) or not math.isfinite(x) else f"{100 * x:.0f} %"


def print_summary(s: dict[str, Any]) -> None:
    h = s["headline"]
    f = s["files"]
    print()
    print("klankkast demo: done in {:.0f} s".format(s["elapsed_s"]))
    print(f"  report     {f['report']}")
    print(f"  plan       {f['plan']}  (calendar: {f['plan_ics']})")
    print(
        f"  dashboards {s['dashboards']['dir']}  (Grafana uids: {', '.join(s['dashboards']['uids'])})"
    )
    print(f"  data       {f['complaints']}, {f['visits']}, summary {s['out_dir']}/summary.json")
    for line in grafana_lines(s):
        print(line)
    print()
    print(
        f"  corroborated complaints: {h['corroborated_complaints']} of {h['complaints_total']}"
        f" ({_fmt_rate(h['corroboration_rate'])})"
    )
    print(
        f"  visit hit rate:          {_fmt_rate(h['visit_hit_rate'])} of {h['visits_total']} visits "
        "came while nuisance was going on"
    )
    print(
        f"  plan hit rate:           {_fmt_rate(h['plan_hit_rate'])} (random plan "
        f"{_fmt_rate(h['random_plan_hit_rate'])}, historical visits {_fmt_rate(h['historical_hit_rate'])})"
    )
    r = s.get("residents") or {}
    if r.get("page"):
        print()
        print(
            f"  residents' page: {r['invitation']}  ({r['marks']} marks of {r['households']} "
            f"households; letters in {r['letters']}; up while the demo runs, --keep keeps it)"
        )
    d = s["data"]
    print()
    print(
        f"  real audio:   {d['real_audio']['seconds'] / 60:.0f} min of synthesised courtyard audio "
        f"through the node's metrology core ({d['real_audio']['site']}/{d['real_audio']['node']}, "
        f"from {d['real_audio']['start']})"
    )
    print(
        f"  synthetic:    1-s frames from the node simulator for the last "
        f"{d['synthetic_seconds']['seconds_per_node'] / 60:.0f} min of every node; "
        f"{d['synthesised_minutes']['count']} synthesised minute summaries for the rest"
    )


def grafana_answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a Grafana answers ``GET /api/health`` at ``url`` with 200."""
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=timeout_s) as resp:
            return bool(resp.status == 200 and b"database" in resp.read(4096))
    except (OSError, ValueError):
        return False


def grafana_lines(s: dict[str, Any]) -> list[str]:
    """The dashboard links when a Grafana answers; otherwise how to start one."""
    g = s["dashboards"].get("grafana") or {}
    if g.get("answers"):
        return [f"  Grafana {g['url']}:"] + [
            f"    {uid:20} {link}" for uid, link in s["dashboards"]["links"].items()
        ]
    return [
        f"  Grafana: nothing answers at {g.get('url')}; to see the dashboards on this data, "
        "run the demo with --keep and start one:",
        *("  " + line for line in grafana_hint("<the demo's InfluxDB URL>").splitlines()),
    ]


def grafana_hint(influx_url: str) -> str:
    return (
        "Grafana on this data (needs docker):\n"
        "  docker run --rm --network host "
        f"-e KLANKKAST_INFLUX_URL={influx_url} -e KLANKKAST_INFLUX_DB={DB} "
        "-e KLANKKAST_INFLUX_USER= -e KLANKKAST_GRAFANA_WEBHOOK_URL=http://127.0.0.1:9/unset "
        "-v /dev/null:/run/secrets/influx-grafana.password:ro "
        f"-v {REPO}/deploy/grafana/provisioning:/etc/grafana/provisioning:ro "
        f"-v {REPO}/deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro "
        "grafana/grafana-oss:11.3.0\n"
        "  then open the links under dashboards.links in summary.json (login admin/admin; "
        "--grafana URL if it is not on localhost:3000)"
    )
