"""The retention of every measurement is stated once, in the layout, and the privacy
page says the same (issue 17: docs/privacy.md put complaint/visit/episode in ``raw``
for 30 days while the analysis writes them to ``forever``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from klankkast import influx
from klankkast.influx import MEASUREMENTS, RETENTION_POLICIES, retention_table, rp_of

REPO = Path(__file__).resolve().parents[3]
PRIVACY = REPO / "docs" / "privacy.md"


def _generated_block() -> str:
    text = PRIVACY.read_text(encoding="utf-8")
    m = re.search(r"<!-- retention-table:[^\n]*-->\n(.*?)<!-- /retention-table -->", text, re.S)
    assert m, "docs/privacy.md lost its generated retention table"
    return m.group(1)


def test_privacy_page_carries_the_generated_table() -> None:
    assert _generated_block() == retention_table()


def test_privacy_page_names_no_other_policy_for_a_measurement() -> None:
    """Outside the generated block no sentence may put a measurement in another policy."""
    text = PRIVACY.read_text(encoding="utf-8").replace(_generated_block(), "")
    for m in re.finditer(r"retention policy `(\w+)`\s*\|\s*([^|]*)\|", text):
        named = set(re.findall(r"`(\w+)`", m.group(2)))
        for meas in named & set(MEASUREMENTS):
            assert rp_of(meas) == m.group(1), (meas, m.group(0))


@pytest.mark.parametrize("measurement", ["complaint", "visit", "episode", "alert", "analysis",
                                         "node_health", "status", "minute", "second"])  # fmt: skip
def test_every_measurement_has_a_declared_policy(measurement: str) -> None:
    rp = rp_of(measurement)
    assert rp in RETENTION_POLICIES


def test_unknown_measurement_is_refused() -> None:
    with pytest.raises(ValueError, match="measurement must be one of"):
        rp_of("complaints")


def test_exactly_one_default_policy_and_it_is_raw() -> None:
    defaults = [p.name for p in RETENTION_POLICIES.values() if p.default]
    assert defaults == [influx.RP_RAW]


def test_ingest_writes_frames_where_the_layout_says() -> None:
    from klankkast.ingest import validate

    for kind, rp in validate._RP_OF_KIND.items():
        meas = validate._MEASUREMENT_OF_KIND[kind]
        # None means the database's DEFAULT policy
        expected = rp_of(meas)
        assert (rp or influx.RP_RAW) == expected, kind


def test_analysis_writes_complaints_visits_episodes_where_the_layout_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from klankkast.analysis import levels

    seen: list[tuple[str, str | None]] = []

    def fake_write(self: Any, lines: list[str], *, rp: str | None = None, **kw: Any) -> None:
        seen.extend((ln.split(",", 1)[0], rp) for ln in lines)

    monkeypatch.setattr(influx.InfluxHTTP, "write", fake_write)
    lines = [
        influx.line("complaint", {"site": "s"}, {"n": 1}, 0),
        influx.line("visit", {"site": "s"}, {"n": 1}, 0),
        influx.line("episode", {"site": "s"}, {"n": 1}, 0),
    ]
    levels.write_lines("influxdb+http://127.0.0.1:9/db", lines)
    assert seen and all(rp == rp_of(meas) for meas, rp in seen), seen


def test_alerts_write_where_the_layout_says() -> None:
    """The alerts writer names its policy; it must be the layout's for ``alert``."""
    src = (REPO / "alerts" / "writer.py").read_text(encoding="utf-8")
    written = re.findall(r"self\.client\.write\(batch, rp=(\w+)", src)
    assert written == ["RP_FOREVER"]
    assert getattr(influx, written[0]) == rp_of("alert")


def _qualified_reads(text: str) -> set[tuple[str, str]]:
    """Every ``"rp"."measurement"`` in a text (JSON-escaped quotes too)."""
    text = text.replace('\\"', '"')
    return set(re.findall(r'"(raw|forever|experience)"\."([a-z_]+)"', text))


def _reader_files() -> list[Path]:
    return [
        *sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json")),
        REPO / "deploy" / "grafana" / "build_dashboards.py",
        REPO / "deploy" / "grafana" / "provisioning" / "alerting" / "klankkast.yaml",
        REPO / "analysis" / "levels.py",
        REPO / "deploy" / "influxdb" / "README.md",
    ]


@pytest.mark.parametrize("path", _reader_files(), ids=lambda p: p.name)
def test_readers_query_each_measurement_in_its_policy(path: Path) -> None:
    """Dashboards, alert rules and the analysis name ``"rp"."measurement"``: a move of a
    measurement in the layout without them would leave empty panels."""
    reads = _qualified_reads(path.read_text(encoding="utf-8"))
    wrong = sorted((rp, m) for rp, m in reads if m in MEASUREMENTS and rp_of(m) != rp)
    assert not wrong, f"{path.name} reads {wrong} (layout: {[rp_of(m) for _, m in wrong]})"


def test_the_reader_check_can_fail() -> None:
    assert _qualified_reads('SELECT x FROM \\"raw\\".\\"episode\\"') == {("raw", "episode")}
    assert rp_of("episode") != "raw"


def test_courtyard_defaults_follow_the_layout() -> None:
    from klankkast.courtyard.config import InfluxConfig

    d = InfluxConfig()
    assert d.marks_rp == rp_of("experience")
    assert {rp_of(m) for m in ("episode", "alert", "complaint", "visit")} == {d.events_rp}
