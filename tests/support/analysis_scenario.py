"""Synthetic courtyards with known truth, for the analysis tests (not a test module).

Each site has a steady background (35 dB(A), LA90 33 dB) on a 1-min grid and
planted episodes at 62 dB(A), far above every period limit (50/45/40) and the
emergence (3-5 dB over the background), so the episodes the rules must find are
exactly the planted ones. Complaints are drawn from planted episodes (founded),
placed far from any episode (unfounded) or in a measurement gap (no data); visits
are placed during an episode, a known number of minutes after one ended, or in
quiet hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from klankkast.analysis.episodes import SiteGrid
from klankkast.analysis.importer import Complaint, Visit
from klankkast.analysis.timeutil import parse_time_ms

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
BACKGROUND_DB = 35.0
EPISODE_DB = 62.0


@dataclass
class Scenario:
    t0_ms: int
    t1_ms: int
    grids: list[SiteGrid]
    planted: dict[str, list[tuple[int, int]]]
    complaints: list[Complaint] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    truth: dict[str, object] = field(default_factory=dict)


def make_scenario(
    seed: int,
    *,
    sites: int = 3,
    days: int = 42,
    founded: int = 40,
    unfounded: int = 10,
    correlated: bool = True,
    gap_day: int | None = 5,
    start: str = "2026-03-02T00:00:00+01:00",
) -> Scenario:
    """A scenario; with ``correlated=False`` every complaint time is uniform and independent."""
    rng = np.random.default_rng(seed)
    t0 = parse_time_ms(start)
    n = days * 1440
    t1 = t0 + n * MIN
    grids: list[SiteGrid] = []
    planted: dict[str, list[tuple[int, int]]] = {}
    gaps: dict[str, tuple[int, int]] = {}
    for s in range(sites):
        site = f"yard{s + 1}"
        laeq = BACKGROUND_DB + rng.normal(0.0, 0.3, n)
        la90 = laeq - 2.0
        eps = []
        for d in range(days):
            if rng.random() < 0.75:
                # one evening/night episode, 21:00-03:00 local-ish (UTC offsets ignored here)
                start_min = d * 1440 + 20 * 60 + int(rng.integers(0, 360))
                dur = int(rng.integers(20, 91))
                if start_min + dur < n - 1:
                    eps.append((start_min, dur))
        for start_min, dur in eps:
            laeq[start_min : start_min + dur] = EPISODE_DB + rng.normal(0.0, 0.3, dur)
            la90[start_min : start_min + dur] = EPISODE_DB - 3.0
        if gap_day is not None:
            g0 = gap_day * 1440 + 9 * 60  # a 6-hour hole in the morning
            gaps[site] = (g0, g0 + 360)
            laeq[g0 : g0 + 360] = np.nan
            la90[g0 : g0 + 360] = np.nan
            eps = [(a, d) for a, d in eps if a + d <= g0 or a >= g0 + 360]
        grids.append(
            SiteGrid(
                site=site,
                t0_ms=t0,
                step_s=60,
                laeq_db=laeq,
                lceq_db=laeq + 4.0,
                lafmax_db=laeq + 9.0,
                la90_db=la90,
            )
        )
        planted[site] = [(t0 + a * MIN, t0 + (a + d) * MIN) for a, d in eps]
    sc = Scenario(t0, t1, grids, planted)

    def quiet(site: str, t: int, margin: int) -> bool:
        return all(t < a - margin or t > b + margin for a, b in planted[site])

    names = list(planted)
    cid = 0
    founded_n = 0
    if correlated:
        for _ in range(founded):
            site = names[int(rng.integers(0, len(names)))]
            a, b = planted[site][int(rng.integers(0, len(planted[site])))]
            inc = a + int(rng.integers(0, (b - a) // MIN)) * MIN
            rec = inc + int(rng.integers(5, 60)) * MIN
            sc.complaints.append(Complaint(f"c{cid}", rec, inc, None, site, "music", "csv"))
            cid += 1
            founded_n += 1
        placed = 0
        while placed < unfounded:
            site = names[int(rng.integers(0, len(names)))]
            inc = t0 + int(rng.integers(1 * 1440, days * 1440 - 1440)) * MIN
            g0, g1 = gaps.get(site, (0, 0))
            if (
                not quiet(site, inc, 3 * HOUR)
                or t0 + (g0 - 120) * MIN <= inc <= t0 + (g1 + 120) * MIN
            ):
                continue
            sc.complaints.append(
                Complaint(f"c{cid}", inc + 10 * MIN, inc, None, site, "voices", "csv")
            )
            cid += 1
            placed += 1
        no_data = 0
        if gap_day is not None:
            site = names[0]
            g0, g1 = gaps[site]
            inc = t0 + (g0 + 180) * MIN  # middle of the hole: window lies inside it
            sc.complaints.append(
                Complaint(f"c{cid}", inc + 5 * MIN, inc, inc + 10 * MIN, site, "", "csv")
            )
            cid += 1
            no_data = 1
        sc.truth.update(
            corroborated=founded_n, not_corroborated=unfounded, complaints_no_data=no_data
        )
    else:
        for _ in range(founded + unfounded):
            site = names[int(rng.integers(0, len(names)))]
            inc = t0 + int(rng.integers(0, days * 1440 - 120)) * MIN
            sc.complaints.append(Complaint(f"c{cid}", inc + 15 * MIN, inc, None, site, "", "csv"))
            cid += 1

    # visits: during, after (known minutes), nothing
    vid = 0
    after_minutes = []
    during = after = nothing = 0
    for site in names:
        eps = planted[site]
        for a, b in eps[2:8]:
            vid += 1
            sc.visits.append(Visit(f"v{vid}", a + 5 * MIN, min(b, a + 15 * MIN), site, "warning"))
            during += 1
        for k, (_a, b) in enumerate(eps[10:16]):
            nxt = eps[10 + k + 1][0] if 10 + k + 1 < len(eps) else t1
            late = int(rng.integers(5, 90))
            arrive = b + late * MIN
            if arrive + 20 * MIN >= nxt:
                continue
            vid += 1
            sc.visits.append(Visit(f"v{vid}", arrive, arrive + 20 * MIN, site, "nothing_found"))
            after_minutes.append(late)
            after += 1
        for d in range(days // 2, min(days - 1, days // 2 + 6)):
            t = t0 + d * DAY + 12 * HOUR  # noon: episodes are evening/night only
            if quiet(site, t, 4 * HOUR):
                vid += 1
                sc.visits.append(Visit(f"v{vid}", t, t + 30 * MIN, site, "nothing_found"))
                nothing += 1
    sc.truth.update(
        episodes=sum(len(v) for v in planted.values()),
        visits_during=during,
        visits_after=after,
        visits_nothing=nothing,
        median_minutes_after_end=float(np.median(after_minutes)) if after_minutes else None,
    )
    return sc


def _iso(t_ms: int | None) -> str:
    import datetime as dt

    if t_ms is None:
        return ""
    return dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def write_files(sc: Scenario, out, *, two_nodes: bool = True) -> dict[str, str]:
    """Write levels.csv (1-min rows; the first site as two co-located nodes, one 1 dB
    above the site level and one 10·log10(2 − 10^0.1) = −1.30 dB below, so that their
    energy mean is the site level), complaints.csv and visits.csv; return the paths."""
    import csv
    import math
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    below = 10 * math.log10(2.0 - 10**0.1)
    with (out / "levels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "site", "node", "LAeq", "LCeq", "LAFmax", "LA90"])
        for k, g in enumerate(sc.grids):
            t = g.t_ms
            nodes = (("n1", 1.0), ("n2", below)) if (two_nodes and k == 0) else (("n1", 0.0),)
            for i in range(len(g)):
                if np.isnan(g.laeq_db[i]):
                    continue
                for node, d in nodes:
                    w.writerow(
                        [int(t[i]), g.site, node, f"{g.laeq_db[i] + d:.4f}",
                         f"{g.lceq_db[i] + d:.4f}", f"{g.lafmax_db[i]:.4f}",
                         f"{g.la90_db[i] + d:.4f}"]
                    )  # fmt: skip
    with (out / "complaints.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["id", "received_at", "incident_start", "incident_end", "site", "category", "source"]
        )
        for c in sc.complaints:
            w.writerow(
                [c.id, _iso(c.received_ms), _iso(c.incident_start_ms), _iso(c.incident_end_ms),
                 c.site, c.category, c.source]
            )  # fmt: skip
    with (out / "visits.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "arrived_at", "left_at", "site", "outcome", "complaint_ids"])
        for v in sc.visits:
            w.writerow(
                [v.id, _iso(v.arrived_ms), _iso(v.left_ms), v.site, v.outcome,
                 ";".join(v.complaint_ids)]
            )  # fmt: skip
    return {k: str(out / f"{k}.csv") for k in ("levels", "complaints", "visits")}
