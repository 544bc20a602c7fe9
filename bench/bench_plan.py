"""Benchmark: the patrol plan and the live-alert core.

Prints figures and ratios against peers measured in the same run:

* plan: fold a year of per-minute coverage and episodes for S sites onto local weeks,
  fit, choose K windows exactly (dynamic programme) and back-test W weeks; the peer
  is a greedy choice (best window first, skipping overlaps) on the same scores:
  expected hits per week of both, and the time;
* alerts: frames per second through :class:`AlertEngine` (node reordering,
  combination, confirmation) against the bare shared ``StreamingDetector`` fed the
  same combined steps: the engine's overhead.

Usage: ``python bench/bench_plan.py [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import tracemalloc
from zoneinfo import ZoneInfo

import numpy as np

from klankkast.alerts.engine import AlertEngine, AlertSettings
from klankkast.analysis import patrol
from klankkast.analysis.episodes import StreamingDetector
from klankkast.analysis.rules import load_rules

AMS = ZoneInfo("Europe/Amsterdam")


def synthetic_history(sites: int, weeks: int, seed: int = 1) -> patrol.History:
    """Per-minute coverage; per site a weekly pattern (two evenings) plus random bursts."""
    rng = np.random.default_rng(seed)
    monday = dt.date(2025, 1, 6)
    t0 = int(dt.datetime.combine(monday, dt.time(0), tzinfo=AMS).timestamp() * 1000)
    t1 = t0 + weeks * 7 * 86_400_000
    times = np.arange(t0, t1, 60_000, dtype=np.int64)
    names = [f"site{i:02d}" for i in range(sites)]
    episodes: dict[str, list[tuple[int, int]]] = {}
    for s in names:
        days = rng.choice(7, size=2, replace=False)
        hour = int(rng.integers(19, 23))
        eps = []
        for w in range(weeks):
            for d in days:
                if rng.random() < 0.8:
                    a = t0 + ((w * 7 + int(d)) * 24 + hour) * 3_600_000
                    eps.append((a, a + int(rng.integers(60, 180)) * 60_000))
            for _ in range(4):
                a = t0 + w * 7 * 86_400_000 + int(rng.integers(0, 7 * 1440)) * 60_000
                eps.append((a, a + 30 * 60_000))
        episodes[s] = eps
    return patrol.build_history(names, dict.fromkeys(names, times), episodes)


def greedy(score: np.ndarray, capacity: int, step_min: int, duration_min: int) -> float:
    """Peer: take the best remaining window, skip those overlapping a chosen one."""
    n = score.shape[1]
    span = -(-duration_min // step_min)
    order = np.argsort(-score, axis=None)
    taken: dict[int, list[int]] = {}
    total = 0.0
    for flat in order:
        s, c = divmod(int(flat), n)
        if any(min(abs(c - o), n - abs(c - o)) < span for o in taken.get(s, [])):
            continue
        taken.setdefault(s, []).append(c)
        total += float(score[s, c])
        if sum(len(v) for v in taken.values()) == capacity:
            break
    return total


def bench_plan(sites: int, weeks: int, capacity: int, backtest_weeks: int) -> None:
    tracemalloc.start()
    t = time.perf_counter()
    hist = synthetic_history(sites, weeks)
    t_hist = time.perf_counter() - t
    t = time.perf_counter()
    plan = patrol.build_plan(
        hist, patrol.PlanSpec(capacity=capacity, duration_min=120, weeks=backtest_weeks)
    )
    t_plan = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    hits = patrol.window_hits(hist, 30, 120)
    model = patrol.fit(*hits, hist.sites, 30, 120)
    score = np.where(model.site_observed[:, None], model.mean, 0.0)
    t = time.perf_counter()
    chosen = patrol.choose_windows(score, capacity, 30, 120)
    t_dp = time.perf_counter() - t
    dp_value = float(sum(score[s, c] for s, c in chosen))
    t = time.perf_counter()
    g_value = greedy(score, capacity, 30, 120)
    t_g = time.perf_counter() - t
    bt = plan.backtest.to_json()
    print(f"plan: {sites} sites x {weeks} weeks of minute coverage, K={capacity}, D=120 min")
    print(f"  fold onto local weeks      {t_hist:7.2f} s")
    print(
        f"  fit + plan + back-test W={backtest_weeks} {t_plan:7.2f} s  (peak traced {peak:.0f} MB)"
    )
    print(
        f"  back-test hit rate: plan {bt['hit_rate_plan']}, random {bt['hit_rate_random']}, "
        f"ratio {bt['plan_vs_random']}"
    )
    print(
        f"  exact DP: {dp_value:.3f} expected hits/week in {1000 * t_dp:.0f} ms; "
        f"greedy peer: {g_value:.3f} in {1000 * t_g:.0f} ms; DP/greedy = {dp_value / g_value:.4f}"
    )


def bench_alerts(sites: int, nodes: int, seconds: int) -> None:
    rules = load_rules(None)
    t0 = int(dt.datetime(2026, 6, 10, 21, 0, tzinfo=AMS).timestamp() * 1000)
    rng = np.random.default_rng(2)
    level = 38.0 + rng.uniform(-1.5, 1.5, size=(sites, nodes, seconds))
    level[:, :, 600:1800] = 70.0
    eng = AlertEngine(rules, AlertSettings())
    t = time.perf_counter()
    n_alerts = 0
    for s in range(seconds):
        tm = t0 + s * 1000
        for i in range(sites):
            for j in range(nodes):
                la = float(level[i, j, s])
                n_alerts += len(
                    eng.frame(f"s{i}", f"n{j}", tm, la, la + 6, la + 5, now_ms=tm, seq=s)
                )
    t_eng = time.perf_counter() - t
    frames = sites * nodes * seconds
    combined = 10 * np.log10(np.power(10, level / 10).sum(axis=1))
    dets = [StreamingDetector(rules, 1, site=f"s{i}") for i in range(sites)]
    t = time.perf_counter()
    for s in range(seconds):
        tm = t0 + s * 1000
        for i in range(sites):
            la = float(combined[i, s])
            dets[i].update(tm, la, la + 5, la + 6, None)
    t_det = time.perf_counter() - t
    print(
        f"alerts: {sites} sites x {nodes} nodes x {seconds} s ({frames} frames, {n_alerts} alerts)"
    )
    print(
        f"  AlertEngine {frames / t_eng:9.0f} frames/s ({t_eng:.2f} s); bare StreamingDetector "
        f"{sites * seconds / t_det:9.0f} steps/s ({t_det:.2f} s); engine/detector time = "
        f"{t_eng / t_det:.2f}"
    )
    print(f"  live capacity at 1 frame/s per node: ~{frames / t_eng:.0f} nodes per core")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        bench_plan(sites=3, weeks=6, capacity=4, backtest_weeks=2)
        bench_alerts(sites=2, nodes=2, seconds=2400)
    else:
        bench_plan(sites=50, weeks=52, capacity=20, backtest_weeks=8)
        bench_alerts(sites=20, nodes=2, seconds=2400)


if __name__ == "__main__":
    main()
