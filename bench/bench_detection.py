"""Benchmark: episode detection against known truth, new rules vs the previous ones.

For every background class of :mod:`klankkast.analysis.scenario` (quiet, busy street,
fluctuating with LAeq − LA90 of 3/6/10 dB, slow evening rise, rain/wind steps) it
generates sites with 1-3 nodes and planted music / voices / bangs, runs the default
rules and the pre-issue-15 rules (``rules.legacy.toml``: node sum, absolute limit on
the total level, LA90-median background) on the same rows, and prints per class:
episodes detected / planted, precision, recall (an episode is true when it overlaps a
planted source), median |start| and |end| error (detected − planted), false episodes
per week and site, and those on weather steps. Then the same at 1-s resolution (new
rules; the legacy LAeq-quantile background at 1 s costs minutes, so it is left out),
and the residual-estimator variants that justify the defaults.

Then the officer's figures of ``klankkast-analyze report`` (corroborated complaints,
visit hit rate, share of episodes without a complaint) on the issue's courtyard and on a
busy street, with complaints and visits drawn around the planted truth, against that
truth, for both rule sets.

Targets (issue 15): precision and recall >= 0.9 in every class but rain/wind, at most
0.5 false episodes per week and site, median |start error| <= 3 min at 1-min and
<= 60 s at 1-s resolution. ``tests/unit/analysis/test_analysis_detection.py`` asserts
them on reduced scenarios.

Usage: ``python bench/bench_detection.py [--quick]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from klankkast.analysis.rules import Rules, default_rules, legacy_rules
from klankkast.analysis.scenario import (
    CLASSES,
    Scenario,
    Score,
    evaluate,
    evaluate_reports,
    generate,
    reports,
)

TARGET_PR = 0.9
TARGET_FALSE = 0.5
TARGET_START_MIN_S = 180.0
TARGET_START_SEC_S = 60.0


def _row(cls: str, name: str, s: Score) -> str:
    return (
        f"{cls:13s} {name:6s} {s.detected:5d} {s.planted:4d} {s.precision:6.2f} {s.recall:6.2f} "
        f"{s.median_abs_start_s / 60:8.1f} {s.median_abs_end_s / 60:8.1f} "
        f"{s.false_per_week_site:8.2f} {s.weather_false_per_week_site:8.2f}"
    )


def _meets(cls: str, s: Score, start_limit_s: float) -> bool:
    if cls == "rain_wind":
        return True
    return (
        s.precision >= TARGET_PR
        and s.recall >= TARGET_PR
        and s.false_per_week_site <= TARGET_FALSE
        and s.median_abs_start_s <= start_limit_s
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="reduced scenarios (seconds)")
    args = ap.parse_args()
    weeks = 2.0 if args.quick else 8.0
    sec_weeks = 0.3 if args.quick else 1.0
    new, old = default_rules(), legacy_rules()
    head = (
        f"{'class':13s} {'rules':6s} {'eps':>5s} {'pl':>4s} {'prec':>6s} {'recall':>6s} "
        f"{'|start|m':>8s} {'|end|m':>8s} {'false/wk':>8s} {'weath/wk':>8s}"
    )
    print(f"1-min resolution, {weeks:g} weeks, 3 sites (1, 2, 3 nodes), seed 1")
    print(head)
    scenarios: dict[str, Scenario] = {}
    ok_all = True
    totals = {"new": 0.0, "legacy": 0.0}
    t_new = t_old = 0.0
    for cls in CLASSES:
        sc = generate(cls, weeks=weeks)
        scenarios[cls] = sc
        t = time.perf_counter()
        s_new = evaluate(sc, new)
        t_new += time.perf_counter() - t
        t = time.perf_counter()
        s_old = evaluate(sc, old)
        t_old += time.perf_counter() - t
        ok = _meets(cls, s_new, TARGET_START_MIN_S)
        ok_all &= ok
        totals["new"] += s_new.false_per_week_site
        totals["legacy"] += s_old.false_per_week_site
        print(_row(cls, "new", s_new) + ("" if ok else "  <- misses a target"))
        print(_row(cls, "legacy", s_old))
        if cls == "rain_wind":
            ratio = s_old.weather_false_per_week_site / max(s_new.weather_false_per_week_site, 1e-9)
            print(
                f"  rain/wind false episodes per week and site: new "
                f"{s_new.weather_false_per_week_site:.2f}, legacy "
                f"{s_old.weather_false_per_week_site:.2f} (legacy/new {ratio:.2f}); "
                "no spectral rule yet: the analysis loads no bands"
            )
    print(
        f"false episodes per week and site, summed over classes: new {totals['new']:.2f}, "
        f"legacy {totals['legacy']:.2f} (legacy/new "
        f"{totals['legacy'] / max(totals['new'], 1e-9):.1f}x)"
    )
    print(f"detection time: new {t_new:.2f} s, legacy {t_old:.2f} s (ratio {t_new / t_old:.2f})")

    print(f"\n1-s resolution, {sec_weeks:g} weeks, 2 sites, one source a day, new rules")
    print(head)
    for cls in ("quiet", "busy", "fluct6", "fluct10", "evening_rise"):
        sc = generate(cls, weeks=sec_weeks, sites=2, step_s=1, per_week=7)
        s_new = evaluate(sc, new)
        ok = _meets(cls, s_new, TARGET_START_SEC_S)
        ok_all &= ok
        print(_row(cls, "new", s_new) + f"  |start| {s_new.median_abs_start_s:.0f} s"
              + ("" if ok else "  <- misses a target"))  # fmt: skip

    print("\nresidual estimator variants (1-min, all classes but rain/wind): worst class")
    print(
        f"{'window_s':>8s} {'quantile':>8s} {'min prec':>8s} {'min rec':>8s} {'max false/wk':>12s}"
    )
    variants = [(600, 1.0), (600, 0.9), (600, 0.5), (900, 1.0), (1800, 1.0), (3600, 0.25)]
    if args.quick:
        variants = [(600, 1.0), (600, 0.9), (3600, 0.25)]
    for window_s, q in variants:
        rules: Rules = dataclasses.replace(new, background_window_s=window_s, residual_quantile=q)
        scores = [evaluate(sc, rules) for c, sc in scenarios.items() if c != "rain_wind"]
        print(
            f"{window_s:8d} {q:8.2f} {min(s.precision for s in scores):8.2f} "
            f"{min(s.recall for s in scores):8.2f} {max(s.false_per_week_site for s in scores):12.2f}"
            + ("  (default)" if (window_s, q) == (new.background_window_s, new.residual_quantile) else "")
        )  # fmt: skip
    print("\nthe officer's figures (klankkast-analyze report) against the planted truth")
    print(f"{'class':13s} {'rules':6s} {'eps':>5s} {'corrob.':>8s} {'hit rate':>8s} {'silent':>7s}")
    for cls in ("courtyard", "busy"):
        sc = scenarios[cls]
        rep = reports(sc)
        print(
            f"{cls:13s} {'truth':6s} {len(sc.planted):5d} {rep.founded:8d} "
            f"{rep.true_hit_rate:8.2f} {rep.true_silent_rate:7.2f}"
        )
        for name, rules_ in (("new", new), ("legacy", old)):
            f = evaluate_reports(sc, rep, rules_)
            print(
                f"{cls:13s} {name:6s} {f['episodes']:5.0f} {f['corroborated']:8.0f} "
                f"{f['hit_rate']:8.2f} {f['silent_rate']:7.2f}"
            )
    print(f"\ntargets met (all classes but rain/wind, 1-min and 1-s): {ok_all}")


if __name__ == "__main__":
    main()
