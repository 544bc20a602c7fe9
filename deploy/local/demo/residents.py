"""The demo's residents: the courtyard page, invitations and planted marks (issue 19).

:func:`plant_marks` is pure: for each planted episode a few of the courtyard's
households mark "ik heb nu last" while it is on, and one household per courtyard marks
now and then when nothing is going on (not every mark has a measured cause). The
demo writes them with the page's own InfluxDB adapter
(:class:`klankkast.courtyard.influxstore.InfluxCourtyard`) under the households of
real invitations (made by ``klankkast-courtyard invite``), so the printed link opens a
page that shows "your" marks. :func:`courtyard_section` is the ``[courtyard]`` part of
the demo's ``central.toml``; :func:`invitation_link` reads a link back from a letter
(the token exists nowhere else).
"""

from __future__ import annotations

import csv
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .scenario import HOUR_MS, MIN_MS

#: the kinds the page offers, by the demo's episode kinds
_KIND = {"party": "music", "music": "music", "voices": "voices"}


@dataclass(frozen=True)
class PlantedMark:
    site: str
    household_index: int  # index into the site's invitations
    t_ms: int
    kind: str | None
    severity: int | None
    follows_episode: bool


def plant_marks(
    episodes: Sequence[tuple[str, str, int, int]],
    households: dict[str, int],
    start_ms: int,
    end_ms: int,
    seed: int,
) -> list[PlantedMark]:
    """Marks of ``households[site]`` households per site.

    ``episodes`` are ``(site, kind, start_ms, end_ms)``. Households ``1..n-1`` of a site
    each mark a planted episode with probability 0.6, at a whole minute from 5 minutes
    after its start; household 0 marks about twice a week at random hours at least 3 h
    from any episode of its courtyard.
    """
    rng = np.random.default_rng([seed, 19])
    out: list[PlantedMark] = []
    for site, kind, a, b in episodes:
        n = households.get(site, 0)
        if b - a < 10 * MIN_MS:
            continue
        for h in range(1, n):
            if rng.random() < 0.6:
                t = int(rng.integers(a + 5 * MIN_MS, b - MIN_MS)) // MIN_MS * MIN_MS
                sev = int(rng.integers(3, 6))
                out.append(PlantedMark(site, h, t, _KIND.get(kind, "other"), sev, True))
    weeks = max(1, round((end_ms - start_ms) / (7 * 24 * HOUR_MS)))
    for site, n in households.items():
        if n == 0:
            continue
        busy = [(a, b) for s, _k, a, b in episodes if s == site]
        placed = 0
        for _ in range(200 * weeks):
            if placed >= 2 * weeks:
                break
            t = int(rng.integers(start_ms + HOUR_MS, end_ms - HOUR_MS)) // MIN_MS * MIN_MS
            if all(t < a - 3 * HOUR_MS or t > b + 3 * HOUR_MS for a, b in busy):
                out.append(PlantedMark(site, 0, t, None, None, False))
                placed += 1
    out.sort(key=lambda m: (m.site, m.t_ms))
    return out


def courtyard_section(
    sites: dict[str, str],
    work: Path,
    influx_url: str,
    database: str,
    port: int,
) -> str:
    """The ``[courtyard]`` table of the demo's central.toml (plain HTTP on loopback)."""
    key = work / "courtyard.key"
    key.write_text(secrets.token_hex(32) + "\n")
    key.chmod(0o600)
    names = "\n".join(f'{site} = "{name}"' for site, name in sites.items())
    return f"""
[courtyard]
listen_host = "127.0.0.1"
listen_port = {port}
base_url = "http://127.0.0.1:{port}"
secret_file = "{key}"
database = "{work / "courtyard.sqlite"}"
cookie_secure = false

[courtyard.sites]
{names}

[courtyard.influxdb]
url = "{influx_url}"
database = "{database}"
"""


def with_plan(central_toml: str, plan_json: Path) -> str:
    """``central_toml`` with the page showing ``plan_json``'s patrol windows (the page
    needs the file to exist when it starts)."""
    return central_toml.replace(
        "\ncookie_secure = false\n", f'\ncookie_secure = false\nplan = "{plan_json}"\n', 1
    )


def invitation_ids(letters: Path, site: str) -> list[str]:
    """The ids of ``site``'s invitations from the letters' ``index.csv``, in order."""
    with (letters / "index.csv").open(newline="", encoding="utf-8") as f:
        return [row["invitation"] for row in csv.DictReader(f) if row["site"] == site]


def invitation_link(letters: Path, invitation_id: str, base_url: str) -> str:
    """The link printed in the letter of ``invitation_id``."""
    with (letters / "index.csv").open(newline="", encoding="utf-8") as f:
        name = next(r["file"] for r in csv.DictReader(f) if r["invitation"] == invitation_id)
    text = (letters / name).read_text(encoding="utf-8")
    m = re.search(re.escape(base_url) + r"/i/[A-Za-z0-9_-]+", text)
    if m is None:
        raise ValueError(f"no invitation link in {letters / name}")
    return m.group(0)
