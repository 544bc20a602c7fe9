"""Grafana provisioning: dashboards are generated, parse, keep stable uids, average
levels as energy, and the provisioning YAMLs parse and point at one datasource."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
ENGLISH = {"courtyard-now", "nuisance-vs-reports", "fleet-health"}
UIDS = ENGLISH | {f"{u}-nl" for u in ENGLISH}
DS_UID = "klankkast-influxdb"


def _builder() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", GRAFANA / "build_dashboards.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["build_dashboards"] = mod
    spec.loader.exec_module(mod)
    return mod


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _queries(dash: dict[str, Any]) -> list[str]:
    out = [t["query"] for p in dash["panels"] for t in p.get("targets", [])]
    out += [a["query"] for a in dash["annotations"]["list"] if "query" in a]
    return out


def test_committed_json_is_what_the_builder_writes() -> None:
    rendered = _builder().render()
    assert set(rendered) == {f"{u}.json" for u in UIDS}
    for name, text in rendered.items():
        assert (DASHBOARDS / name).read_text() == text, f"{name} is stale: run build_dashboards.py"


def test_stable_uids_and_file_names() -> None:
    dashes = _dashboards()
    assert set(dashes) == UIDS
    for stem, dash in dashes.items():
        assert dash["uid"] == stem
        assert dash["title"].startswith("klankkast")


def test_every_query_is_raw_influxql_on_the_provisioned_datasource() -> None:
    for dash in _dashboards().values():
        panel_ids = [p["id"] for p in dash["panels"]]
        assert len(panel_ids) == len(set(panel_ids))
        for panel in dash["panels"]:
            assert panel["datasource"]["uid"] == DS_UID
            assert panel["targets"], panel["title"]
            for t in panel["targets"]:
                assert t["rawQuery"] is True
                assert t["datasource"]["uid"] == DS_UID
                assert t["query"].startswith("SELECT ")
        for var in dash["templating"]["list"]:
            if var["type"] != "textbox":  # $reports: an address, not a query
                assert var["datasource"]["uid"] == DS_UID


def test_levels_are_averaged_as_energy_never_as_db() -> None:
    """An arithmetic mean of dB values understates: 30 min at 40 dB and 30 min at 70 dB
    is 67.0 dB, not 55. Every mean of an equivalent level must go through the linear
    ``_e`` companion (or a subquery in linear units for the bands)."""
    leq = re.compile(r'(mean|sum|median)\("L[ACZ]eq(_[0-9p]+)?"\)')
    for dash in _dashboards().values():
        for q in _queries(dash):
            assert not leq.search(q), q
            for m in re.finditer(r'mean\("([^"]+)"\)', q):
                field = m.group(1)
                assert (
                    field.endswith("_e") or field.startswith("eLZeq_") or not field.startswith("L")
                ), q


def test_every_template_variable_is_used() -> None:
    for dash in _dashboards().values():
        text = json.dumps([dash["panels"], dash["annotations"], dash["links"]])
        for var in dash["templating"]["list"]:
            assert f"${var['name']}" in text or f"${{{var['name']}}}" in text


def test_level_panels_draw_the_limit_of_the_period_in_force() -> None:
    """No fixed 40/45/50 scale around the clock (issue 17): each level panel reads the
    limit series the analysis writes (one field per period) and colours it by period."""
    for uid in ("courtyard-now", "nuisance-vs-reports"):
        dash = _dashboards()[uid]
        level_panels = [p for p in dash["panels"] if p["title"].startswith(("LAeq", "Site level"))]
        assert level_panels
        for panel in level_panels:
            (lim,) = [t for t in panel["targets"] if t["refId"] == "L"]
            for period in ("day", "evening", "night"):
                assert f'last("{period}") AS "limit {period}"' in lim["query"]
            assert '"forever"."limit"' in lim["query"] and "$site" in lim["query"]
            colours = {
                o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
                for o in panel["fieldConfig"]["overrides"]
            }
            assert len(set(colours.values())) == 3
            assert "thresholds" not in panel["fieldConfig"]["defaults"]


def test_spectrum_covers_every_nominal_band() -> None:
    from klankkast.sensor import wire

    dash = _dashboards()["courtyard-now"]
    spectrum = next(p for p in dash["panels"] if p["type"] == "bargauge")
    q = spectrum["targets"][0]["query"]
    for nominal in wire.BAND_NOMINALS:
        assert f'"{wire.band_field(nominal)}"' in q
        assert f'AS "{nominal}"' in q


def test_nuisance_vs_reports_annotations() -> None:
    dash = _dashboards()["nuisance-vs-reports"]
    names = {a["name"] for a in dash["annotations"]["list"] if "query" in a}
    assert names == {"Episodes", "Complaints", "Visits", "Residents' marks"}
    regions = {a["name"]: a.get("timeEndColumn") for a in dash["annotations"]["list"]}
    assert regions["Episodes"] == "end"
    assert regions["Visits"] == "left"
    # marks are counted, never shown per household
    (marks,) = [a for a in dash["annotations"]["list"] if a["name"] == "Residents' marks"]
    assert "count(" in marks["query"] and "household" not in marks["query"]


def test_courtyard_now_shows_what_was_done() -> None:
    """Complaints, visits and the alerts sent beside the levels (issue 17)."""
    dash = _dashboards()["courtyard-now"]
    names = {a["name"] for a in dash["annotations"]["list"] if "query" in a}
    assert {"Episodes", "Alerts sent", "Complaints", "Visits", "Residents' marks"} <= names


def test_level_units_name_their_weighting() -> None:
    """A level panel says dB(A), dB(C) or dB(Z), never a bare dB (issue 17); a bare dB
    is only for a difference of levels."""
    for uid, dash in _dashboards().items():
        for panel in dash["panels"]:
            unit = panel["fieldConfig"]["defaults"].get("unit") or ""
            title = panel["title"]
            if "dB" not in unit:
                continue
            if " − " in title or " - " in title:
                assert unit == "suffix: dB", (uid, title, unit)
            elif "LZ" in title:
                assert unit == "suffix: dB(Z)", (uid, title, unit)
            else:
                assert unit == "suffix: dB(A)", (uid, title, unit)


def test_provisioning_yaml_parses_and_names_the_datasource() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "influxdb.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == DS_UID
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert "password" not in source  # only through secureJsonData from a file
    prov = yaml.safe_load((PROVISIONING / "dashboards" / "klankkast.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.parametrize(
    "path", sorted((PROVISIONING / "alerting").glob("*.yaml")), ids=lambda p: p.name
)
def test_alert_rules_parse(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == 1
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert rules
    for rule in rules:
        refs = {d["refId"] for d in rule["data"]}
        assert rule["condition"] in refs
        for d in rule["data"]:
            assert d["datasourceUid"] in (DS_UID, "__expr__")
            if d["datasourceUid"] == DS_UID:
                assert d["model"]["rawQuery"] is True


def test_alert_rules_cover_silent_node_and_episode() -> None:
    titles = []
    for path in (PROVISIONING / "alerting").glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        titles += [r["title"].lower() for g in doc["groups"] for r in g["rules"]]
    assert any("silent" in t and "10 min" in t for t in titles), titles
    assert any("episode" in t for t in titles), titles


def test_a_webhook_contact_point_receives_every_alert() -> None:
    """Grafana's alert rules reach someone (issue 17): a provisioned webhook contact point
    whose URL the compose file passes in, and the policy routing to it."""
    doc = yaml.safe_load((PROVISIONING / "alerting" / "klankkast.yaml").read_text())
    (cp,) = doc["contactPoints"]
    (receiver,) = cp["receivers"]
    assert receiver["type"] == "webhook"
    url = receiver["settings"]["url"]
    assert url.startswith("$")
    (policy,) = doc["policies"]
    assert policy["receiver"] == cp["name"]
    compose = yaml.safe_load((REPO / "deploy" / "central" / "docker-compose.yml").read_text())
    env = compose["services"]["grafana"]["environment"]
    assert url.lstrip("$").strip("{}") in env


def test_fleet_health_shows_an_uncalibrated_node() -> None:
    """The node's status field calibrated (false without a calibration) is on Fleet health
    (issue 17: the example config no longer fakes one)."""
    dash = _dashboards()["fleet-health"]
    (panel,) = [p for p in dash["panels"] if p["title"] == "Calibration and clock per node"]
    assert 'last("calibrated") AS "calibrated"' in panel["targets"][0]["query"]
    (o,) = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "calibrated"]
    mapping = o["properties"][0]["value"][0]["options"]
    assert mapping["false"]["color"] == "red" and mapping["true"]["color"] == "green"


def test_a_dutch_set_with_the_same_queries() -> None:
    """Every English dashboard has a Dutch twin (uid -nl): titles, annotation names and
    variable labels in Dutch, the same queries and layout (issue 17)."""
    dashes = _dashboards()
    for uid in ENGLISH:
        en, nl = dashes[uid], dashes[f"{uid}-nl"]
        assert _queries(nl) == _queries(en)
        assert [p["gridPos"] for p in nl["panels"]] == [p["gridPos"] for p in en["panels"]]
        assert nl["title"] != en["title"]
        titles = [p["title"] for p in nl["panels"]]
        assert len([t for t, e in zip(titles, en["panels"], strict=True) if t != e["title"]]) >= (
            len(titles) - 1
        )  # "LAFmax per interval" reads the same in Dutch
    assert dashes["nuisance-vs-reports-nl"]["panels"][1]["title"] == "Bevestigde klachten"


#: the icons a Grafana dashboard link may name (Grafana 11's LINK_ICON_MAP); any other
#: name shows no icon
LINK_ICONS = {"external link", "dashboard", "question", "info", "bolt", "doc", "cloud"}


def _report_links(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in dash["links"] if link["type"] == "link"]


def test_every_dashboard_links_to_the_reports() -> None:
    """The latest report, the current patrol plan and the reports folder are one click
    from every dashboard (issue 17), through the text-box variable ``$reports``, in a new
    tab and with nothing appended (the web server serves files, not Grafana's time range
    or variables); the Dutch twins name them in Dutch."""
    dashes = _dashboards()
    for uid in ENGLISH:
        en, nl = _report_links(dashes[uid]), _report_links(dashes[f"{uid}-nl"])
        assert [link["title"] for link in en] == [
            "Latest report", "Patrol plan (calendar)", "All reports"
        ]  # fmt: skip
        assert [link["title"] for link in nl] == [
            "Laatste rapport", "Controleplan (agenda)", "Alle rapporten"
        ]  # fmt: skip
        assert [link["url"] for link in nl] == [link["url"] for link in en]
        for link in en + nl:
            assert link["url"].startswith("${reports}/"), link
            assert link["targetBlank"] is True
            assert link["includeVars"] is False and link["keepTime"] is False
            assert link["icon"] in LINK_ICONS, link
        for dash in (dashes[uid], dashes[f"{uid}-nl"]):
            (var,) = [v for v in dash["templating"]["list"] if v["name"] == "reports"]
            assert var["type"] == "textbox"
            assert var["current"]["value"] == var["query"] == _builder().REPORTS_URL


def test_report_links_reach_what_the_web_server_serves(tmp_path: Path) -> None:
    """``$reports`` defaults to the compose stack's web server: https (the template's TLS
    listener) on the host port the compose file publishes for it, on the host the
    residents' page of the same server is configured with, under the template's reports
    location. Behind that location (an ``alias`` of the reports folder) every link's path
    exists in the folder one real ``klankkast-analyze run`` makes: its ``latest`` and
    ``current-plan`` links, the report and the plan the analysis writes."""
    import tomllib
    from urllib.parse import urlsplit

    from support.analysis_scenario import make_scenario, write_files

    from klankkast.analysis.cli import main as analyze
    from klankkast.analysis.service import Schedule, parse_config, run_once

    template = (REPO / "deploy" / "web" / "klankkast.conf.template").read_text()
    assert re.search(r"listen \$\{KLANKKAST_WEB_PORT\} ssl;", template)
    m = re.search(r"location (/[\w-]+/) \{\s*alias \$\{KLANKKAST_REPORTS_DIR\}/;", template)
    assert m, "the template has no reports location"
    web = yaml.safe_load((REPO / "deploy" / "central" / "docker-compose.yml").read_text())
    web = web["services"]["web"]
    (published,) = [
        p.split(":")[-2] for p in web["ports"] if p.split(":")[-1] == web["environment"]
        ["KLANKKAST_WEB_PORT"]
    ]  # fmt: skip
    central = tomllib.loads((REPO / "deploy" / "central" / "central.compose.toml").read_text())
    host = urlsplit(central["courtyard"]["base_url"]).hostname
    netloc = host if published == "443" else f"{host}:{published}"
    default = urlsplit(_builder().REPORTS_URL)
    assert (default.scheme, default.netloc) == ("https", netloc)
    assert default.path + "/" == m.group(1)

    sc = make_scenario(3, sites=1, days=14, founded=4, unfounded=1, gap_day=None)
    files = write_files(sc, tmp_path / "in", two_nodes=False)
    cfg = parse_config(
        {"levels": files["levels"], "out_dir": "reports", "visits": files["visits"]},
        base=tmp_path,
    )
    schedule = Schedule(cfg.report_at, cfg.plan_weekday, "Europe/Amsterdam")
    run_once(cfg, sc.t1_ms, schedule, analyze=analyze, say=lambda _line: None)
    for dash in _dashboards().values():
        for link in _report_links(dash):
            served = cfg.out_dir / link["url"].removeprefix("${reports}/")
            assert served.exists(), f"{dash['uid']}: {link['title']} -> {served} is missing"
