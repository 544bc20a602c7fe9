#!/usr/bin/env python3
"""Write the klankkast Grafana dashboards (``dashboards/*.json``) from one definition.

The JSON files are committed (Grafana provisions them as they are); this script is
their source, so the three dashboards share one datasource, one set of template
variables and one way of averaging levels. Run it after editing::

    .venv/bin/python deploy/grafana/build_dashboards.py

``tests/unit/deploy/test_central_grafana.py`` fails when the committed JSON and
this script disagree, and ``tests/integration/deploy/test_central_dashboards.py``
runs every query below against a real InfluxDB filled by the real ingest.

Conventions of the queries (InfluxQL, layout in ``deploy/influxdb/README.md``):

- levels are averaged as energy through the ``_e`` companions,
  ``10*log10(mean("LAeq_e"))`` -- never ``mean("LAeq")`` (an arithmetic dB mean);
  one-third-octave bands have no companion, so the spectrum converts them in a
  subquery (``pow(10, "LZeq_1000"/10)``) before averaging;
- maxima are maxima (``max("LAFmax")``), percentile levels are shown as the median
  of the per-minute values (a statistic of a statistic, labelled as such);
- 1-s frames are in ``"raw"."second"`` (30 days), minutes in ``"forever"."minute"``;
  status, node health, ingest statistics, and the analysis' complaints, visits and
  episodes in the default policy (``raw``), queried without a policy; the alerts of
  ``klankkast-alerts`` in ``"forever"."alert"`` (tags ``site`` and ``state``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"

DS = {"type": "influxdb", "uid": "klankkast-influxdb"}

#: IEC 61260-1 nominal one-third-octave mid-band frequencies, as on the wire
#: (``klankkast.sensor.wire.BAND_NOMINALS``; repeated here so the script needs
#: nothing but the standard library).
BANDS = (
    "20", "25", "31.5", "40", "50", "63", "80", "100", "125", "160", "200", "250",
    "315", "400", "500", "630", "800", "1000", "1250", "1600", "2000", "2500", "3150",
    "4000", "5000", "6300", "8000", "10000", "12500", "16000", "20000",
)  # fmt: skip

#: Default LAeq,5min limits of the episode rules (analysis/rules.default.toml): only the
#: week heat map's quick look uses the evening one; the level panels draw the limits the
#: analysis wrote from the rules actually in use (LIMIT below).
LIMITS_DB = {"night": 40, "evening": 45, "day": 50}

SITE = '"site" =~ /^$site$/'
NODE = '"node" =~ /^$node$/'

# measurements with their retention policy
SECOND = '"raw"."second"'
MINUTE = '"forever"."minute"'
# written without a retention policy: the database's default ("raw")
STATUS = '"status"'
HEALTH = '"node_health"'
STATS = '"ingest_stats"'
ALERT = '"forever"."alert"'  # klankkast-alerts writes it to "forever"; tag "state"
EPISODE = '"forever"."episode"'
COMPLAINT = '"forever"."complaint"'
VISIT = '"forever"."visit"'
#: headline numbers of the latest analysis run per site (klankkast-analyze report
#: --influx, klankkast.analysis.headline): InfluxQL cannot join complaints with
#: episodes, so corroboration and hit rates come from the analysis itself
ANALYSIS = '"forever"."analysis"'
#: residents' marks ("ik heb nu last", klankkast-courtyard): tags site and household
#: (a keyed hash), field mark = 1; retention policy "experience" (365 days)
EXPERIENCE = '"experience"."experience"'

#: Where the central web server (deploy/web/klankkast.conf.template, compose service
#: ``web``) serves the reports folder of ``klankkast-analyze run``: ``/reports/`` on the
#: TLS port the compose stack publishes (443 on the host, certificate valid for
#: localhost). The default of the text-box variable ``$reports``; change it in the
#: variable bar, with ``?var-reports=https://geluid.example.nl/reports`` in a bookmark,
#: or here (then run this script) for a public name.
REPORTS_URL = "https://localhost/reports"
#: The report links, relative to ``$reports``: what ``klankkast-analyze run`` keeps
#: current (``analysis/service.py``: ``latest`` -> the newest ``<date>`` folder with its
#: ``report/``, ``current-plan`` -> the newest ``<date>/plan``), and the folder itself
#: (the web server lists it).
REPORT_LINKS = (
    ("Latest report", "latest/report/report.html", "doc"),
    ("Patrol plan (calendar)", "current-plan/plan.ics", "doc"),
    ("All reports", "", "external link"),
)


def band_field(nominal: str) -> str:
    return "LZeq_" + nominal.replace(".", "p")


# --------------------------------------------------------------------------- helpers
def target(query: str, ref: str = "A", alias: str = "", fmt: str = "time_series") -> dict[str, Any]:
    t: dict[str, Any] = {
        "refId": ref,
        "datasource": DS,
        "rawQuery": True,
        "query": query,
        "resultFormat": fmt,
    }
    if alias:
        t["alias"] = alias
    return t


#: Grafana units: levels carry their frequency weighting (a bare "dB" hides whether a
#: number is A-, C- or Z-weighted)
DBA = "suffix: dB(A)"
DBZ = "suffix: dB(Z)"
DB_DIFF = "suffix: dB"


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


#: the period limits as written by the analysis (measurement "limit", one field per
#: period, klankkast.analysis.headline.limit_lines), in the colour of their period
LIMIT = '"forever"."limit"'
PERIOD_COLOURS = {"day": "#E69F00", "evening": "#CC79A7", "night": "#0072B2"}  # Okabe-Ito


def limit_target() -> dict[str, Any]:
    """The limit in force at each moment, per period (one series each)."""
    fields = ", ".join(f'last("{p}") AS "limit {p}"' for p in PERIOD_COLOURS)
    return target(
        f"SELECT {fields} FROM {LIMIT} WHERE {SITE} AND $timeFilter "
        "GROUP BY time($__interval) fill(none)",
        ref="L",
    )


def limit_overrides() -> list[dict[str, Any]]:
    return [
        {
            "matcher": {"id": "byName", "options": f"limit {p}"},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": colour}},
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 6]}},
                {"id": "custom.lineWidth", "value": 2},
            ],
        }
        for p, colour in PERIOD_COLOURS.items()
    ]


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def place(self, panel: dict[str, Any], w: int, h: int) -> dict[str, Any]:
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        return panel


def timeseries(
    title: str,
    targets: list[dict[str, Any]],
    unit: str = DBA,
    description: str = "",
    limits: bool = False,
    draw: str = "line",
) -> dict[str, Any]:
    custom: dict[str, Any] = {
        "drawStyle": draw,
        "lineWidth": 1,
        "fillOpacity": 0,
        "spanNulls": False,
        "showPoints": "never",
        "lineInterpolation": "stepAfter" if draw == "line" else "linear",
    }
    defaults: dict[str, Any] = {"unit": unit, "custom": custom}
    custom["thresholdsStyle"] = {"mode": "off"}
    overrides: list[dict[str, Any]] = []
    if limits:
        targets = [*targets, limit_target()]
        overrides = limit_overrides()
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    targets: list[dict[str, Any]],
    unit: str = "none",
    description: str = "",
    mappings: list[dict[str, Any]] | None = None,
    steps: dict[str, Any] | None = None,
    decimals: int | None = None,
    fmt_calc: str = "lastNotNull",
    fields: str = "",
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "mappings": mappings or []}
    if steps:
        defaults["thresholds"] = steps
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": [fmt_calc], "fields": fields, "values": fields != ""},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    }


def table(
    title: str,
    targets: list[dict[str, Any]],
    description: str = "",
    transformations: list[dict[str, Any]] | None = None,
    overrides: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "transformations": transformations or [],
        "fieldConfig": {"defaults": {"custom": {"align": "auto"}}, "overrides": overrides or []},
        "options": {"showHeader": True, "cellHeight": "sm"},
    }


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": query,
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


SITE_VAR = variable("site", "Site", 'SHOW TAG VALUES FROM "minute" WITH KEY = "site"')
NODE_VAR = variable("node", "Node", f'SHOW TAG VALUES FROM "minute" WITH KEY = "node" WHERE {SITE}')
#: the web server's reports address (no query: a text box with REPORTS_URL as default)
REPORTS_VAR = {
    "type": "textbox",
    "name": "reports",
    "label": "Reports address",
    "query": REPORTS_URL,
    "current": {"selected": False, "text": REPORTS_URL, "value": REPORTS_URL},
    "options": [{"selected": True, "text": REPORTS_URL, "value": REPORTS_URL}],
    "hide": 0,
}


def report_link(title: str, path: str, icon: str) -> dict[str, Any]:
    """A dashboard link to ``$reports/path`` in a new tab (no time range or variables
    appended: the web server serves files)."""
    return {
        "type": "link",
        "title": title,
        "url": f"${{reports}}/{path}",
        "icon": icon,
        "tooltip": "",
        "targetBlank": True,
        "asDropdown": False,
        "includeVars": False,
        "keepTime": False,
        "tags": [],
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[dict[str, Any]],
    variables: list[dict[str, Any]],
    annotations: list[dict[str, Any]] | None = None,
    time_from: str = "now-24h",
    refresh: str = "1m",
) -> dict[str, Any]:
    builtin = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["klankkast"],
        "timezone": "Europe/Amsterdam",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": [*variables, REPORTS_VAR]},
        "annotations": {"list": [builtin, *(annotations or [])]},
        "links": [
            {
                "type": "dashboards",
                "tags": ["klankkast"],
                "asDropdown": False,
                "title": "klankkast",
                "includeVars": True,
                "keepTime": True,
            },
            *(report_link(*link) for link in REPORT_LINKS),
        ],
        "panels": panels,
    }


def energy(field: str) -> str:
    """InfluxQL energy mean of a broadband Leq through its ``_e`` companion."""
    return f'10*log10(mean("{field}_e"))'


# --------------------------------------------------------------------------- courtyard now
def courtyard_now() -> dict[str, Any]:
    lay = Layout()
    where = f"{SITE} AND {NODE} AND $timeFilter"
    limits_txt = (
        "Dashed lines: the LAeq limit of the period in force at each moment (day orange, "
        "evening purple, night blue), from the rules file in its time zone (measurement "
        "'limit', written by the analysis); the rules apply it to the specific level "
        "(the total with the residual subtracted), so a background near a line is no "
        "episode. A measurement, not a legal verdict."
    )
    panels = [
        lay.place(
            timeseries(
                "LAeq per second (energy mean per interval)",
                [
                    target(
                        f'SELECT {energy("LAeq")} AS "LAeq" FROM {SECOND} WHERE {where} '
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="$tag_node",
                    )
                ],
                unit=DBA,
                description="A-weighted equivalent level from the 1-s frames, averaged as "
                "energy over each plotted interval (IEC 61672-1). " + limits_txt,
                limits=True,
            ),
            16,
            9,
        ),
        lay.place(
            stat(
                "Current alert state",
                [
                    target(
                        f'SELECT "state", "LAeq", "late" FROM {ALERT} WHERE {SITE} AND $timeFilter '
                        'GROUP BY "site" ORDER BY time DESC LIMIT 1',
                        alias="$tag_site",
                        fmt="table",
                    )
                ],
                description="Latest message of klankkast-alerts per site: start/update while "
                "an episode lasts, end when it stopped (late: computed from a node's backlog).",
                mappings=[
                    {
                        "type": "value",
                        "options": {
                            "start": {"text": "nuisance (started)", "color": "red", "index": 0},
                            "update": {"text": "nuisance (ongoing)", "color": "red", "index": 1},
                            "end": {"text": "quiet", "color": "green", "index": 2},
                        },
                    }
                ],
                steps=thresholds((None, "green")),
                fields="/^state$/",
            ),
            8,
            9,
        ),
        lay.place(
            timeseries(
                "LAeq per minute (energy mean per interval)",
                [
                    target(
                        f'SELECT {energy("LAeq")} AS "LAeq" FROM {MINUTE} WHERE {where} '
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="LAeq $tag_node",
                    ),
                    target(
                        f'SELECT median("LA90") AS "LA90" FROM {MINUTE} WHERE {where} '
                        'GROUP BY time($__interval), "node" fill(none)',
                        ref="B",
                        alias="LA90 $tag_node",
                    ),
                ],
                description="Per-minute summaries (kept forever). LA90 is the level exceeded "
                "90 % of the minute (it lies 3-10 dB below the residual LAeq in fluctuating "
                "sound); over longer intervals the median of the per-minute LA90. " + limits_txt,
                limits=True,
            ),
            12,
            9,
        ),
        lay.place(
            timeseries(
                "LAFmax per interval",
                [
                    target(
                        f'SELECT max("LAFmax") AS "LAFmax" FROM {SECOND} WHERE {where} '
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="$tag_node",
                    )
                ],
                description="Highest A-weighted Fast level in each plotted interval (door "
                "slams, shouts).",
                draw="points",
            ),
            12,
            9,
        ),
        lay.place(
            timeseries(
                "LA90 background",
                [
                    target(
                        f'SELECT median("LA90") AS "LA90" FROM {MINUTE} WHERE {where} '
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="$tag_node",
                    )
                ],
                description="Background level (LA90 per minute; median over longer intervals). "
                "LA90 is not the residual: the emergence rule compares the level with the "
                "residual LAeq of the preceding 10 minutes (held during an episode).",
            ),
            12,
            8,
        ),
        lay.place(
            timeseries(
                "LCeq − LAeq (low-frequency content)",
                [
                    target(
                        f'SELECT {energy("LCeq")} - {energy("LAeq")} AS "LCeq-LAeq" '
                        f"FROM {MINUTE} WHERE {where} "
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="$tag_node",
                    )
                ],
                unit=DB_DIFF,
                description="C- minus A-weighted equivalent level, both energy-averaged. More "
                "than about 15-20 dB points at bass-heavy music or machinery.",
            ),
            12,
            8,
        ),
        lay.place(spectrum_panel(where), 24, 9),
    ]
    return dashboard(
        "courtyard-now",
        "klankkast — Courtyard now",
        "Levels of one courtyard as measured by its nodes: LAeq, LAFmax, LA90, bass, spectrum, "
        "alert state; annotations: episodes, alerts sent, complaints, visits, residents' marks.",
        panels,
        [SITE_VAR, NODE_VAR],
        annotations=[
            episode_annotation(),
            alert_annotation(),
            complaint_annotation(),
            visit_annotation(),
            marks_annotation(),
        ],
        time_from="now-6h",
        refresh="10s",
    )


def spectrum_panel(where: str) -> dict[str, Any]:
    inner = ", ".join(f'pow(10, "{band_field(b)}"/10) AS "e{band_field(b)}"' for b in BANDS)
    outer = ", ".join(f'10*log10(mean("e{band_field(b)}")) AS "{b}"' for b in BANDS)
    query = f"SELECT {outer} FROM (SELECT {inner} FROM {MINUTE} WHERE {where}) WHERE $timeFilter"
    return {
        "type": "bargauge",
        "title": "One-third-octave spectrum LZeq (energy mean over the time range)",
        "description": "Unweighted one-third-octave band levels (IEC 61260-1 nominal mid-band "
        "frequencies in Hz), averaged as energy over the selected time range and nodes.",
        "datasource": DS,
        "targets": [target(query, fmt="table")],
        "fieldConfig": {
            "defaults": {"unit": DBZ, "min": 0, "max": 100, "decimals": 1},
            "overrides": [],
        },
        "options": {
            "orientation": "vertical",
            "displayMode": "gradient",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


# --------------------------------------------------------------------------- annotations
def episode_annotation() -> dict[str, Any]:
    """Episodes as regions: points at the start, field ``end`` (ms), tag ``rule``."""
    return {
        "name": "Episodes",
        "datasource": DS,
        "enable": True,
        "iconColor": "rgba(245, 54, 54, 0.5)",
        "query": f'SELECT "end", "LAeq", "rule", "period" FROM {EPISODE} '
        f"WHERE {SITE} AND $timeFilter",
        "rawQuery": True,
        "textColumn": "rule",
        "timeEndColumn": "end",
        "tagsColumn": "period",
    }


def complaint_annotation() -> dict[str, Any]:
    """Complaints as regions from the incident start the resident gave to receipt."""
    return {
        "name": "Complaints",
        "datasource": DS,
        "enable": True,
        "iconColor": "rgba(255, 152, 48, 1)",
        "query": f'SELECT "id", "received", "category" FROM {COMPLAINT} '
        f"WHERE {SITE} AND $timeFilter",
        "rawQuery": True,
        "textColumn": "id",
        "timeEndColumn": "received",
        "tagsColumn": "category",
    }


def visit_annotation() -> dict[str, Any]:
    """Enforcement visits as regions from arrival to departure, with their outcome."""
    return {
        "name": "Visits",
        "datasource": DS,
        "enable": True,
        "iconColor": "rgba(31, 96, 196, 1)",
        "query": f'SELECT "id", "left", "outcome" FROM {VISIT} WHERE {SITE} AND $timeFilter',
        "rawQuery": True,
        "textColumn": "id",
        "timeEndColumn": "left",
        "tagsColumn": "outcome",
    }


def alert_annotation() -> dict[str, Any]:
    """Live alerts as they were sent: one marker at each alert's start, with its rule."""
    return {
        "name": "Alerts sent",
        "datasource": DS,
        "enable": True,
        "iconColor": "rgba(224, 47, 68, 1)",
        "query": f'SELECT "rule", "LAeq" FROM {ALERT} '
        f"WHERE {SITE} AND \"state\" = 'start' AND $timeFilter",
        "rawQuery": True,
        "textColumn": "rule",
    }


def marks_annotation() -> dict[str, Any]:
    """Residents' marks per 10 minutes (a count, never which household)."""
    return {
        "name": "Residents' marks",
        "datasource": DS,
        "enable": True,
        "iconColor": "rgba(163, 82, 204, 1)",
        "query": f'SELECT count("mark") AS "marks" FROM {EXPERIENCE} '
        f"WHERE {SITE} AND $timeFilter GROUP BY time(10m) fill(none)",
        "rawQuery": True,
        "textColumn": "marks",
    }


# --------------------------------------------------------------------------- nuisance vs reports
def nuisance_vs_reports() -> dict[str, Any]:
    lay = Layout()
    panels = [
        lay.place(
            timeseries(
                "Site level with episodes, complaints and visits",
                [
                    target(
                        f'SELECT {energy("LAeq")} AS "LAeq" FROM {MINUTE} '
                        f"WHERE {SITE} AND $timeFilter "
                        'GROUP BY time($__interval), "site" fill(none)',
                        alias="$tag_site",
                    )
                ],
                description="LAeq of the site (its nodes combined by energy mean: microphones "
                "in one courtyard hear the same sound field). Red regions: "
                "detected episodes; orange: complaints (at the incident time the resident "
                "gave); blue regions: enforcement visits; purple: residents' marks ('ik heb "
                "nu last', counted per 10 minutes).",
                limits=True,
            ),
            24,
            10,
        ),
        lay.place(
            stat(
                "Corroborated complaints",
                [
                    target(
                        f'SELECT last("complaints_corroborated") AS "corroborated", '
                        f'last("complaints_total") AS "of complaints" FROM {ANALYSIS} '
                        f'WHERE {SITE} AND "scope" = \'site\' GROUP BY "site"',
                        alias="$tag_site $col",
                    )
                ],
                description="Latest analysis run, per site: complaints with a measured episode "
                "around the time the resident gave, out of all complaints. From measurement "
                "'analysis' (sites.{site} of report/summary.json), written by "
                "klankkast-analyze report --influx.",
                steps=thresholds((None, "blue")),
                decimals=0,
            ),
            6,
            6,
        ),
        lay.place(
            stat(
                "Visit hit rate",
                [
                    target(
                        f'SELECT last("visit_hit_rate") AS "visits during nuisance" '
                        f'FROM {ANALYSIS} WHERE {SITE} AND "scope" = \'site\' GROUP BY "site"',
                        alias="$tag_site $col",
                    ),
                    target(
                        f'SELECT last("plan_hit_rate") AS "patrol plan (back-test)" '
                        f"FROM {ANALYSIS} WHERE \"scope\" = 'plan'",
                        ref="B",
                    ),
                ],
                unit="percentunit",
                description="Latest analysis run: share of enforcement visits that arrived "
                "while an episode was going on, and the back-tested hit rate of the patrol plan.",
                steps=thresholds((None, "red"), (0.3, "orange"), (0.6, "green")),
                decimals=0,
            ),
            6,
            6,
        ),
        lay.place(
            stat(
                "Silent nuisance",
                [
                    target(
                        f'SELECT last("episodes_without_complaint_rate") AS "episodes without '
                        f'complaint" FROM {ANALYSIS} WHERE {SITE} AND "scope" = \'site\' '
                        'GROUP BY "site"',
                        alias="$tag_site $col",
                    )
                ],
                unit="percentunit",
                description="Latest analysis run, per site: share of measured episodes without "
                "any complaint. No complaints is not no problem.",
                steps=thresholds((None, "green"), (0.5, "orange"), (0.8, "red")),
                decimals=0,
            ),
            6,
            6,
        ),
        lay.place(
            stat(
                "Episodes in range",
                [
                    target(
                        f'SELECT count("duration_s") AS "episodes", '
                        f'sum("duration_s") / 3600 AS "hours" FROM {EPISODE} '
                        f"WHERE {SITE} AND $timeFilter",
                    )
                ],
                description="Detected nuisance episodes in the time range and their total "
                "duration in hours.",
                steps=thresholds((None, "purple")),
                decimals=1,
            ),
            6,
            6,
        ),
        lay.place(heatmap_panel(), 24, 10),
    ]
    return dashboard(
        "nuisance-vs-reports",
        "klankkast — Nuisance versus reports",
        "Measured nuisance beside complaints and enforcement visits: what is corroborated, "
        "what visits found, what nobody reported.",
        panels,
        [SITE_VAR],
        annotations=[
            episode_annotation(),
            complaint_annotation(),
            visit_annotation(),
            marks_annotation(),
        ],
        time_from="now-14d",
        refresh="5m",
    )


def heatmap_panel() -> dict[str, Any]:
    # Share of minutes per hour in which the site's LAeq (nodes combined by energy mean)
    # exceeds the evening limit; InfluxQL cannot group by hour-of-week, so Grafana
    # transformations fold the hourly series into a weekday x hour matrix.
    threshold = LIMITS_DB["evening"]
    query = (
        f'SELECT count("LAeq") / 60 AS "nuisance" FROM ('
        f'SELECT {energy("LAeq")} AS "LAeq" FROM {MINUTE} WHERE {SITE} AND $timeFilter '
        f"GROUP BY time(1m) fill(none)"
        f') WHERE "LAeq" > {threshold} AND $timeFilter GROUP BY time(1h) fill(0)'
    )
    return {
        "type": "table",
        "title": f"Week heat map: share of each hour above {threshold} dB(A), by hour of week",
        "description": "For every hour of the time range, the share of its minutes in which "
        f"the site's LAeq,1min exceeded {threshold} dB(A), averaged per weekday and hour "
        "(Europe/Amsterdam). A quick look; the report's heat map uses the full episode rules.",
        "datasource": DS,
        "targets": [target(query, fmt="time_series")],
        "transformations": [
            {"id": "seriesToColumns", "options": {}},
            {
                "id": "calculateField",
                "options": {
                    "mode": "binary",
                    "binary": {"left": "Time", "operator": "+", "right": "0"},
                    "alias": "hour",
                    "replaceFields": False,
                },
            },
            {
                "id": "convertFieldType",
                "options": {
                    "conversions": [
                        {"targetField": "Time", "destinationType": "time"},
                        {"targetField": "hour", "destinationType": "time"},
                    ]
                },
            },
            {
                "id": "formatTime",
                "options": {
                    "timeField": "Time",
                    "outputFormat": "d ddd",
                    "useTimezone": True,
                },
            },
            {
                "id": "formatTime",
                "options": {"timeField": "hour", "outputFormat": "HH", "useTimezone": True},
            },
            {
                "id": "groupingToMatrix",
                "options": {
                    "columnField": "Time",
                    "rowField": "hour",
                    "valueField": "nuisance",
                    "emptyValue": "null",
                },
            },
            {"id": "sortBy", "options": {"sort": [{"field": "hour\\Time"}]}},
        ],
        "fieldConfig": {
            "defaults": {
                "unit": "percentunit",
                "decimals": 0,
                "min": 0,
                "max": 1,
                "color": {"mode": "continuous-GrYlRd"},
                "custom": {"align": "center", "cellOptions": {"type": "color-background"}},
            },
            "overrides": [],
        },
        "options": {"showHeader": True, "cellHeight": "sm"},
    }


# --------------------------------------------------------------------------- fleet health
def fleet_health() -> dict[str, Any]:
    lay = Layout()
    where = f"{SITE} AND $timeFilter"
    panels = [
        lay.place(
            table(
                "Last seen per node",
                [
                    target(
                        f'SELECT last("last_seen_ms") AS "last_seen", last("state") AS "state", '
                        f'last("frames_hour") AS "frames this hour", '
                        f'last("seq_gaps_hour") AS "seq gaps this hour" '
                        f"FROM {HEALTH} WHERE \"period\" = 'snapshot' AND {where} "
                        'GROUP BY "site", "node"',
                        fmt="table",
                    )
                ],
                description="The ingest's view of each node (measurement node_health, written "
                "every minute): when its newest frame arrived, its status (online, degraded, "
                "offline from its last will), frames and seq gaps in the current hour.",
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "last_seen"},
                        "properties": [
                            {"id": "displayName", "value": "last seen"},
                            {"id": "unit", "value": "dateTimeFromNow"},
                        ],
                    },
                    {
                        "matcher": {"id": "byName", "options": "Time"},
                        "properties": [{"id": "custom.hidden", "value": True}],
                    },
                ],
            ),
            12,
            8,
        ),
        lay.place(
            table(
                "Calibration and clock per node",
                [
                    target(
                        f'SELECT last("calibrated") AS "calibrated", '
                        f'last("calibrated_at") AS "calibrated_at", '
                        f'last("clock_synced") AS "clock_synced", last("version") AS "version" '
                        f"FROM {STATUS} WHERE {where} "
                        'GROUP BY "site", "node"',
                        fmt="table",
                    )
                ],
                description="Newest status per node: whether it has a calibration (a node "
                "never calibrated says so in red: its levels are not traceable), when it was "
                "calibrated (age), whether its clock is synchronised (NTP), software version.",
                transformations=[
                    {
                        "id": "convertFieldType",
                        "options": {
                            "conversions": [
                                {"targetField": "calibrated_at", "destinationType": "time"}
                            ]
                        },
                    }
                ],
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "calibrated_at"},
                        "properties": [
                            {"id": "displayName", "value": "calibrated at"},
                            {"id": "unit", "value": "dateTimeFromNow"},
                        ],
                    },
                    {
                        "matcher": {"id": "byName", "options": "calibrated"},
                        "properties": [
                            {
                                "id": "mappings",
                                "value": [
                                    {
                                        "type": "value",
                                        "options": {
                                            "true": {"text": "yes", "color": "green", "index": 0},
                                            "false": {
                                                "text": "NOT CALIBRATED",
                                                "color": "red",
                                                "index": 1,
                                            },
                                        },
                                    }
                                ],
                            },
                            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                        ],
                    },
                    {
                        "matcher": {"id": "byName", "options": "Time"},
                        "properties": [{"id": "custom.hidden", "value": True}],
                    },
                ],
            ),
            12,
            8,
        ),
        lay.place(
            {
                "type": "state-timeline",
                "title": "Online per node",
                "description": "1 = delivering (online or degraded), 0 = offline (status or last "
                "will) — from the ingest's node_health snapshots.",
                "datasource": DS,
                "targets": [
                    target(
                        f'SELECT last("online") AS "online" FROM {HEALTH} '
                        f"WHERE \"period\" = 'snapshot' AND {where} "
                        'GROUP BY time($__interval), "site", "node" fill(previous)',
                        alias="$tag_site/$tag_node",
                    )
                ],
                "fieldConfig": {
                    "defaults": {
                        "mappings": [
                            {
                                "type": "value",
                                "options": {
                                    "0": {"text": "offline", "color": "red", "index": 0},
                                    "1": {"text": "online", "color": "green", "index": 1},
                                },
                            }
                        ],
                        "thresholds": thresholds((None, "red"), (1, "green")),
                    },
                    "overrides": [],
                },
                "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
            },
            24,
            6,
        ),
        lay.place(
            timeseries(
                "seq gaps per hour",
                [
                    target(
                        f'SELECT max("seq_gaps") AS "gaps" FROM {HEALTH} '
                        f"WHERE \"period\" = 'hour' AND {where} "
                        'GROUP BY time(1h), "node" fill(none)',
                        alias="$tag_node",
                    )
                ],
                unit="none",
                description="Per hour, frames missing between the lowest and highest sequence "
                "number a node sent that hour (counted by the ingest; gaps that the node's "
                "outbox fills later close again).",
                draw="bars",
            ),
            12,
            8,
        ),
        lay.place(
            timeseries(
                "Outbox depth and evictions",
                [
                    target(
                        f'SELECT max("outbox_depth") AS "depth" FROM {STATUS} WHERE {where} '
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="depth $tag_node",
                    ),
                    target(
                        f'SELECT max("outbox_evictions") AS "evictions" FROM {STATUS} '
                        f"WHERE {where} "
                        'GROUP BY time($__interval), "node" fill(none)',
                        ref="B",
                        alias="evicted $tag_node",
                    ),
                ],
                unit="none",
                description="Frames stored on the node (waiting to be published, or published "
                "and awaiting the ingest's confirmation), and frames dropped because the outbox "
                "was full (data lost on the node).",
            ),
            12,
            8,
        ),
        lay.place(
            timeseries(
                "Unconfirmed frames",
                [
                    target(
                        f'SELECT max("unconfirmed") AS "unconfirmed" FROM {STATUS} '
                        f"WHERE {where} "
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="unconfirmed $tag_node",
                    ),
                ],
                unit="none",
                description="Frames the broker acknowledged but the ingest has not yet confirmed "
                'as stored in InfluxDB ([outbox] confirm = "ingest"). A few is normal; a '
                "steady rise means the ingest or InfluxDB is down or acks cannot reach the node.",
            ),
            12,
            8,
        ),
        lay.place(
            timeseries(
                "Oldest unconfirmed frame",
                [
                    target(
                        f'SELECT max("unconfirmed_age_s") AS "age" FROM {STATUS} '
                        f"WHERE {where} "
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="age $tag_node",
                    ),
                ],
                unit="s",
                description="Age of the oldest frame awaiting the ingest's confirmation, since "
                "its first PUBACK. Above confirm_timeout_s (120 s) the node publishes it again.",
            ),
            12,
            8,
        ),
        lay.place(
            timeseries(
                "Audio xruns",
                [
                    target(
                        f'SELECT max("xruns") AS "xruns" FROM {STATUS} WHERE {where} '
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="$tag_node",
                    )
                ],
                unit="none",
                description="Audio buffer overruns reported by each node (cumulative since start).",
            ),
            12,
            8,
        ),
        lay.place(
            timeseries(
                "Clock drift",
                [
                    target(
                        f'SELECT max("drift_ms") AS "drift" FROM {STATUS} WHERE {where} '
                        'GROUP BY time($__interval), "node" fill(none)',
                        alias="$tag_node",
                    )
                ],
                unit="ms",
                description="Drift between the audio clock and system time each node reports.",
            ),
            12,
            8,
        ),
        lay.place(
            timeseries(
                "Ingest: messages in, points written, rejected",
                [
                    target(
                        f'SELECT non_negative_derivative(max("messages_in"), 1s) AS "in/s" '
                        f"FROM {STATS} WHERE $timeFilter "
                        'GROUP BY time($__interval), "instance" fill(none)',
                        alias="messages in/s $tag_instance",
                    ),
                    target(
                        f'SELECT non_negative_derivative(max("points_written"), 1s) '
                        f'AS "written/s" FROM {STATS} WHERE $timeFilter '
                        'GROUP BY time($__interval), "instance" fill(none)',
                        ref="B",
                        alias="points written/s $tag_instance",
                    ),
                    target(
                        f'SELECT non_negative_derivative(max("rejected"), 1s) AS "rejected/s" '
                        f"FROM {STATS} WHERE $timeFilter "
                        'GROUP BY time($__interval), "instance" fill(none)',
                        ref="C",
                        alias="rejected/s $tag_instance",
                    ),
                ],
                unit="none",
                description="The central ingest's own counters (measurement ingest_stats).",
            ),
            24,
            8,
        ),
    ]
    return dashboard(
        "fleet-health",
        "klankkast — Fleet health",
        "Is every node measuring and delivering? Last seen, sequence gaps, outbox, xruns, "
        "clock, calibration.",
        panels,
        [SITE_VAR],
        time_from="now-24h",
        refresh="1m",
    )


DASHBOARDS = {
    "courtyard-now": courtyard_now,
    "nuisance-vs-reports": nuisance_vs_reports,
    "fleet-health": fleet_health,
}


#: The Dutch set (uid + "-nl"): every title a noise officer or planner reads. A title
#: without a translation fails the build (KeyError), so the two sets cannot drift.
NL: dict[str, str] = {
    # dashboards
    "klankkast — Courtyard now": "klankkast — Binnenplaats nu",
    "klankkast — Nuisance versus reports": "klankkast — Overlast en meldingen",
    "klankkast — Fleet health": "klankkast — Meetnet",
    # panels
    "LAeq per second (energy mean per interval)": "LAeq per seconde (energetisch gemiddeld)",
    "Current alert state": "Huidige waarschuwing",
    "LAeq per minute (energy mean per interval)": "LAeq per minuut (energetisch gemiddeld)",
    "LAFmax per interval": "LAFmax per interval",
    "LA90 background": "LA90-achtergrond",
    "LCeq − LAeq (low-frequency content)": "LCeq − LAeq (laagfrequent geluid)",
    "One-third-octave spectrum LZeq (energy mean over the time range)":
        "Tertsbandspectrum LZeq (energetisch gemiddeld over de periode)",
    "Site level with episodes, complaints and visits":
        "Niveau van de binnenplaats met episodes, klachten en controles",
    "Corroborated complaints": "Bevestigde klachten",
    "Visit hit rate": "Controles tijdens overlast",
    "Silent nuisance": "Overlast zonder klacht",
    "Episodes in range": "Episodes in de periode",
    "Week heat map: share of each hour above 45 dB(A), by hour of week":
        "Weekkaart: aandeel van elk uur boven 45 dB(A), per uur van de week",
    "Last seen per node": "Laatst gezien per meetpunt",
    "Calibration and clock per node": "Kalibratie en klok per meetpunt",
    "Online per node": "Online per meetpunt",
    "seq gaps per hour": "ontbrekende frames per uur",
    "Outbox depth and evictions": "Wachtrij en verwijderde frames",
    "Unconfirmed frames": "Onbevestigde frames",
    "Oldest unconfirmed frame": "Oudste onbevestigde frame",
    "Audio xruns": "Audio-onderbrekingen (xruns)",
    "Clock drift": "Klokafwijking",
    "Ingest: messages in, points written, rejected":
        "Ingest: berichten binnen, punten geschreven, geweigerd",
    # annotations and variables
    "Annotations & Alerts": "Annotaties en waarschuwingen",
    "Episodes": "Episodes",
    "Alerts sent": "Verstuurde waarschuwingen",
    "Complaints": "Klachten",
    "Visits": "Controles",
    "Residents' marks": "Meldingen van bewoners",
    "Site": "Binnenplaats",
    "Node": "Meetpunt",
    "Reports address": "Adres rapporten",
    # links
    "klankkast": "klankkast",
    "Latest report": "Laatste rapport",
    "Patrol plan (calendar)": "Controleplan (agenda)",
    "All reports": "Alle rapporten",
}  # fmt: skip


def dutch(dash: dict[str, Any]) -> dict[str, Any]:
    """The Dutch copy of a dashboard: uid + "-nl", titles, annotation names, variable
    labels and link titles in Dutch; queries, links, units and layout unchanged."""
    nl = json.loads(json.dumps(dash))
    nl["uid"] = dash["uid"] + "-nl"
    nl["title"] = NL[dash["title"]]
    nl["tags"] = [*dash["tags"], "nl"]
    for panel in nl["panels"]:
        panel["title"] = NL[panel["title"]]
    for ann in nl["annotations"]["list"]:
        ann["name"] = NL[ann["name"]]
    for var in nl["templating"]["list"]:
        var["label"] = NL[var["label"]]
    for link in nl["links"]:
        link["title"] = NL[link["title"]]
    return dict(nl)


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard, English and Dutch."""
    out = {}
    for build in DASHBOARDS.values():
        dash = build()
        for d in (dash, dutch(dash)):
            out[f"{d['uid']}.json"] = json.dumps(d, indent=2, ensure_ascii=False) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    OUT.mkdir(exist_ok=True)
    stale = []
    for name, text in render().items():
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale dashboards (run {Path(__file__).name}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
