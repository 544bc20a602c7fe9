"""``klankkast-analyze report``: does measured nuisance match complaints and visits?

Loads levels (:mod:`~klankkast.analysis.levels`), complaints and visits
(:mod:`~klankkast.analysis.importer`), detects episodes
(:mod:`~klankkast.analysis.episodes`), correlates them
(:mod:`~klankkast.analysis.correlate`) and writes ``DIR/summary.json``,
``DIR/episodes.csv``, ``DIR/complaints.csv``, ``DIR/visits.csv`` and a
self-contained ``DIR/report.html`` (:mod:`~klankkast.analysis.report_html`: per
complaint, per visit and per courtyard, inline SVG traces and heat maps, the timelines
as embedded PNG).

The report states measurements and the rule that fired; it does not pronounce
legal violations (neighbour noise falls under municipal by-laws without dB limits).
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from klankkast.analysis._cliargs import add_source_arguments, time_arg
from klankkast.analysis.correlate import Coverage, Findings, analyse, attach_marks
from klankkast.analysis.episodes import Episode, SiteGrid, detect
from klankkast.analysis.errors import AnalysisError, ConfigError, InputErrors
from klankkast.analysis.headline import limit_lines, site_lines
from klankkast.analysis.importer import (
    Complaint,
    complaint_lines,
    known_sites_of,
    load_complaints,
    load_site_map,
    load_visits,
    visit_lines,
)
from klankkast.analysis.levels import episode_lines, load_grids, write_lines
from klankkast.analysis.marks import Mark, read_marks_csv, read_marks_source
from klankkast.analysis.report_html import (
    LevelSeries,
    findings_text,
    level_series,
    plan_section,
    render_html,
)
from klankkast.analysis.rules import Rules, load_rules
from klankkast.analysis.timeutil import format_local, local_datetime

__all__ = [
    "Progress",
    "add_arguments",
    "cli_summary",
    "main",
    "run",
    "write_outputs",
]


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, one line per stage otherwise."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._t0 = time.monotonic()
        self._last = ""

    def __call__(self, fraction: float, stage: str) -> None:
        if not self.enabled:
            return
        fraction = min(1.0, max(0.0, fraction))
        filled = round(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        text = f"[{bar}] {fraction * 100:3.0f}% {stage} ({time.monotonic() - self._t0:.1f} s)"
        if self.tty:
            self.stream.write("\r" + text.ljust(len(self._last)))
            if fraction >= 1.0:
                self.stream.write("\n")
        elif stage != self._last:
            self.stream.write(text + "\n")
        self._last = stage if not self.tty else text
        self.stream.flush()


# ---------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``klankkast-analyze report``."""
    add_source_arguments(
        parser,
        "analysis",
        "Corroborate complaints with measured nuisance episodes, classify enforcement visits, "
        "find nuisance without complaints, test whether the association is chance, and write "
        "summary.json, episodes.csv, complaints.csv, visits.csv and a self-contained "
        "report.html to DIR. Reports measurements and the rule that fired, no legal verdicts.",
    )
    parser.add_argument(
        "--complaints", metavar="FILE", help="complaints (CSV, Open311 JSON, Signalen)"
    )
    parser.add_argument("--visits", metavar="FILE", help="visits CSV")
    parser.add_argument(
        "--experiences",
        metavar="FILE",
        help="residents' marks ('ik heb nu last') as CSV: site;time;household[;kind;severity]"
        " (default: read from the InfluxDB of --levels, when it is one)",
    )
    parser.add_argument(
        "--lang", choices=("nl", "en"), default="nl", help="report language (default nl)"
    )
    parser.add_argument("--site-map", metavar="FILE", help="site-mapping TOML for Open311/Signalen")
    parser.add_argument(
        "--sites",
        metavar="A,B",
        help="analyse only these sites (complaints and visits of other sites are left out)",
    )
    parser.add_argument(
        "--complaints-format",
        choices=("auto", "csv", "open311", "signalen"),
        default="auto",
        help="format of --complaints (default: detected)",
    )
    parser.add_argument("--plan", metavar="FILE", help="plan.json of `klankkast-analyze plan`")
    parser.add_argument(
        "--step", type=int, metavar="S", help="grid step in seconds (default: the data's own)"
    )
    parser.add_argument(
        "--influx",
        metavar="URL",
        help="also write complaint/visit/episode points, the headline numbers per site "
        "(measurement analysis) and the period limits (measurement limit), for Grafana, "
        "to influxdb+http(s)://[user@]host:port/DB",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(
    args: argparse.Namespace, progress: Progress, grids_out: list[SiteGrid] | None = None
) -> tuple[Findings, Rules, dict[str, Any]]:
    """Load, detect and correlate; return the findings, rules and run metadata.

    ``grids_out`` receives the per-site level grids (for the report's level traces)."""
    rules = load_rules(args.rules)
    start = time_arg("--from", args.t_from)
    end = time_arg("--to", args.t_to)
    if start is not None and end is not None and end <= start:
        raise ConfigError("--to", args.t_to, "must be after --from")
    selected = [s.strip() for s in (getattr(args, "sites", None) or "").split(",") if s.strip()]
    progress(0.02, "loading levels")
    # each node is also analysed on its own when the site map says where nodes hang
    site_map = load_site_map(args.site_map) if getattr(args, "site_map", None) else None
    per_node: list[SiteGrid] | None = (
        [] if site_map is not None and site_map.has_node_positions() else None
    )
    grids = load_grids(
        args.levels,
        start_ms=start,
        end_ms=end,
        node_combine=rules.node_combine,
        step_s=args.step,
        sites=selected,
        progress=lambda f: progress(0.02 + 0.3 * f, "loading levels"),
        node_grids_out=per_node,
    )
    if grids_out is not None:
        grids_out.extend(grids)
    span = (
        start if start is not None else min(g.t0_ms for g in grids),
        end if end is not None else max(g.end_ms for g in grids),
    )
    progress(0.35, "reading complaints and visits")
    # a complaint or visit must name a site of the levels (or of the site map)
    known: set[str] | None = (known_sites_of(site_map, None) or set()) | {g.site for g in grids}
    if selected:
        known = None  # a city-wide file: other sites are left out below, not errors
    complaints: list[Complaint] = []
    if args.complaints:
        complaints, _ = load_complaints(
            args.complaints,
            fmt=getattr(args, "complaints_format", "auto"),
            site_map=site_map,
            known_sites=known,
        )
    visits = []
    if args.visits:
        ids = {c.id for c in complaints} if args.complaints else None
        visits = load_visits(args.visits, known_sites=known, complaint_ids=ids)
    complaints = [c for c in complaints if span[0] <= c.incident_start_ms < span[1]]
    visits = [v for v in visits if span[0] <= v.arrived_ms < span[1]]
    if selected:
        complaints = [c for c in complaints if c.site in selected]
        visits = [v for v in visits if v.site in selected]
    episodes = []
    for i, g in enumerate(grids):
        episodes.extend(detect(g, rules))
        progress(0.4 + 0.4 * (i + 1) / len(grids), f"episodes {g.site}")
    node_episodes = None
    if per_node is not None:
        node_episodes = [e for g in per_node for e in detect(g, rules)]
    progress(0.82, "correlating")
    coverage = Coverage(grids)
    findings = analyse(
        episodes, complaints, visits, coverage, rules, span, node_episodes=node_episodes
    )
    marks = _read_marks(args, span, findings.sites, rules.timezone)
    if marks is not None:
        progress(0.86, "residents' marks")
        attach_marks(findings, marks, coverage, permutations=rules.permutations, seed=rules.seed)
    meta = {
        "from": format_local(span[0], rules.timezone),
        "to": format_local(span[1], rules.timezone),
        "from_ms": span[0],
        "to_ms": span[1],
        "sites": [g.site for g in grids],
        "step_s": grids[0].step_s if grids else None,
        "levels": args.levels.split("@")[-1],
    }
    return findings, rules, meta


def _read_marks(
    args: argparse.Namespace, span: tuple[int, int], sites: list[str], tz: str
) -> list[Mark] | None:
    """Residents' marks of the analysed sites and span: ``--experiences FILE``, else the
    InfluxDB of ``--levels``; None when there is no source (a levels CSV, no file)."""
    path = getattr(args, "experiences", None)
    if path:
        marks: list[Mark] | None = read_marks_csv(path, tz)
    else:
        marks = read_marks_source(args.levels, span[0], span[1], sites)
    if marks is None:
        return None
    other = sorted({m.site for m in marks} - set(sites))
    if other:
        print(
            f"klankkast-analyze report: residents' marks of {len(other)} site(s) without levels "
            f"left out: {', '.join(other[:5])}" + (" ..." if len(other) > 5 else ""),
            file=sys.stderr,
        )
    return [m for m in marks if m.site in sites]


def main(args: argparse.Namespace) -> int:
    """Run ``klankkast-analyze report``."""
    progress = Progress(enabled=not args.quiet)
    try:
        grids: list[SiteGrid] = []
        findings, rules, meta = run(args, progress, grids)
        progress(0.9, "writing outputs")
        out = Path(args.out)
        plan = _load_plan(args.plan) if args.plan else None
        series = {g.site: level_series(g, rules, findings.episodes) for g in grids}
        summary = write_outputs(
            findings, rules, meta, out, lang=args.lang, plan=plan, series=series
        )
        if args.influx:
            lines = (
                complaint_lines(c.complaint for c in findings.complaints)
                + visit_lines(v.visit for v in findings.visits)
                + episode_lines(findings.episodes)
                # the headline numbers per site, for Grafana's Nuisance versus reports
                + site_lines(summary, int(meta["to_ms"]))
                # the period limits in force over the analysed span, for the dashboards
                + limit_lines(rules, meta["sites"], int(meta["from_ms"]), int(meta["to_ms"]))
            )
            write_lines(args.influx, lines)
        progress(1.0, "done")
    except InputErrors as err:
        for e in err.errors:
            print(str(e), file=sys.stderr)
        return 1
    except AnalysisError as err:
        print(f"klankkast-analyze report: {err}", file=sys.stderr)
        return 1
    print(cli_summary(summary) + f"; wrote {out}")
    return 0


def cli_summary(summary: dict[str, Any]) -> str:
    """The one line ``report`` prints: episodes, complaints, visits and the test."""
    c, v, e = summary["complaints"], summary["visits"], summary["episodes"]
    p = summary["association"]["p_value"]
    if not c["total"]:
        complaints, test = "no complaints in the period", "no association test"
    else:
        complaints = f"{c['corroborated']}/{c['total']} complaints corroborated"
        test = "too few data for an association test" if p is None else f"p = {p:.3f}"
    visits = (
        "no visits in the period"
        if not v["total"]
        else f"{v['during_nuisance']}/{v['total']} visits during nuisance"
    )
    marks = summary.get("marks")
    heard = (
        ""
        if marks is None
        else f"; {marks['matched']}/{marks['total']} residents' marks during measured nuisance"
    )
    return f"{e['count']} episodes, {complaints}, {visits}; {test}{heard}"


def _load_plan(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--plan", path, "the plan file must exist") from None
    except json.JSONDecodeError as err:
        raise ConfigError("--plan", path, f"must be JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("windows", []), list):
        raise ConfigError("--plan", path, "must be a plan.json with windows[] and backtest{}")
    return doc


# ------------------------------------------------------------------------ outputs
def _iso(t_ms: int | None, tz: str) -> str:
    if t_ms is None:
        return ""
    return str(local_datetime(t_ms, tz).isoformat(timespec="seconds"))


def _num(x: float | None, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return f"{x:.{nd}f}"


def _episode_numbers(ep: Episode | None) -> list[str]:
    """LAeq, LAFmax, bass, rule, specific of a matched episode (empty without one)."""
    if ep is None:
        return ["", "", "", "", ""]
    return [_num(ep.laeq_db), _num(ep.lafmax_db), _num(ep.bass_db), ep.rule, _num(ep.specific_db)]


def write_outputs(
    f: Findings,
    rules: Rules,
    meta: dict[str, Any],
    out: Path,
    *,
    lang: str = "nl",
    plan: dict[str, Any] | None = None,
    series: dict[str, LevelSeries] | None = None,
) -> dict[str, Any]:
    """Write the five output files; return the summary.

    ``series`` (per site, :func:`report_html.level_series`) gives the level traces."""
    out.mkdir(parents=True, exist_ok=True)
    tz = rules.timezone
    summary = f.summary()
    summary["run"] = {**meta, "rules": rules.as_dict()}
    (out / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )
    with (out / "episodes.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["site", "start", "end", "start_ms", "end_ms", "duration_min", "LAeq", "LAFmax",
             "bass", "period", "rule", "verdict", "residual", "specific", "marks",
             "households"]
        )  # fmt: skip
        drew = f.marks.per_episode if f.marks is not None else None
        for i, (e, complained) in enumerate(zip(f.episodes, f.episode_complained, strict=True)):
            marked = ["", ""] if drew is None else [drew[i].marks, drew[i].households]
            w.writerow(
                [e.site, _iso(e.start_ms, tz), _iso(e.end_ms, tz), e.start_ms, e.end_ms,
                 _num(e.duration_s / 60.0, 1), _num(e.laeq_db), _num(e.lafmax_db),
                 _num(e.bass_db), e.period, e.rule,
                 "complained" if complained else "without_complaint",
                 _num(e.residual_db), _num(e.specific_db), *marked]
            )  # fmt: skip
    if f.node_episodes:
        with (out / "node_episodes.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["site", "node", "start", "end", "start_ms", "end_ms", "duration_min",
                        "LAeq", "LAFmax", "bass", "period", "rule", "residual", "specific"])  # fmt: skip
            for e in f.node_episodes:
                site, _, node = e.site.partition("/")
                w.writerow(
                    [site, node, _iso(e.start_ms, tz), _iso(e.end_ms, tz), e.start_ms, e.end_ms,
                     _num(e.duration_s / 60.0, 1), _num(e.laeq_db), _num(e.lafmax_db),
                     _num(e.bass_db), e.period, e.rule, _num(e.residual_db), _num(e.specific_db)]
                )  # fmt: skip
    with (out / "complaints.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["id", "site", "received_at", "incident_start", "incident_end", "category", "source",
             "verdict", "episode_start", "episode_end", "lag_minutes", "LAeq", "LAFmax",
             "bass", "rule", "specific"]
        )  # fmt: skip
        for cv in f.complaints:
            c = cv.complaint
            ep = cv.episode
            w.writerow(
                [c.id, c.site, _iso(c.received_ms, tz), _iso(c.incident_start_ms, tz),
                 _iso(c.incident_end_ms, tz), c.category, c.source, cv.verdict,
                 _iso(cv.episode_start_ms, tz), _iso(cv.episode_end_ms, tz), _num(cv.lag_min),
                 *(_episode_numbers(ep))]
            )  # fmt: skip
    with (out / "visits.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["id", "site", "arrived_at", "left_at", "outcome", "complaint_ids", "verdict",
             "minutes_after_end", "episode_start", "episode_end", "minutes_after_start",
             "response_minutes", "LAeq", "LAFmax", "bass", "rule", "specific"]
        )  # fmt: skip
        for vv in f.visits:
            v = vv.visit
            w.writerow(
                [v.id, v.site, _iso(v.arrived_ms, tz), _iso(v.left_ms, tz), v.outcome,
                 ";".join(v.complaint_ids), vv.verdict, _num(vv.minutes_after_end),
                 _iso(vv.episode_start_ms, tz), _iso(vv.episode_end_ms, tz),
                 _num(vv.minutes_from_start), _num(vv.response_min),
                 *(_episode_numbers(vv.episode))]
            )  # fmt: skip
    (out / "report.html").write_text(
        render_html(
            f,
            summary,
            rules,
            meta,
            lang=lang,
            plan=plan,
            series=series,
            timelines=_timelines(f, rules, lang),
        ),
        encoding="utf-8",
    )
    return dict(summary)


# --------------------------------------------------------------------------- HTML
def _findings_text(s: dict[str, Any], lang: str) -> list[str]:
    """The findings in plain sentences (see :func:`report_html.findings_text`)."""
    return findings_text(s, lang)


def _plan_section(plan: dict[str, Any], lang: str) -> str:
    return plan_section(plan, lang)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _timelines(f: Findings, rules: Rules, lang: str, per_fig: int = 25) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    t0, t1 = f.span_ms
    sites = f.sites
    day = 86_400_000

    def num(t_ms: np.ndarray) -> np.ndarray:
        return np.asarray(t_ms, dtype=np.float64) / day  # matplotlib date numbers (days)

    out = []
    for k in range(0, max(1, len(sites)), per_fig):
        chunk = sites[k : k + per_fig]
        fig, ax = plt.subplots(figsize=(12, 0.45 * len(chunk) + 1.4))
        for row, site in enumerate(chunk):
            eps = [(e.start_ms, e.end_ms) for e in f.episodes if e.site == site]
            if eps:
                arr = np.array(eps, dtype=np.float64)
                ax.broken_barh(
                    list(zip(num(arr[:, 0]), num(arr[:, 1] - arr[:, 0]), strict=True)),
                    (row - 0.3, 0.6),
                    facecolors="#E69F00",
                    alpha=0.8,
                )
            cs = [c for c in f.complaints if c.complaint.site == site]
            for verdict, color, mk in (("corroborated", "#0072B2", "v"),
                                       ("not_corroborated", "0.45", "1"),
                                       ("no_data", "0.75", "1")):  # fmt: skip
                t = [c.complaint.incident_start_ms for c in cs if c.verdict == verdict]
                if t:
                    ax.plot(num(np.array(t)), [row + 0.38] * len(t), mk, color=color, ms=6)
            vs = [v for v in f.visits if v.visit.site == site]
            for verdict, color, mk in (("during", "#009E73", "o"), ("after", "#D55E00", "s"),
                                       ("nothing", "k", "x"), ("no_data", "0.75", "x")):  # fmt: skip
                t = [v.visit.arrived_ms for v in vs if v.verdict == verdict]
                if t:
                    ax.plot(num(np.array(t)), [row - 0.38] * len(t), mk, color=color, ms=5)
        ax.set_yticks(range(len(chunk)))
        ax.set_yticklabels(chunk)
        ax.set_ylim(-0.8, len(chunk) - 0.2)
        ax.set_xlim(num(np.array([t0]))[0], num(np.array([t1]))[0])
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        legend = {
            "en": "orange bars: episodes · complaints: ▼ corroborated, Y not · "
            "visits: ● during, ■ after, × no nuisance measured",
            "nl": "oranje balken: episodes · klachten: ▼ bevestigd, Y niet · "
            "controles: ● tijdens, ■ na afloop, × geen overlast gemeten",
        }[lang]
        ax.set_title(legend, fontsize=9)
        out.append(_png(fig))
    return out
