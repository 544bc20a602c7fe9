"""The officer's report (``report.html``): per complaint, per visit, per courtyard.

Pure rendering of :class:`~klankkast.analysis.correlate.Findings` and the level
series into the template ``report.html``, in Dutch (default) or English:

* the findings and the method in sentences a council member understands (what counts
  as nuisance, with the values of the rules file), the p-value worded as what it is;
* a table of every complaint (verdict; the matched episode with LAeq, LAFmax, bass =
  LCeq − LAeq, the rule that fired and the specific level; the lag) and of every visit
  (verdict; how long after the episode's start or end it came; the complaints it
  answered and the response time), each with a level trace from 2 h before to 1 h
  after (LAeq per minute, residual, the period's limit, the episode shaded);
* a section per courtyard with its own numbers and week heat maps;
* the patrol plan, with the reason in words when it has no back-test rate.

Measurements and the rule that fired, never legal verdicts.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from klankkast.analysis.correlate import ComplaintVerdict, Findings, VisitVerdict
from klankkast.analysis.episodes import SiteGrid, limit_for, period_of, residual_db
from klankkast.analysis.report_svg import COLOURS, Trace, heatmap_svg, trace_svg
from klankkast.analysis.rules import Rules
from klankkast.analysis.timeutil import local_datetime

__all__ = [
    "LevelSeries",
    "findings_text",
    "level_series",
    "limit_threshold_db",
    "method_text",
    "plan_section",
    "render_html",
]

_EN_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEEKDAYS = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "nl": ["ma", "di", "wo", "do", "vr", "za", "zo"],
}
_MIN_MS = 60_000
_HOUR_MS = 3_600_000
#: a trace runs from 2 h before to 1 h after the moment it is about
TRACE_BEFORE_MS = 2 * _HOUR_MS
TRACE_AFTER_MS = _HOUR_MS
#: at most this many traces per table (the CSVs list every row)
MAX_TRACES = 1000


def _t(en: str, nl: str) -> dict[str, str]:
    return {"en": en, "nl": nl}


TEXT: dict[str, dict[str, str]] = {
    "title": _t("Noise nuisance: measurements, complaints and visits",
                "Geluidsoverlast: metingen, klachten en controles"),
    "period": _t("Period analysed", "Geanalyseerde periode"),
    "findings": _t("Findings", "Bevindingen"),
    "how": _t("How nuisance is measured", "Hoe overlast wordt gemeten"),
    "complaints_h": _t("Complaints, one by one", "Klachten, één voor één"),
    "visits_h": _t("Visits, one by one", "Controles, één voor één"),
    "sites_h": _t("Per courtyard", "Per binnenplaats"),
    "heatmap": _t("Week view, all courtyards", "Weekbeeld, alle binnenplaatsen"),
    "timeline": _t("Timeline per courtyard", "Tijdlijn per binnenplaats"),
    "plan": _t("Patrol plan", "Controleplan"),
    "method": _t("Rules file (all settings)", "Regelbestand (alle instellingen)"),
    "minutes": _t("minutes of nuisance", "minuten overlast"),
    "complaints": _t("complaints (start of incident)", "klachten (begin incident)"),
    "hour": _t("hour", "uur"),
    "legal": _t(
        "This report states measured levels and which detection rule fired. It does not "
        "establish legal violations: neighbour noise falls under municipal by-laws that set "
        "no dB limits.",
        "Dit rapport geeft gemeten niveaus en welke detectieregel afging. Het stelt geen "
        "overtredingen vast: burenlawaai valt onder de APV, die geen dB-grenzen noemt."),
    "legend": _t(
        "Each trace runs from 2 hours before to 1 hour after the complaint or the arrival "
        "(vertical line). Black: the measured level per minute (LAeq); blue dashes: the "
        "residual level (the usual sound without the source); red dots: the total level at "
        "which the source alone reaches the limit of the period; orange band: the measured "
        "episode of nuisance.",
        "Elk verloop loopt van 2 uur vóór tot 1 uur na de klacht of de aankomst (verticale "
        "lijn). Zwart: het gemeten niveau per minuut (LAeq); blauwe streepjes: het residuele "
        "niveau (het gewone geluid zonder de bron); rode puntjes: het totale niveau waarbij "
        "de bron alleen de grenswaarde van de dagperiode bereikt; oranje band: de gemeten "
        "episode van overlast."),
    "no_complaints": _t("No complaints in the period.", "Geen klachten in de periode."),
    "no_visits": _t("No visits in the period.", "Geen controles in de periode."),
    "traces_capped": _t(
        "Traces are shown for the first {n} rows; complaints.csv and visits.csv list all.",
        "Het verloop staat bij de eerste {n} regels; complaints.csv en visits.csv bevatten alle."),
    "site": _t("courtyard", "binnenplaats"),
    "json": _t("summary.json (all numbers)", "summary.json (alle getallen)"),
}  # fmt: skip

COMPLAINT_VERDICT = {
    "corroborated": _t("corroborated by a measurement", "bevestigd door meting"),
    "not_corroborated": _t("no nuisance measured", "geen overlast gemeten"),
    "no_data": _t("not measured then", "toen niet gemeten"),
}
VISIT_VERDICT = {
    "during": _t("during nuisance", "tijdens overlast"),
    "after": _t("after nuisance had ended", "na afloop van overlast"),
    "nothing": _t("no nuisance measured", "geen overlast gemeten"),
    "no_data": _t("not measured then", "toen niet gemeten"),
}
RULE = {
    "absolute": _t("limit (specific level)", "grenswaarde (specifiek niveau)"),
    "emergence": _t("rise above the residual", "stijging boven residu"),
    "absolute+emergence": _t("limit and rise", "grenswaarde en stijging"),
}
PERIOD = {"day": _t("day", "dag"), "evening": _t("evening", "avond"), "night": _t("night", "nacht")}
OUTCOME = {
    "nothing_found": _t("nothing found", "niets aangetroffen"),
    "warning": _t("warning", "waarschuwing"),
    "fine": _t("fine", "boete"),
    "other": _t("other", "anders"),
}
#: labels of the rules file's settings (summary.json keeps the keys)
RULE_LABEL = {
    "timezone": _t("time zone", "tijdzone"),
    "day_start_h": _t("day starts (hour)", "dag begint (uur)"),
    "evening_start_h": _t("evening starts (hour)", "avond begint (uur)"),
    "night_start_h": _t("night starts (hour)", "nacht begint (uur)"),
    "absolute_enabled": _t("limit rule on", "grenswaarderegel aan"),
    "absolute_level": _t("limit applies to", "grenswaarde geldt voor"),
    "specific_min_db": _t("specific level needs at least (dB above residual)",
                          "specifiek niveau vraagt minstens (dB boven residu)"),
    "window_s": _t("averaging window (s)", "middelingsvenster (s)"),
    "limit_day_db": _t("limit day (dB(A))", "grenswaarde dag (dB(A))"),
    "limit_evening_db": _t("limit evening (dB(A))", "grenswaarde avond (dB(A))"),
    "limit_night_db": _t("limit night (dB(A))", "grenswaarde nacht (dB(A))"),
    "emergence_enabled": _t("rise rule on", "stijgingsregel aan"),
    "emergence_day_db": _t("allowed rise day (dB)", "toegestane stijging dag (dB)"),
    "emergence_evening_db": _t("allowed rise evening (dB)", "toegestane stijging avond (dB)"),
    "emergence_night_db": _t("allowed rise night (dB)", "toegestane stijging nacht (dB)"),
    "background_window_s": _t("residual from the preceding (s)", "residu over de voorafgaande (s)"),
    "residual": _t("residual estimator", "schatter van het residu"),
    "residual_quantile": _t("residual: 5-min LAeqs up to quantile",
                            "residu: 5-min-LAeq's tot kwantiel"),
    "residual_hold_max_s": _t("residual held at most (s)", "residu hoogstens vastgehouden (s)"),
    "background_quantile_la90": _t("LA90 quantile (previous rules)", "LA90-kwantiel (vorige regels)"),
    "background_quantile_laeq": _t("LAeq quantile (previous rules)", "LAeq-kwantiel (vorige regels)"),
    "emergence_min_laeq_db": _t("rise judged from (dB(A))", "stijging beoordeeld vanaf (dB(A))"),
    "duration_correction": _t("French duration correction", "Franse duurcorrectie"),
    "min_duration_s": _t("shortest episode (s)", "kortste episode (s)"),
    "gap_merge_s": _t("gaps joined up to (s)", "onderbrekingen samengevoegd tot (s)"),
    "min_coverage": _t("minimum coverage", "minimale dekking"),
    "node_combine": _t("meters of one courtyard combined by", "meters van één binnenplaats gecombineerd als"),
    "lookback_s": _t("complaint: look back (s)", "klacht: terugkijken (s)"),
    "grace_s": _t("complaint: look ahead (s)", "klacht: vooruitkijken (s)"),
    "visit_lookback_s": _t("visit: look back (s)", "controle: terugkijken (s)"),
    "permutations": _t("permutations of the test", "permutaties van de toets"),
    "seed": _t("random seed", "startgetal toeval"),
}  # fmt: skip


#: values of the rules file's settings that are words
SETTING_VALUE = {
    "quiet_laeq": _t("LAeq of the preceding minutes", "LAeq van de voorafgaande minuten"),
    "la90": _t("LA90 (previous rules)", "LA90 (vorige regels)"),
    "specific": _t("specific level (residual subtracted)", "specifiek niveau (residu afgetrokken)"),
    "total": _t("total level (previous rules)", "totaal niveau (vorige regels)"),
    "mean": _t("energy mean", "energetisch gemiddelde"),
    "sum": _t("energy sum (previous rules)", "energetische som (vorige regels)"),
}


def _setting_value(value: object, lang: str) -> str:
    if isinstance(value, bool):
        return {"en": "yes" if value else "no", "nl": "ja" if value else "nee"}[lang]
    if isinstance(value, str) and value in SETTING_VALUE:
        return SETTING_VALUE[value][lang]
    return str(value)


# --------------------------------------------------------------------- formatting
def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None, nd: int = 1) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{nd}f}"


def _when(t_ms: int | None, tz: str, lang: str) -> str:
    """``za 2026-03-07 22:10`` (local time)."""
    if t_ms is None:
        return "–"
    d = local_datetime(t_ms, tz)
    return f"{WEEKDAYS[lang][d.weekday()]} {d:%Y-%m-%d %H:%M}"


def _clock(t_ms: int | None, tz: str) -> str:
    return "–" if t_ms is None else f"{local_datetime(t_ms, tz):%H:%M}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _e(text: str) -> str:
    return html.escape(text)


# ------------------------------------------------------------------- level series
@dataclass(frozen=True)
class LevelSeries:
    """Per-minute levels of one site for the traces (times UTC ms).

    ``quiet_db`` is the LAeq with the episodes' minutes left out; ``held`` the
    ``(first, stop, residual)`` minute index spans of the episodes. The residual and
    the limit are computed per trace (:meth:`window`), so a year of minutes costs
    only the minutes that are shown.
    """

    site: str
    t_ms: NDArray[np.int64]
    laeq_db: NDArray[np.float64]
    quiet_db: NDArray[np.float64]
    held: tuple[tuple[int, int, float], ...]
    rules: Rules

    def window(
        self, i0: int, i1: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """LAeq, residual and limit of minutes ``i0 .. i1 - 1``."""
        rules = self.rules
        window_n = max(1, rules.background_window_s // 60)
        lo = max(0, i0 - window_n)
        residual = residual_db(
            self.quiet_db[lo:i1], window_n, rules.residual_quantile, max(1, window_n // 2)
        )[i0 - lo :].copy()
        for a, b, value in self.held:
            a, b = max(a, i0), min(b, i1)
            if b > a:
                residual[a - i0 : b - i0] = value if math.isfinite(value) else np.nan
        limit = limit_threshold_db(
            limit_for(period_of(self.t_ms[i0:i1], rules), rules), residual, rules
        )
        return self.laeq_db[i0:i1], residual, limit


def limit_threshold_db(
    limit_db: NDArray[np.float64], residual_db_: NDArray[np.float64], rules: Rules
) -> NDArray[np.float64]:
    """The total level at which the limit rule fires, for the trace.

    The limits apply to the specific level, the total with the residual subtracted by
    energy (ISO 1996-2), which needs the total at least ``specific_min_db`` above the
    residual. The specific level exceeds the limit ``L`` exactly when the total exceeds
    ``max(10·log10(10^(L/10) + 10^(L_res/10)), L_res + specific_min_db)``, so the trace
    draws that line against the total LAeq: 50 dB on a 40 dB residual is 50.4 dB, on a
    55 dB street 58.0 dB (the energy sum, 56.2 dB, is less than 3 dB above it), 45 dB on
    a 49 dB residual 52.0 dB. Without a residual (or
    with the previous rules, limits on the total) the limit itself.
    """
    if rules.absolute_level != "specific":
        return limit_db
    with np.errstate(invalid="ignore"):
        esum = 10.0 * np.log10(
            np.power(10.0, limit_db / 10.0) + np.power(10.0, residual_db_ / 10.0)
        )
        thr = np.maximum(esum, residual_db_ + rules.specific_min_db)
    out: NDArray[np.float64] = np.where(np.isfinite(residual_db_), thr, limit_db)
    return out


def level_series(grid: SiteGrid, rules: Rules, episodes: Sequence[Any]) -> LevelSeries:
    """The site's LAeq per minute (energy mean of its steps), for the residual level and
    the limit of the period in force (:meth:`LevelSeries.window`).

    The residual is the LAeq of the preceding ``background_window_s`` (ISO 1996-1
    §3.4.5, an LAeq, not LA90) of the minutes outside episodes, held during each
    episode at the value that episode was judged against (:attr:`Episode.residual_db`),
    as the detector does. Leaving the episodes' minutes out also after an episode keeps
    the trace's residual at the sound without the source (the detector's own trailing
    residual would rise for 10 minutes after a loud episode; the trace shows the
    quantity the limits are about).
    """
    t = grid.t_ms
    minute0 = grid.t0_ms - grid.t0_ms % _MIN_MS
    idx = (t - minute0) // _MIN_MS
    n = int(idx[-1]) + 1 if idx.size else 0
    e = np.where(np.isfinite(grid.laeq_db), np.power(10.0, grid.laeq_db / 10.0), 0.0)
    cnt = np.bincount(idx, weights=np.isfinite(grid.laeq_db).astype(np.float64), minlength=n)
    tot = np.bincount(idx, weights=e, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        laeq = np.where(cnt > 0, 10.0 * np.log10(tot / np.maximum(cnt, 1)), np.nan)
    t_min = minute0 + np.arange(n, dtype=np.int64) * _MIN_MS
    spans = []
    quiet = laeq.copy()
    for ep in episodes:
        if ep.site != grid.site:
            continue
        a = max(0, (ep.start_ms - minute0) // _MIN_MS)
        b = max(0, min(n, -(-(ep.end_ms - minute0) // _MIN_MS)))
        quiet[a:b] = np.nan  # the source is not its own residual, during or after it
        spans.append((int(a), int(b), float(ep.residual_db)))
    return LevelSeries(grid.site, t_min, laeq, quiet, tuple(spans), rules)


def _trace(
    series: LevelSeries | None,
    site_episodes: Sequence[tuple[int, int]],
    marker_ms: int,
    tz: str,
    title: str,
) -> str:
    if series is None:
        return ""
    a, b = marker_ms - TRACE_BEFORE_MS, marker_ms + TRACE_AFTER_MS
    i0, i1 = (int(i) for i in np.searchsorted(series.t_ms, [a, b]))
    if i1 <= i0:
        return ""
    laeq, residual, limit = series.window(i0, i1)
    first_hour = a - a % _HOUR_MS + _HOUR_MS
    labels = [(t, _clock(t, tz)) for t in range(first_hour, b + 1, _HOUR_MS)]
    eps = [(s, e) for s, e in site_episodes if s < b and e > a]
    return trace_svg(
        Trace(
            t_ms=series.t_ms[i0:i1],
            laeq_db=laeq,
            residual_db=residual,
            limit_db=limit,
            t0_ms=a,
            t1_ms=b,
            episodes=eps,
            marker_ms=marker_ms,
            labels=labels,
            title=title,
        )
    )


# -------------------------------------------------------------------------- texts
def findings_text(s: Mapping[str, Any], lang: str, rules: Rules | None = None) -> list[str]:
    """The findings in plain sentences (totals or one site's ``summary`` section)."""
    c, v, e, a = s["complaints"], s["visits"], s["episodes"], s["association"]
    look_h = (rules.visit_lookback_s if rules is not None else 10_800) / 3600.0
    out: list[str] = []
    if not c["total"]:
        out.append(TEXT["no_complaints"][lang])
    else:
        out.append(
            _t(
                f"Of {c['total']} complaints, {c['corroborated']} "
                f"({_pct(c['corroboration_rate'])}) coincide with measured nuisance; for "
                f"{c.get('not_corroborated', 0)} no nuisance was measured"
                + (
                    f", and for {c['no_data']} nothing was being measured at the time."
                    if c["no_data"]
                    else "."
                ),
                f"Van de {c['total']} klachten vallen er {c['corroborated']} "
                f"({_pct(c['corroboration_rate'])}) samen met gemeten overlast; bij "
                f"{c.get('not_corroborated', 0)} was er geen overlast gemeten"
                + (f" en bij {c['no_data']} was er toen geen meting." if c["no_data"] else "."),
            )[lang]
        )
    if c.get("median_lag_minutes") is not None:
        lag = c["median_lag_minutes"]
        out.append(
            _t(
                f"The median time from the onset of nuisance to the complaint was {lag:.0f} "
                "minutes.",
                f"Tussen het begin van de overlast en de klacht zat mediaan {lag:.0f} minuten.",
            )[lang]
        )
    late = v.get("median_minutes_after_end")
    if not v["total"]:
        out.append(TEXT["no_visits"][lang])
    else:
        out.append(
            _t(
                f"Of {v['total']} visits, {v['during_nuisance']} ({_pct(v['hit_rate'])}) came "
                f"while nuisance was going on, {v['after_nuisance']} after it had stopped"
                + (f" (median {late:.0f} minutes late)" if late is not None else "")
                + f", and {v['nothing']} when no nuisance had been measured in the {look_h:g} h "
                "before."
                + (
                    f" {v['no_data']} came when nothing was being measured."
                    if v.get("no_data")
                    else ""
                ),
                f"Van de {v['total']} controles kwamen er {v['during_nuisance']} "
                f"({_pct(v['hit_rate'])}) tijdens overlast, {v['after_nuisance']} nadat die was "
                "gestopt"
                + (f" (mediaan {late:.0f} minuten te laat)" if late is not None else "")
                + f", en bij {v['nothing']} was er in de {look_h:g} uur ervoor geen overlast "
                "gemeten."
                + (f" Bij {v['no_data']} was er geen meting." if v.get("no_data") else ""),
            )[lang]
        )
    out.append(
        _t(
            f"{e['count']} episodes of nuisance were measured; {e['without_complaint']} "
            f"({_pct(e['without_complaint_rate'])}) had no complaint at all. "
            "No complaint is not no problem.",
            f"Er zijn {e['count']} episodes van overlast gemeten; {e['without_complaint']} "
            f"({_pct(e['without_complaint_rate'])}) daarvan zonder enige klacht. "
            "Geen klacht betekent niet geen probleem.",
        )[lang]
    )
    out.append(_p_text(a, c["total"], lang))
    if s.get("marks"):
        out.extend(marks_text(s["marks"], lang))
    return out


def marks_text(m: Mapping[str, Any], lang: str) -> list[str]:
    """Residents' marks ("ik heb nu last") in plain sentences."""
    if not m["total"]:
        return [
            {
                "nl": "Bewoners hebben in deze periode niet gemeld dat ze last hadden.",
                "en": "Residents did not mark any nuisance in this period.",
            }[lang]
        ]
    out = [
        _t(
            f"Residents marked 'it bothers me now' {m['total']} times ({m['households']} "
            f"households); {m['matched']} of these came while nuisance was measured, "
            f"{m['not_matched']} when none was"
            + (f", and {m['no_data']} when nothing was being measured." if m["no_data"] else ".")
            + f" {m['episodes_with_marks']} episodes drew a resident's mark; "
            f"{m['episodes_with_neither']} episodes drew neither a complaint nor a mark.",
            f"Bewoners meldden {m['total']} keer 'ik heb nu last' ({m['households']} "
            f"huishoudens); bij {m['matched']} daarvan werd op dat moment overlast gemeten, "
            f"bij {m['not_matched']} geen overlast"
            + (f" en bij {m['no_data']} was er geen meting." if m["no_data"] else ".")
            + f" {m['episodes_with_marks']} episodes kregen een melding van bewoners; "
            f"{m['episodes_with_neither']} episodes kregen geen klacht en geen melding.",
        )[lang]
    ]
    p = m["association"]["p_value"]
    if p is not None:
        out.append(
            _t(
                f"If the marks were unrelated to the measured nuisance, marks shifted in time "
                f"would match it this well in {_pct_small(p)} of cases.",
                f"Als de meldingen los stonden van de gemeten overlast, zou een samenhang zo "
                f"sterk als deze bij in de tijd verschoven meldingen in {_pct_small(p)} van de "
                "gevallen voorkomen.",
            )[lang]
        )
    return out


def _p_text(a: Mapping[str, Any], n_complaints: int, lang: str) -> str:
    p = a.get("p_value")
    if not n_complaints:
        return {
            "en": "Without complaints there is nothing to test for association.",
            "nl": "Zonder klachten valt er geen samenhang te toetsen.",
        }[lang]
    if p is None:
        return {
            "en": "There were too few data for a test of association.",
            "nl": "Voor een toets op samenhang waren te weinig gegevens.",
        }[lang]
    head = (
        _t(
            "Complaints and measured nuisance are associated. ",
            "Klachten en gemeten overlast hangen samen. ",
        )
        if p < 0.05
        else _t(
            "The association between complaints and measured nuisance cannot be told apart "
            "from chance. ",
            "De samenhang tussen klachten en gemeten overlast is niet te onderscheiden van "
            "toeval. ",
        )
    )
    return (
        head[lang]
        + _t(
            f"If complaints were unrelated to the measurements, an agreement at least this large "
            f"would arise in {_pct_small(p)} of the times the complaints are shifted in time "
            f"(p = {p:.3f}).",
            f"Als klachten los zouden staan van de metingen, zou een overeenkomst zo groot als "
            f"deze of groter voorkomen bij {_pct_small(p)} van de keren dat de klachten "
            f"in de tijd verschoven worden (p = {p:.3f}).",
        )[lang]
    )


def _association_method(a: Mapping[str, Any], lang: str) -> str:
    """The test, in the report's language (summary.json keeps the English method)."""
    if a.get("p_value") is None:
        return {
            "en": "No association test was possible (too few complaints or days).",
            "nl": "Er was geen toets op samenhang mogelijk (te weinig klachten of dagen).",
        }[lang]
    n = a.get("permutations", 0)
    unit = (
        _t(
            "whole weeks (keeping the daily and weekly rhythm)",
            "hele weken (dag- en weekritme blijven behouden)",
        )
        if a.get("shift_unit") == "week"
        else _t(
            "whole days (keeping the daily rhythm; too few weeks to shift by weeks)",
            "hele dagen (het dagritme blijft behouden; te weinig weken om per week te verschuiven)",
        )
    )[lang]
    return _t(
        f"Test of association: each courtyard's complaint times are shifted {n} times at "
        f"random by {unit}, within the analysed period. Each time, the complaints that then "
        "coincide with measured nuisance are counted; p is the share of shifts with at least "
        "as many as in reality (one-sided).",
        f"Toets op samenhang: de klachttijden van elke binnenplaats worden {n} keer "
        f"willekeurig verschoven over {unit}, binnen de geanalyseerde periode. Telkens "
        "wordt geteld hoeveel klachten dan met gemeten overlast samenvallen; p is het "
        "aandeel verschuivingen met minstens zoveel als in werkelijkheid (eenzijdig).",
    )[lang]


def _pct_small(p: float) -> str:
    return f"{100 * p:.1f}%" if p < 0.1 else f"{100 * p:.0f}%"


def method_text(rules: Rules, lang: str) -> list[str]:
    """What counts as nuisance, with the values of the rules, for a council member."""
    d, ev, n = rules.day_start_h, rules.evening_start_h, rules.night_start_h
    ld, le, ln = rules.limits_db()
    ed, ee, en = rules.emergences_db()
    win = rules.background_window_s // 60
    out = [
        _t(
            "Meters in the courtyard measure the sound level in dB(A) every minute. The meters "
            "of one courtyard are averaged by energy: they hear the same sound.",
            "Meters in de binnenplaats meten elke minuut het geluidsniveau in dB(A). Meters van "
            "één binnenplaats worden energetisch gemiddeld: ze horen hetzelfde geluid.",
        ),
        _t(
            f"The residual level is the usual sound without the source: the energy-average "
            f"level (LAeq) of the {win} minutes before. During nuisance it is held at its "
            "value at the start, so the nuisance never counts as its own background.",
            f"Het residuele niveau is het gewone geluid zonder de bron: het energetisch "
            f"gemiddelde niveau (LAeq) van de {win} minuten ervoor. Tijdens overlast blijft het "
            "vastgehouden op de waarde van het begin, zodat de overlast zichzelf niet als "
            "achtergrond meetelt.",
        ),
    ]
    if rules.absolute_enabled:
        out.append(
            _t(
                f"Nuisance counts when the sound of the source alone (the specific level: the "
                f"total minus the residual, by energy) over 5 minutes is above {ld:g} dB(A) by "
                f"day ({d:02d}–{ev:02d} h), above {le:g} dB(A) in the evening ({ev:02d}–{n:02d} "
                f"h) or above {ln:g} dB(A) at night ({n:02d}–{d:02d} h).",
                f"Overlast telt mee als het geluid van de bron alleen (het specifieke niveau: "
                f"het totaal min het residu, energetisch) over 5 minuten boven {ld:g} dB(A) ligt "
                f"overdag ({d:02d}–{ev:02d} uur), boven {le:g} dB(A) 's avonds ({ev:02d}–{n:02d} "
                f"uur) of boven {ln:g} dB(A) 's nachts ({n:02d}–{d:02d} uur).",
            )
        )
    if rules.emergence_enabled:
        out.append(
            _t(
                f"Nuisance also counts when the level over 5 minutes rises more than {ed:g} dB "
                f"(day), {ee:g} dB (evening) or {en:g} dB (night) above the residual.",
                f"Overlast telt ook mee als het niveau over 5 minuten meer dan {ed:g} dB "
                f"(overdag), {ee:g} dB ('s avonds) of {en:g} dB ('s nachts) boven het residu "
                "uitsteekt.",
            )
        )
    out.append(
        _t(
            f"An episode lasts at least {rules.min_duration_s // 60} minutes; gaps of up to "
            f"{rules.gap_merge_s // 60} minutes are bridged. A complaint is corroborated when "
            f"nuisance was measured between {rules.lookback_s // 60} minutes before the "
            f"incident began and {rules.grace_s // 60} minutes after it was reported.",
            f"Een episode duurt minstens {rules.min_duration_s // 60} minuten; "
            f"onderbrekingen tot {rules.gap_merge_s // 60} minuten tellen mee. Een klacht is "
            f"bevestigd als er tussen {rules.lookback_s // 60} minuten vóór het begin van het "
            f"incident en {rules.grace_s // 60} minuten na de melding overlast gemeten is.",
        )
    )
    if rules.node_combine != "mean" or rules.residual != "quiet_laeq":
        out.append(
            _t(
                "Note: these are the previous rules (meters summed, LA90 background), "
                "kept for comparison only.",
                "Let op: dit zijn de vorige regels (meters opgeteld, LA90-achtergrond), "
                "alleen bewaard ter vergelijking.",
            )
        )
    return [t[lang] for t in out]


# ------------------------------------------------------------------------ tables
def _table(rows: Sequence[Sequence[str]], header: Sequence[str], cls: str = "") -> str:
    """Cells are HTML already escaped by the caller."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(_row(r) for r in rows)
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _row(cells: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _items_table(
    kind: str, header: Sequence[str], items: Sequence[tuple[str, str, Sequence[str], str]]
) -> str:
    """Complaints or visits: per (id, verdict, cells, trace) one ``tbody`` with the row and,
    below it across all columns, the level trace (none past :data:`MAX_TRACES`)."""
    body = "".join(
        f'<tbody class="item" id="{kind}-{_e(item_id)}" data-verdict="{_e(verdict)}">'
        + _row(cells)
        + (f'<tr class="trace"><td colspan="{len(header)}">{trace}</td></tr>' if trace else "")
        + "</tbody>"
        for item_id, verdict, cells, trace in items
    )
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f'<table class="items"><thead><tr>{head}</tr></thead>{body}</table>'


def _episode_cells(ep: Any, tz: str, lang: str) -> list[str]:
    if ep is None:
        return ["–"] * 6
    return [
        _e(f"{_clock(ep.start_ms, tz)}–{_clock(ep.end_ms, tz)}"),
        _num(ep.laeq_db),
        _num(ep.lafmax_db),
        _num(ep.bass_db),
        _e(RULE.get(ep.rule, _t(ep.rule, ep.rule))[lang]),
        _num(ep.specific_db),
    ]


def complaints_table(
    complaints: Sequence[ComplaintVerdict],
    series: Mapping[str, LevelSeries],
    site_eps: Mapping[str, Sequence[tuple[int, int]]],
    tz: str,
    lang: str,
) -> str:
    """Every complaint: its verdict, the matched episode, the lag and its trace."""
    if not complaints:
        return f"<p>{_e(TEXT['no_complaints'][lang])}</p>"
    header = {
        "en": ["complaint", "courtyard", "received / incident", "verdict", "episode",
               "LAeq", "LAFmax", "bass", "rule", "specific", "lag (min)"],
        "nl": ["klacht", "binnenplaats", "ontvangen / incident", "oordeel", "episode",
               "LAeq", "LAFmax", "bas", "regel", "specifiek", "vertraging (min)"],
    }[lang]  # fmt: skip
    parts = []
    for k, cv in enumerate(complaints):
        c = cv.complaint
        cells = [
            _e(c.id),
            _e(c.site),
            _e(_when(c.received_ms, tz, lang)) + "<br>" + _e(_when(c.incident_start_ms, tz, lang)),
            _e(COMPLAINT_VERDICT[cv.verdict][lang]),
            *_episode_cells(cv.episode, tz, lang),
            _num(cv.lag_min, 0),
        ]
        trace = ""
        if k < MAX_TRACES:
            trace = _trace(
                series.get(c.site),
                site_eps.get(c.site, ()),
                c.incident_start_ms,
                tz,
                f"{c.id} {c.site}",
            )
        parts.append((c.id, cv.verdict, cells, trace))
    capped = (
        f"<p>{_e(TEXT['traces_capped'][lang].format(n=MAX_TRACES))}</p>"
        if len(complaints) > MAX_TRACES
        else ""
    )
    return _items_table("complaint", header, parts) + capped


def _visit_timing(vv: VisitVerdict, look_h: float, lang: str) -> str:
    if vv.verdict == "during":
        m = vv.minutes_from_start or 0.0
        return {
            "en": f"{m:.0f} min after the nuisance began",
            "nl": f"{m:.0f} min na het begin van de overlast",
        }[lang]
    if vv.verdict == "after":
        m = vv.minutes_after_end or 0.0
        return {
            "en": f"{m:.0f} min after the nuisance ended",
            "nl": f"{m:.0f} min na het einde van de overlast",
        }[lang]
    if vv.verdict == "nothing":
        text = {
            "en": f"no nuisance measured in the {look_h:g} h before",
            "nl": f"geen overlast gemeten in de {look_h:g} uur ervoor",
        }[lang]
        if vv.minutes_before_start is not None:
            m = vv.minutes_before_start
            text += {
                "en": f"; nuisance began {m:.0f} min after the visit left",
                "nl": f"; overlast begon {m:.0f} min na vertrek",
            }[lang]
        return text
    return {"en": "nothing was being measured", "nl": "er werd toen niet gemeten"}[lang]


def visits_table(
    visits: Sequence[VisitVerdict],
    series: Mapping[str, LevelSeries],
    site_eps: Mapping[str, Sequence[tuple[int, int]]],
    rules: Rules,
    lang: str,
) -> str:
    """Every visit: its verdict, timing against the episode, complaints answered, trace."""
    tz = rules.timezone
    if not visits:
        return f"<p>{_e(TEXT['no_visits'][lang])}</p>"
    look_h = rules.visit_lookback_s / 3600.0
    header = {
        "en": ["visit", "courtyard", "arrived", "outcome", "verdict", "timing",
               "episode", "LAeq", "answered complaints", "response (min)"],
        "nl": ["controle", "binnenplaats", "aankomst", "uitkomst", "oordeel", "tijdstip",
               "episode", "LAeq", "antwoord op klachten", "reactietijd (min)"],
    }[lang]  # fmt: skip
    parts = []
    for k, vv in enumerate(visits):
        v = vv.visit
        ep = vv.episode
        cells = [
            _e(v.id),
            _e(v.site),
            _e(_when(v.arrived_ms, tz, lang)),
            _e(OUTCOME.get(v.outcome, _t(v.outcome, v.outcome))[lang]),
            _e(VISIT_VERDICT[vv.verdict][lang]),
            _e(_visit_timing(vv, look_h, lang)),
            "–" if ep is None else _e(f"{_clock(ep.start_ms, tz)}–{_clock(ep.end_ms, tz)}"),
            "–" if ep is None else _num(ep.laeq_db),
            _e(", ".join(vv.answers)) or "–",
            _num(vv.response_min, 0),
        ]
        trace = ""
        if k < MAX_TRACES:
            trace = _trace(
                series.get(v.site), site_eps.get(v.site, ()), v.arrived_ms, tz, f"{v.id} {v.site}"
            )
        parts.append((v.id, vv.verdict, cells, trace))
    return _items_table("visit", header, parts)


def _heatmaps(f: Findings, lang: str) -> str:
    maps = (
        (f.hour_of_week_minutes, "minutes", False),
        (f.hour_of_week_complaints, "complaints", True),
    )
    svgs = (
        heatmap_svg(
            grid,
            title=TEXT[title][lang],
            weekdays=WEEKDAYS[lang],
            hour_label=TEXT["hour"][lang],
            integer=integer,
        )
        for grid, title, integer in maps
    )
    return '<div class="heats">' + "".join(svgs) + "</div>"


def site_sections(f: Findings, summary: Mapping[str, Any], rules: Rules, lang: str) -> str:
    """One section per courtyard with its own numbers and week heat maps."""
    out = []
    for site in f.sites:
        s = summary.get("sites", {}).get(site)
        if s is None:
            continue
        items = "".join(f"<li>{_e(t)}</li>" for t in findings_text(s, lang, rules))
        out.append(
            f'<section class="site" id="site-{_e(site)}"><h3>{_e(TEXT["site"][lang])} '
            f"{_e(site)}</h3><ul>{items}</ul>{_heatmaps(f.for_site(site), lang)}</section>"
        )
    return "".join(out)


# -------------------------------------------------------------------------- plan
def _reason_text(bt: Mapping[str, Any], lang: str) -> str:
    code = bt.get("reason_code")
    if code == "too_few_weeks":
        weeks = int(bt.get("history_weeks") or 0)
        complete = int(bt.get("complete_weeks") or 0)
        return _t(
            f"Not back-tested: the levels span {_plural(weeks, 'week', 'weeks')}, {complete} of "
            "them complete; a back-test needs a complete week, at least half measured, after an "
            "earlier week to learn from. The plan is made from all the measurements there are.",
            f"Niet teruggetoetst: de metingen beslaan {_plural(weeks, 'week', 'weken')}, "
            f"waarvan {complete} volledig; een terugtoets vraagt een volledige, minstens "
            "half gemeten week na een eerdere week om op te leren. Het plan is gemaakt uit "
            "alle metingen die er zijn.",
        )[lang]
    if code == "no_levels_in_windows":
        return {
            "en": "No rate: in the held-out weeks none of the plan's windows had measurements "
            "(a meter was off or not yet installed).",
            "nl": "Geen percentage: in de teruggetoetste weken had geen van de vensters van het "
            "plan metingen (een meter stond uit of hing er nog niet).",
        }[lang]
    reason = bt.get("reason")
    if reason:
        return {"en": f"No rate: {reason}", "nl": f"Geen percentage: {reason}"}[lang]
    return ""


def plan_section(plan: Mapping[str, Any], lang: str) -> str:
    """The plan's windows and its back-test, or why there is no back-test rate."""
    days = WEEKDAYS[lang]
    rows = []
    for w in plan.get("windows", []):
        wd = w.get("weekday")
        if isinstance(wd, str) and wd.capitalize() in _EN_DAYS:
            wd = _EN_DAYS.index(wd.capitalize())
        day = days[wd] if isinstance(wd, int) and 0 <= wd < 7 else str(wd)
        prob = w.get("probability")
        rows.append(
            [_e(str(w.get("site", ""))), _e(day), _e(str(w.get("start", ""))),
             _e(str(w.get("end", ""))), _pct(prob) if isinstance(prob, int | float) else ""]
        )  # fmt: skip
    header = {
        "en": ["courtyard", "weekday", "start", "end", "probability of nuisance"],
        "nl": ["binnenplaats", "dag", "begin", "eind", "kans op overlast"],
    }[lang]
    bt = plan.get("backtest", {}) or {}

    def fmt(x: Any) -> str:
        if isinstance(x, dict):
            x = x.get("rate", x.get("value"))
        return _pct(x) if isinstance(x, int | float) else "–"

    weeks = bt.get("weeks")
    if isinstance(bt.get("hit_rate_plan"), int | float):
        n = int(weeks or 0)
        text = {
            "en": f"Back-test over {_plural(n, 'week', 'weeks')}: the plan found nuisance on "
            f"{fmt(bt.get('hit_rate_plan'))} of its visits, the real visits on "
            f"{fmt(bt.get('hit_rate_historical'))}, a random plan of the same size on "
            f"{fmt(bt.get('hit_rate_random'))}.",
            "nl": f"Terugtoets over {_plural(n, 'week', 'weken')}: het plan trof overlast bij "
            f"{fmt(bt.get('hit_rate_plan'))} van de controles, de echte controles bij "
            f"{fmt(bt.get('hit_rate_historical'))}, een willekeurig plan van dezelfde omvang bij "
            f"{fmt(bt.get('hit_rate_random'))}.",
        }[lang]
    else:
        text = (
            _reason_text(bt, lang)
            or {
                "en": "The plan has no back-test.",
                "nl": "Het plan is niet teruggetoetst.",
            }[lang]
        )
    return f"<p>{_e(text)}</p>" + _table(rows, [_e(h) for h in header])


# ------------------------------------------------------------------------ render
def render_html(
    f: Findings,
    summary: dict[str, Any],
    rules: Rules,
    meta: dict[str, Any],
    *,
    lang: str = "nl",
    plan: dict[str, Any] | None = None,
    series: Mapping[str, LevelSeries] | None = None,
    timelines: Sequence[str] = (),
) -> str:
    """The self-contained report (template ``report.html`` next to this module)."""
    tz = rules.timezone
    series = series or {}
    template = resources.files("klankkast.analysis").joinpath("report.html").read_text("utf-8")
    findings = "".join(f"<li>{_e(t)}</li>" for t in findings_text(summary, lang, rules))
    site_eps: dict[str, list[tuple[int, int]]] = {}
    for ep in f.episodes:
        site_eps.setdefault(ep.site, []).append((ep.start_ms, ep.end_ms))
    how = "".join(f"<p>{_e(t)}</p>" for t in method_text(rules, lang))
    keys = {
        "laeq": _t("LAeq per minute", "LAeq per minuut"),
        "residual": _t("residual", "residu"),
        "limit": _t(
            "limit of the period, for the source alone (added to the residual)",
            "grenswaarde van de dagperiode, voor de bron alleen (opgeteld bij het residu)",
        ),
        "episode": _t("episode", "episode"),
        "marker": _t("complaint / arrival", "klacht / aankomst"),
    }
    legend = (
        f'<p class="legend">{_e(TEXT["legend"][lang])}</p><p class="legend">'
        + " ".join(
            f'<span class="sw" style="background:{COLOURS[k]}"></span>{_e(label[lang])}'
            for k, label in keys.items()
        )
        + "</p>"
    )
    rules_rows = [
        [_e(RULE_LABEL.get(k, _t(k, k))[lang]), _e(_setting_value(v, lang))]
        for k, v in rules.as_dict().items()
    ]
    method = (
        f"<p>{_e(_association_method(summary['association'], lang))}</p>"
        f"<p>{_e(TEXT['legal'][lang])}</p>"
        + _table(rules_rows, [_e(x) for x in (["setting", "value"] if lang == "en"
                                              else ["instelling", "waarde"])])
    )  # fmt: skip
    plan_html = ""
    if plan is not None:
        plan_html = (
            f"<section><h2>{_e(TEXT['plan'][lang])}</h2>{plan_section(plan, lang)}</section>"
        )
    values = {
        "lang": lang,
        "title": _e(TEXT["title"][lang]),
        "period_label": _e(TEXT["period"][lang]),
        "period": _e(f"{meta.get('from', '')} – {meta.get('to', '')}"),
        "sites": _e(", ".join(meta.get("sites", []))),
        "findings_h": _e(TEXT["findings"][lang]),
        "findings": findings,
        "how_h": _e(TEXT["how"][lang]),
        "how": how,
        "complaints_h": _e(TEXT["complaints_h"][lang]),
        "complaints": legend + complaints_table(f.complaints, series, site_eps, tz, lang),
        "visits_h": _e(TEXT["visits_h"][lang]),
        "visits": visits_table(f.visits, series, site_eps, rules, lang),
        "sites_h": _e(TEXT["sites_h"][lang]),
        "site_sections": site_sections(f, summary, rules, lang),
        "heatmap_h": _e(TEXT["heatmap"][lang]),
        "heatmap": _heatmaps(f, lang),
        "timeline_h": _e(TEXT["timeline"][lang]),
        "timeline": "".join(f'<img alt="timeline" src="{src}">' for src in timelines),
        "plan": plan_html,
        "method_h": _e(TEXT["method"][lang]),
        "method": method,
        "json_h": _e(TEXT["json"][lang]),
        "summary_json": _e(json.dumps(summary, indent=1, ensure_ascii=False)[:20000]),
    }
    out = template
    for key, value in values.items():
        out = out.replace("{{" + key + "}}", value)
    return out
