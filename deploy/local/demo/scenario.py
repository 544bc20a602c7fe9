"""The demo's scenario, pure: the period, the nuisance planted in it, and the complaints
and visits that behave like those in practice.

Everything here is a function of its arguments and a seed (numpy's ``default_rng``):
no clock, no files, no network. The same ``now`` and seed give the same truth, so the
tests can check it, and the demo's headline numbers are the same on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "AMS",
    "COMPLAINT_COLUMNS",
    "DAY_MS",
    "HOUR_MS",
    "MIN_MS",
    "SITES",
    "VISIT_COLUMNS",
    "Timeline",
    "TrueEpisode",
    "audio_party",
    "iso_local",
    "local",
    "make_reports",
    "make_timeline",
    "plan_episodes",
    "to_ms",
    "truth_rows",
]

AMS = ZoneInfo("Europe/Amsterdam")
MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

#: The demo's courtyards: (site id, description, nodes). "jordaan" has the Friday/
#: Saturday parties and the real-audio node; "pijp" a neighbour who plays bass-heavy
#: music on some evenings; "oost" is mostly quiet.
SITES = (
    ("jordaan", "closed courtyard, parties on Friday and Saturday nights", 2),
    ("pijp", "neighbour's music with bass on some evenings", 2),
    ("oost", "quiet courtyard, the odd late evening", 2),
)


@dataclass(frozen=True)
class TrueEpisode:
    """Nuisance planted in the data (the truth the analysis should find)."""

    site: str
    kind: str  # "party" | "music" | "voices"
    start_ms: int
    end_ms: int
    laeq_db: float
    #: "synthesised" (planted in the per-minute levels), or "audio" (the start is in
    #: the real-audio window and measured by the node's code; the rest is planted)
    source: str = "synthesised"


@dataclass(frozen=True)
class Timeline:
    start_ms: int  # local midnight, N weeks before today
    end_ms: int  # now, floored to the minute
    audio_start_ms: int  # the real-audio window (a Friday or Saturday evening)
    audio_end_ms: int
    seconds_start_ms: int  # synthetic 1-s frames from here to end_ms


def local(ms: int) -> datetime:
    """UTC ms -> the Amsterdam wall-clock time."""
    return datetime.fromtimestamp(ms / 1000, AMS)


def to_ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def iso_local(ms: int) -> str:
    """UTC ms -> ISO 8601 in Amsterdam time with its offset, to the second."""
    return local(ms).isoformat(timespec="seconds")


def make_timeline(now_ms: int, weeks: int, audio_s: float, seconds_s: float) -> Timeline:
    """The demo's period: ``weeks`` whole weeks of local days up to now.

    The real-audio window starts at 21:30 local on the most recent Friday or
    Saturday evening that lies wholly inside the period.
    """
    end_ms = now_ms - now_ms % MIN_MS
    today = local(end_ms).replace(hour=0, minute=0, second=0, microsecond=0)
    start = (today - timedelta(days=7 * weeks)).replace(tzinfo=None).replace(tzinfo=AMS)
    start_ms = to_ms(start)
    day = today
    audio_start_ms = start_ms
    while day.replace(tzinfo=None) > start.replace(tzinfo=None):
        cand = datetime(day.year, day.month, day.day, 21, 30, tzinfo=AMS)
        latest_end = to_ms(cand) + audio_s * 1000 + 3 * HOUR_MS + seconds_s * 1000
        if cand.weekday() in (4, 5) and latest_end < end_ms:
            audio_start_ms = to_ms(cand)
            break
        day -= timedelta(days=1)
    return Timeline(
        start_ms=start_ms,
        end_ms=end_ms,
        audio_start_ms=audio_start_ms,
        audio_end_ms=audio_start_ms + round(audio_s * 1000),
        seconds_start_ms=end_ms - round(seconds_s * 1000),
    )


def audio_party(audio_s: float, tl: Timeline) -> tuple[int, int]:
    """The party of the real-audio window, (start, end) in UTC ms: it starts 40 % into
    the window and lasts two hours past its end."""
    p0 = round(audio_s * 0.4)
    return tl.audio_start_ms + p0 * 1000, tl.audio_end_ms + 2 * HOUR_MS


def plan_episodes(
    tl: Timeline,
    sites: Sequence[str],
    seed: int,
    audio_party: tuple[int, int],
    audio_party_db: float = 64.0,
    audio_measured: bool = True,
) -> list[TrueEpisode]:
    """The nuisance of the scenario, per site (seeded, deterministic).

    - ``jordaan``: a party on 90 % of Friday and Saturday nights, ~22:00 to ~01:30,
      62-68 dB(A);
      the one in the real-audio window is ``audio_party``: measured from the audio while
      the audio lasts, planted at ``audio_party_db`` after it.
    - ``pijp``: the neighbour's music on ~25 % of evenings, 50-120 min from 20:00-23:00,
      52-58 dB(A).
    - ``oost`` and any other site: a late evening now and then (~8 % of days), 45-55 dB(A).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[TrueEpisode] = []
    day = local(tl.start_ms)
    while to_ms(day) < tl.end_ms:
        for site in sites:
            wd = day.weekday()
            if site == sites[0]:
                if wd in (4, 5) and rng.random() < 0.9:
                    s = day.replace(hour=22) + timedelta(minutes=float(rng.normal(0, 15)))
                    e = day.replace(hour=23) + timedelta(hours=2.5 + float(rng.normal(0, 0.5)))
                    out.append(
                        TrueEpisode(site, "party", to_ms(s), to_ms(e), float(rng.uniform(62, 68)))
                    )
            elif site == sites[1 % len(sites)]:
                if rng.random() < 0.25:
                    s = day.replace(hour=20) + timedelta(minutes=float(rng.uniform(0, 180)))
                    e = s + timedelta(minutes=float(rng.uniform(50, 120)))
                    out.append(
                        TrueEpisode(site, "music", to_ms(s), to_ms(e), float(rng.uniform(52, 58)))
                    )
            elif rng.random() < 0.08:
                s = day.replace(hour=21) + timedelta(minutes=float(rng.uniform(0, 120)))
                e = s + timedelta(minutes=float(rng.uniform(30, 90)))
                out.append(
                    TrueEpisode(site, "voices", to_ms(s), to_ms(e), float(rng.uniform(45, 55)))
                )
        day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        day = datetime(day.year, day.month, day.day, tzinfo=AMS)
    # the real-audio party replaces whatever was planned for that night at site 0
    a0, a1 = audio_party
    out = [
        e
        for e in out
        if not (
            e.site == sites[0]
            and e.start_ms < tl.audio_end_ms + 6 * HOUR_MS
            and e.end_ms > tl.audio_start_ms
        )
    ]
    out.append(
        TrueEpisode(
            sites[0], "party", a0, a1, audio_party_db, "audio" if audio_measured else "synthesised"
        )
    )
    out = [e for e in out if e.start_ms < tl.end_ms]
    return sorted(out, key=lambda e: (e.start_ms, e.site))


def truth_rows(episodes: Sequence[TrueEpisode]) -> list[dict[str, Any]]:
    """The planted episodes as ``truth.json`` holds them (local times, no NaN)."""
    return [
        asdict(e)
        | {
            "laeq_db": e.laeq_db if math.isfinite(e.laeq_db) else None,
            "start": iso_local(e.start_ms),
            "end": iso_local(e.end_ms),
        }
        for e in episodes
    ]


# --------------------------------------------------------------------------- complaints/visits
COMPLAINT_COLUMNS = (
    "id",
    "received_at",
    "incident_start",
    "incident_end",
    "site",
    "category",
    "source",
)
VISIT_COLUMNS = ("id", "arrived_at", "left_at", "site", "outcome", "complaint_ids")


def make_reports(
    episodes: Sequence[TrueEpisode], tl: Timeline, sites: Sequence[str], seed: int
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Complaints and visits that behave like those in practice (seeded).

    Complaints: for about half the parties and a third of the music evenings one to
    three residents complain, 10-90 minutes after the onset (log-normal lag, median
    ~30 min), giving an incident start somewhat before they called; about one in six
    complaints is unfounded (no measured nuisance near it). Visits: an officer comes
    for ~60 % of complaints, hours to days later (log-normal, median ~5 h), and
    mostly finds nothing; a few routine daytime patrols find nothing either.
    """
    import numpy as np

    rng = np.random.default_rng(seed + 7)
    complaints = _founded_complaints(rng, episodes, tl)
    complaints += _unfounded_complaints(rng, episodes, tl, sites, max(1, len(complaints) // 6))
    complaints.sort(key=lambda c: c["received"])
    rows_c = []
    for i, c in enumerate(complaints, 1):
        c["id"] = f"M-{2026_0000 + i}"
        rows_c.append(
            {
                "id": c["id"],
                "received_at": iso_local(c["received"]),
                "incident_start": iso_local(c["start"]),
                "incident_end": iso_local(c["end"]) if c["end"] else "",
                "site": c["site"],
                "category": c["category"],
                "source": c["source"],
            }
        )
    visits = _visits(rng, complaints, tl, sites)
    rows_v = []
    for i, v in enumerate(visits, 1):
        left = v["arrived"] + round(float(rng.uniform(10, 30)) * MIN_MS)
        during = any(
            e.site == v["site"] and e.start_ms <= v["arrived"] < e.end_ms for e in episodes
        )
        if during:
            outcome = str(rng.choice(["warning", "fine", "nothing_found"], p=[0.6, 0.2, 0.2]))
        else:
            outcome = "nothing_found" if rng.random() < 0.95 else "other"
        rows_v.append(
            {
                "id": f"H-{i:04d}",
                "arrived_at": iso_local(v["arrived"]),
                "left_at": iso_local(left),
                "site": v["site"],
                "outcome": outcome,
                "complaint_ids": ";".join(v["complaints"]),
            }
        )
    return rows_c, rows_v


def _founded_complaints(
    rng: Any, episodes: Sequence[TrueEpisode], tl: Timeline
) -> list[dict[str, Any]]:
    """One to three complaints for some of the episodes, some time after the onset."""
    import numpy as np

    out: list[dict[str, Any]] = []
    categories = {"party": "feest", "music": "muziek", "voices": "stemmen"}
    sources = ("signalen", "telefoon", "app")
    for ep in episodes:
        p = {"party": 0.55, "music": 0.35, "voices": 0.15}[ep.kind]
        if rng.random() >= p:
            continue
        for _ in range(int(rng.integers(1, 4 if ep.kind == "party" else 2))):
            lag_min = float(np.clip(rng.lognormal(math.log(30), 0.6), 8, 150))
            received = ep.start_ms + round(lag_min * MIN_MS)
            if received >= tl.end_ms:
                continue
            start = received - round(float(rng.uniform(5, 45)) * MIN_MS)
            end = (
                received + round(float(rng.uniform(0, 60)) * MIN_MS) if rng.random() < 0.3 else None
            )
            out.append(
                {
                    "received": received,
                    "start": start,
                    "end": end,
                    "site": ep.site,
                    "category": categories[ep.kind],
                    "source": str(rng.choice(sources)),
                    "episode": ep,
                }
            )
    return out


def _random_day_ms(rng: Any, tl: Timeline) -> int:
    """A random whole day of the period: its start in UTC ms, whole days from the period's start."""
    return tl.start_ms + int(rng.integers(0, max(1, (tl.end_ms - tl.start_ms) // DAY_MS))) * DAY_MS


def _unfounded_complaints(
    rng: Any, episodes: Sequence[TrueEpisode], tl: Timeline, sites: Sequence[str], n: int
) -> list[dict[str, Any]]:
    """``n`` complaints in the evening, at least 3 h from any planted episode of the site."""
    out: list[dict[str, Any]] = []
    busy = [(e.site, e.start_ms - 3 * HOUR_MS, e.end_ms + 3 * HOUR_MS) for e in episodes]
    tries = 0
    while n > 0 and tries < 1000:
        tries += 1
        site = str(rng.choice(list(sites)))
        received = _random_day_ms(rng, tl) + round(float(rng.uniform(19, 26)) * HOUR_MS)
        if received >= tl.end_ms or any(s == site and a <= received <= b for s, a, b in busy):
            continue
        out.append(
            {
                "received": received,
                "start": received - 20 * MIN_MS,
                "end": None,
                "site": site,
                "category": "overig",
                "source": "telefoon",
                "episode": None,
            }
        )
        n -= 1
    return out


def _visits(
    rng: Any, complaints: Sequence[dict[str, Any]], tl: Timeline, sites: Sequence[str]
) -> list[dict[str, Any]]:
    """Visits for ~60 % of the complaints, hours to days later, and routine patrols."""
    import numpy as np

    visits: list[dict[str, Any]] = []
    for c in complaints:
        if rng.random() >= 0.6:
            continue
        lag_h = float(np.clip(rng.lognormal(math.log(5), 1.0), 0.75, 96))
        arrived = c["received"] + round(lag_h * HOUR_MS)
        if arrived >= tl.end_ms:
            continue
        visits.append({"arrived": arrived, "site": c["site"], "complaints": [c["id"]]})
    for _ in range(max(2, len(visits) // 4)):  # routine daytime patrols
        arrived = _random_day_ms(rng, tl) + round(float(rng.uniform(10, 17)) * HOUR_MS)
        if arrived < tl.end_ms:
            visits.append(
                {"arrived": arrived, "site": str(rng.choice(list(sites))), "complaints": []}
            )
    visits.sort(key=lambda v: v["arrived"])
    return visits
