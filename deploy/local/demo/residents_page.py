"""The residents' part of the demo run: the ``[courtyard]`` section of central.toml,
invitation letters per courtyard (``klankkast-courtyard invite``), the residents' marks
written through the page's own InfluxDB adapter, and the page itself
(``klankkast-courtyard serve``) opened as a resident's browser would."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from services import Influx, free_port

from ._common import DB, Options, say
from .children import Children, has_courtyard, run_step, tool
from .scenario import Timeline, TrueEpisode

__all__ = ["residents_step", "serve_residents"]


def residents_step(
    opts: Options,
    tl: Timeline,
    out: Path,
    work: Path,
    influx: Influx,
    children: Children,
    central: Path,
    episodes: list[TrueEpisode],
) -> dict[str, Any]:
    """The residents' part of the demo: the ``[courtyard]`` section of central.toml,
    invitation letters per courtyard, and residents' marks planted through the page's
    own InfluxDB adapter (before the report, which reads them). The page itself starts
    after the plan (:func:`serve_residents`). Returns the ``residents`` part of the
    summary."""
    if not has_courtyard():
        say("klankkast-courtyard is not installed (the central extra); no residents' page")
        return {"page": None, "why": "klankkast-courtyard is not installed"}

    from klankkast.courtyard.config import InfluxConfig
    from klankkast.courtyard.influxstore import InfluxCourtyard, MarkPoint
    from klankkast.courtyard.tokens import household_hash

    from .residents import courtyard_section, invitation_ids, invitation_link, plant_marks

    logs = out / "logs"
    port = free_port()
    names = {s: f"{s} ({d})"[:100] for s, d, _n in opts.sites}
    with central.open("a") as f:
        f.write(courtyard_section(names, work, influx.url, DB, port))
    influx.query(f'CREATE RETENTION POLICY "experience" ON "{DB}" DURATION 365d REPLICATION 1')
    cy = [*tool("klankkast-courtyard"), "--config", str(central)]
    letters = out / "letters"
    per_site = 4
    for site in names:
        run_step(
            "klankkast-courtyard invite",
            [*cy, "invite", "--site", site, "--count", str(per_site), "--out", str(letters)],
            logs / "courtyard.log",
        )
    ids = {site: invitation_ids(letters, site) for site in names}
    key = (work / "courtyard.key").read_bytes().strip()
    marks = plant_marks(
        [(e.site, e.kind, e.start_ms, e.end_ms) for e in episodes],
        {site: len(v) for site, v in ids.items()},
        tl.start_ms,
        tl.end_ms,
        opts.seed,
    )
    store = InfluxCourtyard(InfluxConfig(url=influx.url, database=DB))
    store.start()
    try:
        points = [
            MarkPoint(m.site, m.t_ms, household_hash(key, ids[m.site][m.household_index]),
                      m.kind, m.severity)
            for m in marks
        ]  # fmt: skip
        for i in range(0, len(points), 1000):
            store.write_marks(points[i : i + 1000])
    finally:
        store.close()
    n_follow = sum(1 for m in marks if m.follows_episode)
    say(
        f"{per_site} residents' invitation letters per courtyard in {letters.name}/, "
        f"{len(marks)} marks planted ({n_follow} during planted nuisance)"
    )
    site0 = opts.sites[0][0]
    return {
        "page": f"http://127.0.0.1:{port}",
        "invitation": invitation_link(letters, ids[site0][1], f"http://127.0.0.1:{port}"),
        "invitation_status": None,
        "letters": str(letters),
        "marks": len(marks),
        "marks_during_planted_nuisance": n_follow,
        "households": sum(len(v) for v in ids.values()),
    }


def serve_residents(
    residents: dict[str, Any], central: Path, plan_json: Path, children: Children, logs: Path
) -> None:
    """Start the residents' page (with the plan's windows when there is a plan) and open
    an invitation link as a resident's browser would: ``invitation_status`` is the
    answer."""
    if not residents.get("page"):
        return
    import http.cookiejar

    from .residents import with_plan

    if plan_json.is_file():
        central.write_text(with_plan(central.read_text(), plan_json))
    cmd = [*tool("klankkast-courtyard"), "--config", str(central), "serve"]
    children.spawn("courtyard", cmd, logs / "courtyard.log")
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    status: int | None = None
    deadline = time.monotonic() + 30.0
    while status is None and time.monotonic() < deadline:
        try:
            with opener.open(residents["invitation"], timeout=5) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (OSError, urllib.error.URLError):
            time.sleep(0.3)
    residents["invitation_status"] = status
    say(f"residents' page on {residents['page']}: {residents['invitation']} (answered {status})")
