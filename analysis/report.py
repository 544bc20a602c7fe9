"""``klankkast-analyze report``: does measured nuisance match complaints and visits?

Loads levels (:mod:`~klankkast.analysis.levels`), complaints and visits
(:mod:`~klankkast.analysis.importer`), detects episodes
(:mod:`~klankkast.analysis.episodes`), correlates them
(:mod:`~klankkast.analysis.correlate`) and writes ``DIR/summary.json``,
``DIR/episodes.csv``, ``DIR/complaints.csv``, ``DIR/visits.csv`` and a
self-contained ``DIR/report.html`` (plots embedded as base64 PNG).

The report states measurements and the rule that fired; it does not pronounce
legal violations (neighbour noise falls under municipal by-laws without dB limits).
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import math
import sys
import textwrap
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from klankkast.analysis._cliargs import LEVELS_FORMS, add_source_arguments, time_arg
from klankkast.analysis.correlate import Coverage, Findings, analyse
from klankkast.analysis.episodes import SiteGrid, detect
from klankkast.analysis.errors import AnalysisError, ConfigError, InputErrors
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
from klankkast.analysis.rules import Rules, load_rules
from klankkast.analysis.timeutil import format_local, local_datetime

__all__ = ["Progress", "add_arguments", "main", "render_html", "run", "write_outputs"]

_EN_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_WEEKDAYS = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "nl": ["ma", "di", "wo", "do", "vr", "za", "zo"],
}


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
    parser.description = textwrap.fill(
        "Corroborate complaints with measured nuisance episodes, classify enforcement visits, "
        "find nuisance without complaints, test whether the association is chance, and write "
        "summary.json, episodes.csv, complaints.csv, visits.csv and a self-contained "
        "report.html to DIR. Reports measurements and the rule that fired, no legal verdicts."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = LEVELS_FORMS
    add_source_arguments(parser, "analysis")
    parser.add_argument(
        "--complaints", metavar="FILE", help="complaints (CSV, Open311 JSON, Signalen)"
    )
    parser.add_argument("--visits", metavar="FILE", help="visits CSV")
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
        help="also write complaint/visit/episode points to influxdb+http(s)://[user@]host:port/DB",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace, progress: Progress) -> tuple[Findings, Rules, dict[str, Any]]:
    """Load, detect and correlate; return the findings, rules and run metadata."""
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
    findings = analyse(
        episodes, complaints, visits, Coverage(grids), rules, span, node_episodes=node_episodes
    )
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


def main(args: argparse.Namespace) -> int:
    """Run ``klankkast-analyze report``."""
    progress = Progress(enabled=not args.quiet)
    try:
        findings, rules, meta = run(args, progress)
        progress(0.9, "writing outputs")
        out = Path(args.out)
        plan = _load_plan(args.plan) if args.plan else None
        summary = write_outputs(findings, rules, meta, out, lang=args.lang, plan=plan)
        if args.influx:
            lines = (
                complaint_lines(c.complaint for c in findings.complaints)
                + visit_lines(v.visit for v in findings.visits)
                + episode_lines(findings.episodes)
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
    c, v, e = summary["complaints"], summary["visits"], summary["episodes"]
    print(
        f"{e['count']} episodes, {c['corroborated']}/{c['total']} complaints corroborated, "
        f"{v['during_nuisance']}/{v['total']} visits during nuisance; "
        f"p = {summary['association']['p_value']}; wrote {out}"
    )
    return 0


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


def write_outputs(
    f: Findings,
    rules: Rules,
    meta: dict[str, Any],
    out: Path,
    *,
    lang: str = "nl",
    plan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the five output files; return the summary."""
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
             "bass", "period", "rule", "verdict", "residual", "specific"]
        )  # fmt: skip
        for e, complained in zip(f.episodes, f.episode_complained, strict=True):
            w.writerow(
                [e.site, _iso(e.start_ms, tz), _iso(e.end_ms, tz), e.start_ms, e.end_ms,
                 _num(e.duration_s / 60.0, 1), _num(e.laeq_db), _num(e.lafmax_db),
                 _num(e.bass_db), e.period, e.rule,
                 "complained" if complained else "without_complaint",
                 _num(e.residual_db), _num(e.specific_db)]
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
             "verdict", "episode_start", "episode_end", "lag_minutes"]
        )  # fmt: skip
        for cv in f.complaints:
            c = cv.complaint
            w.writerow(
                [c.id, c.site, _iso(c.received_ms, tz), _iso(c.incident_start_ms, tz),
                 _iso(c.incident_end_ms, tz), c.category, c.source, cv.verdict,
                 _iso(cv.episode_start_ms, tz), _iso(cv.episode_end_ms, tz), _num(cv.lag_min)]
            )  # fmt: skip
    with (out / "visits.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["id", "site", "arrived_at", "left_at", "outcome", "complaint_ids", "verdict",
             "minutes_after_end", "episode_start", "episode_end"]
        )  # fmt: skip
        for vv in f.visits:
            v = vv.visit
            w.writerow(
                [v.id, v.site, _iso(v.arrived_ms, tz), _iso(v.left_ms, tz), v.outcome,
                 ";".join(v.complaint_ids), vv.verdict, _num(vv.minutes_after_end),
                 _iso(vv.episode_start_ms, tz), _iso(vv.episode_end_ms, tz)]
            )  # fmt: skip
    (out / "report.html").write_text(
        render_html(f, summary, rules, meta, lang=lang, plan=plan), encoding="utf-8"
    )
    return dict(summary)


# --------------------------------------------------------------------------- HTML
_T = {
    "title": {"en": "Noise nuisance: measurements, complaints and visits",
              "nl": "Geluidsoverlast: metingen, klachten en controles"},
    "period": {"en": "Period analysed", "nl": "Geanalyseerde periode"},
    "findings": {"en": "Findings", "nl": "Bevindingen"},
    "heatmap": {"en": "Week view: measured nuisance and complaints by hour of week",
                "nl": "Weekbeeld: gemeten overlast en klachten per uur van de week"},
    "timeline": {"en": "Timeline per site", "nl": "Tijdlijn per locatie"},
    "plan": {"en": "Patrol plan", "nl": "Controleplan"},
    "method": {"en": "Method and rules", "nl": "Methode en regels"},
    "minutes": {"en": "nuisance minutes", "nl": "minuten overlast"},
    "complaints": {"en": "complaints (incident start)", "nl": "klachten (begin incident)"},
    "legal": {
        "en": "This report states measured levels and which detection rule fired. It does "
              "not establish legal violations: neighbour noise falls under municipal by-laws "
              "that set no dB limits.",
        "nl": "Dit rapport geeft gemeten niveaus en welke detectieregel afging. Het stelt "
              "geen overtredingen vast: burenlawaai valt onder de APV, die geen dB-grenzen "
              "noemt.",
    },
}  # fmt: skip


def rules_text(rules: Rules, lang: str) -> str:
    """What the episode rules mean, in the report's method section (issue 15)."""
    if rules.node_combine == "mean":
        nodes = {"en": "The nodes of a site are combined by energy mean (microphones in one "
                       "courtyard hear the same sound field).",
                 "nl": "De meters van één locatie worden energetisch gemiddeld (microfoons in "
                       "één binnenplaats horen hetzelfde geluidsveld)."}[lang]  # fmt: skip
    else:
        nodes = {"en": "The nodes of a site are summed by energy.",
                 "nl": "De meters van één locatie worden energetisch opgeteld."}[lang]  # fmt: skip
    if rules.residual == "quiet_laeq":
        res = {
            "en": f"The residual level is the LAeq of the preceding "
                  f"{rules.background_window_s // 60} min (its 5-min LAeqs up to their "
                  f"{100 * rules.residual_quantile:.0f}th percentile), held from the start of "
                  "an episode until it ends, so the noise assessed never becomes its own "
                  "residual.",
            "nl": f"Het residuele niveau is de LAeq van de voorafgaande "
                  f"{rules.background_window_s // 60} min (de 5-min-LAeq's tot hun "
                  f"{100 * rules.residual_quantile:.0f}e percentiel), vastgehouden vanaf het "
                  "begin van een episode tot het einde.",
        }[lang]  # fmt: skip
    else:
        res = {"en": "The background is the median of per-minute LA90 (previous rules).",
               "nl": "De achtergrond is de mediaan van LA90 per minuut (vorige regels)."}[lang]  # fmt: skip
    if rules.absolute_level == "specific":
        ab = {
            "en": "Rule 'absolute': the limits apply to the specific level, the total with "
                  "the residual subtracted by energy (ISO 1996-2); under "
                  f"{rules.specific_min_db:g} dB above the residual it cannot be determined "
                  "and the rule does not fire. Rule 'emergence': the 5-min LAeq exceeds the "
                  "residual by more than the period's emergence. Each episode lists the rule "
                  "that fired, its residual and its specific level.",
            "nl": "Regel 'absolute': de grenswaarden gelden voor het specifieke niveau, het "
                  "totaal met het residuele geluid energetisch afgetrokken (ISO 1996-2); "
                  f"minder dan {rules.specific_min_db:g} dB boven het residu is dat niet te "
                  "bepalen en gaat de regel niet af. Regel 'emergence': de 5-min-LAeq ligt "
                  "meer dan de toegestane emergentie boven het residu. Elke episode vermeldt "
                  "de regel, het residu en het specifieke niveau.",
        }[lang]  # fmt: skip
    else:
        ab = {"en": "Rule 'absolute': the limits apply to the total level (previous rules).",
              "nl": "Regel 'absolute': grenswaarden op het totale niveau (vorige regels)."}[lang]  # fmt: skip
    return f"{nodes} {res} {ab}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _findings_text(s: dict[str, Any], lang: str) -> list[str]:
    c, v, e, a = s["complaints"], s["visits"], s["episodes"], s["association"]
    p = a["p_value"]
    out = []
    if lang == "nl":
        out.append(
            f"Van de {c['total']} klachten vallen er {c['corroborated']} ({_pct(c['corroboration_rate'])}) "
            f"samen met gemeten overlast; bij {c['no_data']} was er geen meting."
        )
        if c["median_lag_minutes"] is not None:
            out.append(
                f"Tussen het begin van de overlast en de klacht zat mediaan "
                f"{c['median_lag_minutes']:.0f} minuten."
            )
        out.append(
            f"Van de {v['total']} controles kwamen er {v['during_nuisance']} ({_pct(v['hit_rate'])}) "
            f"tijdens overlast, {v['after_nuisance']} nadat die was gestopt"
            + (
                f" (mediaan {v['median_minutes_after_end']:.0f} minuten te laat)"
                if v["median_minutes_after_end"] is not None
                else ""
            )
            + f" en {v['nothing']} toen er in de uren ervoor niets gemeten was."
        )
        out.append(
            f"Er zijn {e['count']} episodes van overlast gemeten; {e['without_complaint']} "
            f"({_pct(e['without_complaint_rate'])}) daarvan zonder enige klacht. "
            "Geen klacht betekent niet geen probleem."
        )
        if p is None:
            out.append("Voor een toets op samenhang waren te weinig gegevens.")
        elif p < 0.05:
            out.append(
                f"Klachten en gemeten overlast hangen samen: p = {p:.3f} "
                "(kans dat dit toeval is, tijdverschuivingstoets)."
            )
        else:
            out.append(
                f"De samenhang tussen klachten en gemeten overlast is niet te onderscheiden van "
                f"toeval: p = {p:.3f}."
            )
    else:
        out.append(
            f"Of {c['total']} complaints, {c['corroborated']} ({_pct(c['corroboration_rate'])}) "
            f"coincide with measured nuisance; {c['no_data']} had no measurements."
        )
        if c["median_lag_minutes"] is not None:
            out.append(
                f"The median time from the onset of nuisance to the complaint was "
                f"{c['median_lag_minutes']:.0f} minutes."
            )
        out.append(
            f"Of {v['total']} visits, {v['during_nuisance']} ({_pct(v['hit_rate'])}) came while "
            f"nuisance was going on, {v['after_nuisance']} after it had stopped"
            + (
                f" (median {v['median_minutes_after_end']:.0f} minutes late)"
                if v["median_minutes_after_end"] is not None
                else ""
            )
            + f", and {v['nothing']} when nothing had been measured in the hours before."
        )
        out.append(
            f"{e['count']} episodes of nuisance were measured; {e['without_complaint']} "
            f"({_pct(e['without_complaint_rate'])}) had no complaint at all. "
            "No complaint is not no problem."
        )
        if p is None:
            out.append("There were too few data for a test of association.")
        elif p < 0.05:
            out.append(
                f"Complaints and measured nuisance are associated: p = {p:.3f} "
                "(chance of this by coincidence, time-shift test)."
            )
        else:
            out.append(
                f"The association between complaints and measured nuisance cannot be told apart "
                f"from chance: p = {p:.3f}."
            )
    return out


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _heatmap(f: Findings, lang: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), sharey=True)
    for ax, data, title, cmap in (
        (axes[0], f.hour_of_week_minutes, _T["minutes"][lang], "Reds"),
        (axes[1], f.hour_of_week_complaints, _T["complaints"][lang], "Blues"),
    ):
        im = ax.imshow(data, aspect="auto", cmap=cmap, interpolation="nearest")
        ax.set_title(title)
        ax.set_xticks(range(0, 24, 3))
        ax.set_xlabel("h")
        ax.set_yticks(range(7))
        ax.set_yticklabels(_WEEKDAYS[lang])
        fig.colorbar(im, ax=ax, fraction=0.04)
    return _png(fig)


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
                    facecolors="tab:red",
                    alpha=0.7,
                )
            cs = [c for c in f.complaints if c.complaint.site == site]
            for verdict, color in (("corroborated", "tab:blue"), ("not_corroborated", "0.5"),
                                   ("no_data", "0.8")):  # fmt: skip
                t = [c.complaint.incident_start_ms for c in cs if c.verdict == verdict]
                if t:
                    ax.plot(num(np.array(t)), [row + 0.38] * len(t), "v", color=color, ms=5)
            vs = [v for v in f.visits if v.visit.site == site]
            for verdict, color in (("during", "tab:green"), ("after", "tab:orange"),
                                   ("nothing", "k"), ("no_data", "0.8")):  # fmt: skip
                t = [v.visit.arrived_ms for v in vs if v.verdict == verdict]
                if t:
                    ax.plot(num(np.array(t)), [row - 0.38] * len(t), "o", color=color, ms=4)
        ax.set_yticks(range(len(chunk)))
        ax.set_yticklabels(chunk)
        ax.set_ylim(-0.8, len(chunk) - 0.2)
        ax.set_xlim(num(np.array([t0]))[0], num(np.array([t1]))[0])
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        legend = {
            "en": "red bars: episodes · ▼ complaints (blue corroborated, grey not) · "
            "● visits (green during, orange after, black nothing)",
            "nl": "rode balken: episodes · ▼ klachten (blauw bevestigd, grijs niet) · "
            "● controles (groen tijdens, oranje na, zwart niets)",
        }[lang]
        ax.set_title(legend, fontsize=9)
        out.append(_png(fig))
    return out


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plan_section(plan: dict[str, Any], lang: str) -> str:
    days = _WEEKDAYS[lang]
    rows = []
    for w in plan.get("windows", []):
        wd = w.get("weekday")
        if isinstance(wd, str) and wd.capitalize() in _EN_DAYS:
            wd = _EN_DAYS.index(wd.capitalize())
        day = days[wd] if isinstance(wd, int) and 0 <= wd < 7 else str(wd)
        prob = w.get("probability")
        rows.append(
            [w.get("site", ""), day, w.get("start", ""), w.get("end", ""),
             _pct(prob) if isinstance(prob, int | float) else ""]
        )  # fmt: skip
    header = {
        "en": ["site", "weekday", "start", "end", "probability of nuisance"],
        "nl": ["locatie", "dag", "begin", "eind", "kans op overlast"],
    }[lang]
    bt = plan.get("backtest", {}) or {}

    def fmt(x: Any) -> str:
        if isinstance(x, dict):
            x = x.get("rate", x.get("value"))
        return _pct(x) if isinstance(x, int | float) else "–"

    text = {
        "en": f"Back-test over {bt.get('weeks', '–')} weeks: the plan found nuisance on "
        f"{fmt(bt.get('hit_rate_plan'))} of its visits, the real visits on "
        f"{fmt(bt.get('hit_rate_historical'))}, a random plan of the same size on "
        f"{fmt(bt.get('hit_rate_random'))}.",
        "nl": f"Terugtoets over {bt.get('weeks', '–')} weken: het plan trof overlast bij "
        f"{fmt(bt.get('hit_rate_plan'))} van de controles, de echte controles bij "
        f"{fmt(bt.get('hit_rate_historical'))}, een willekeurig plan van dezelfde omvang bij "
        f"{fmt(bt.get('hit_rate_random'))}.",
    }[lang]
    return f"<p>{html.escape(text)}</p>" + _table(rows, header)


def render_html(
    f: Findings,
    summary: dict[str, Any],
    rules: Rules,
    meta: dict[str, Any],
    *,
    lang: str = "nl",
    plan: dict[str, Any] | None = None,
) -> str:
    """The self-contained report (template ``report.html`` next to this module)."""
    template = resources.files("klankkast.analysis").joinpath("report.html").read_text("utf-8")
    findings = "".join(f"<li>{html.escape(t)}</li>" for t in _findings_text(summary, lang))
    heat = f'<img alt="heat map" src="{_heatmap(f, lang)}">'
    timelines = "".join(f'<img alt="timeline" src="{src}">' for src in _timelines(f, rules, lang))
    a = summary["association"]
    method = (
        f"<p>{html.escape(rules_text(rules, lang))}</p>"
        f"<p>{html.escape(a['method'])}</p><p>{html.escape(_T['legal'][lang])}</p>"
    ) + _table(
        [[k, v] for k, v in rules.as_dict().items()],
        ["rule", "value"] if lang == "en" else ["regel", "waarde"],
    )
    plan_html = ""
    if plan is not None:
        plan_html = f"<section><h2>{_T['plan'][lang]}</h2>{_plan_section(plan, lang)}</section>"
    values = {
        "lang": lang,
        "title": html.escape(_T["title"][lang]),
        "period_label": html.escape(_T["period"][lang]),
        "period": html.escape(f"{meta.get('from', '')} – {meta.get('to', '')}"),
        "sites": html.escape(", ".join(meta.get("sites", []))),
        "findings_h": html.escape(_T["findings"][lang]),
        "findings": findings,
        "heatmap_h": html.escape(_T["heatmap"][lang]),
        "heatmap": heat,
        "timeline_h": html.escape(_T["timeline"][lang]),
        "timeline": timelines,
        "plan": plan_html,
        "method_h": html.escape(_T["method"][lang]),
        "method": method,
        "summary_json": html.escape(json.dumps(summary, indent=1, ensure_ascii=False)[:20000]),
    }
    out = template
    for key, value in values.items():
        out = out.replace("{{" + key + "}}", value)
    return out
