"""The demo's scenario: timeline, planted nuisance, complaints and visits that behave
like those in practice, and synthesised minute summaries that are physically consistent."""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import demo
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]

AMS = ZoneInfo("Europe/Amsterdam")
REF = REPO / "tests" / "data" / "reference" / "iec61672_weighting.csv"
# a Sunday evening (local), so the last two weekends lie inside the period
NOW_MS = int(datetime(2026, 11, 29, 22, 10, 37, tzinfo=AMS).timestamp() * 1000)
SITES = ("jordaan", "pijp", "oost")


def _tl() -> demo.Timeline:
    return demo.make_timeline(NOW_MS, 2, 7200.0, 3600.0)


def test_timeline_covers_whole_local_days_and_a_friday_or_saturday_audio_evening() -> None:
    tl = _tl()
    start = datetime.fromtimestamp(tl.start_ms / 1000, AMS)
    assert (start.hour, start.minute) == (0, 0)
    assert (tl.end_ms - tl.start_ms) / 86_400_000 == pytest.approx(14 + (22 * 60 + 10) / 1440)
    assert tl.end_ms % 60_000 == 0 and tl.end_ms <= NOW_MS
    audio = datetime.fromtimestamp(tl.audio_start_ms / 1000, AMS)
    assert audio.weekday() in (4, 5) and (audio.hour, audio.minute) == (21, 30)
    assert tl.audio_end_ms - tl.audio_start_ms == 7_200_000
    assert tl.start_ms < tl.audio_start_ms and tl.audio_end_ms < tl.seconds_start_ms
    assert tl.end_ms - tl.seconds_start_ms == 3_600_000


def test_parties_on_friday_and_saturday_nights_at_the_first_site() -> None:
    tl = _tl()
    party = (tl.audio_start_ms + 2_880_000, tl.audio_end_ms + 7_200_000)
    eps = demo.plan_episodes(tl, SITES, 7, party)
    parties = [e for e in eps if e.kind == "party"]
    assert all(e.site == "jordaan" for e in parties)
    assert len(parties) >= 2
    assert any(math.isfinite(e.laeq_db) for e in parties)
    for e in parties:
        start = datetime.fromtimestamp(e.start_ms / 1000, AMS)
        assert start.weekday() in (4, 5) and start.hour >= 20
        assert e.end_ms > e.start_ms
    # the real-audio party: measured while the audio lasts, planted after it
    audio_party = [e for e in parties if e.start_ms == party[0]]
    assert len(audio_party) == 1 and audio_party[0].source == "audio"
    assert sum(e.source == "audio" for e in eps) == 1
    assert {e.site for e in eps} <= set(SITES)
    assert all(e.start_ms < tl.end_ms for e in eps)


def test_complaints_come_after_onset_and_visits_later_mostly_finding_nothing() -> None:
    tl = _tl()
    eps = demo.plan_episodes(tl, SITES, 11, (tl.audio_start_ms + 2_880_000, tl.audio_end_ms))
    rows_c, rows_v = demo.make_reports(eps, tl, SITES, 11)
    assert rows_c and rows_v
    parse = lambda s: int(datetime.fromisoformat(s).timestamp() * 1000)  # noqa: E731
    by_id = {}
    founded = 0
    for r in rows_c:
        received, start = parse(r["received_at"]), parse(r["incident_start"])
        assert start < received <= tl.end_ms
        by_id[r["id"]] = received
        if r["category"] != "overig":
            founded += 1
            # some time after the onset of an episode of the same site, not before it
            assert any(
                e.site == r["site"]
                and e.start_ms + 8 * 60_000 <= received <= e.start_ms + 150 * 60_000
                for e in eps
            ), r
        else:  # unfounded: no episode of that site within 3 hours
            assert not any(
                e.site == r["site"]
                and e.start_ms - 3 * 3_600_000 <= received <= e.end_ms + 3 * 3_600_000
                for e in eps
            ), r
    assert founded < len(eps) * 3  # not every episode gets complaints
    with_complaint = {
        e
        for e in eps
        for r in rows_c
        if e.site == r["site"]
        and e.start_ms <= parse(r["received_at"]) <= e.start_ms + 150 * 60_000
    }
    assert len(with_complaint) < len(eps)
    outcomes = [v["outcome"] for v in rows_v]
    assert outcomes.count("nothing_found") > len(outcomes) / 2
    for v in rows_v:
        arrived = parse(v["arrived_at"])
        assert parse(v["left_at"]) > arrived
        for cid in filter(None, v["complaint_ids"].split(";")):
            assert arrived >= by_id[cid] + 45 * 60_000  # hours or days later


def test_csv_files_have_the_documented_columns(tmp_path: Path) -> None:
    from klankkast.analysis import importer

    tl = _tl()
    eps = demo.plan_episodes(tl, SITES, 3, (tl.audio_start_ms, tl.audio_end_ms))
    rows_c, rows_v = demo.make_reports(eps, tl, SITES, 3)
    c = demo.write_csv(tmp_path / "c.csv", demo.COMPLAINT_COLUMNS, rows_c)
    v = demo.write_csv(tmp_path / "v.csv", demo.VISIT_COLUMNS, rows_v)
    assert c.read_text().splitlines()[0].split(",") == list(importer.COMPLAINT_COLUMNS)
    assert v.read_text().splitlines()[0].split(",") == list(importer.VISIT_COLUMNS)


def _a_weighting_db() -> dict[str, float]:
    """A-weighting at the nominal band frequencies, IEC 61672-1 Table 3."""
    with open(REF, newline="") as f:
        return {row["nominal_hz"]: float(row["A_dB"]) for row in csv.DictReader(f)}


def test_minute_summaries_are_consistent_with_their_bands() -> None:
    """LAeq is the energy sum of the A-weighted bands (IEC 61672-1 weighting at the band
    centres, within 0.3 dB of the exact-frequency weighting); LZeq the unweighted sum;
    LAFmax above LAeq above LA10 >= LA50 >= LA90 >= LA95; a planted episode reads its
    level; the payload passes the wire contract."""
    from klankkast.sensor import wire

    t0 = NOW_MS - NOW_MS % 3_600_000
    ep = demo.TrueEpisode("pijp", "music", t0 + 600_000, t0 + 1_800_000, 58.0)
    frames = list(demo.minute_payloads("pijp", "n-001", 0, t0, t0 + 3_600_000, [ep], [], 5))
    assert len(frames) == 60
    a_db = _a_weighting_db()
    assert set(frames[0]["bands"]) <= set(a_db)
    for f in frames:
        wire.encode("minute", f)
        bands = f["bands"]
        lz = 10 * math.log10(sum(10 ** (v / 10) for v in bands.values()))
        assert abs(lz - f["LZeq"]) < 0.05
        if a_db:
            la = 10 * math.log10(
                sum(10 ** ((v + a_db[k]) / 10) for k, v in bands.items() if k in a_db)
            )
            assert abs(la - f["LAeq"]) < 0.3
        assert f["LAFmax"] > f["LAeq"] >= f["LA50"]
        assert f["LA10"] >= f["LA50"] >= f["LA90"] >= f["LA95"]
        assert abs(f["bass"] - (f["LCeq"] - f["LAeq"])) < 0.02
    during = [f["LAeq"] for f in frames if ep.start_ms <= f["t"] < ep.end_ms]
    quiet = [f["LAeq"] for f in frames if not ep.start_ms <= f["t"] < ep.end_ms]
    energy_mean = 10 * math.log10(np.mean([10 ** (x / 10) for x in during]))
    assert abs(energy_mean - 58.0) < 0.5
    assert max(quiet) < 45.0
    assert [f["seq"] for f in frames] == list(range(1, 61))


def test_minutes_inside_skip_windows_are_left_out() -> None:
    t0 = NOW_MS - NOW_MS % 3_600_000
    frames = list(
        demo.minute_payloads(
            "oost", "n-002", 1, t0, t0 + 600_000, [], [(t0 + 120_000, t0 + 240_000)], 1
        )
    )
    assert [f["t"] - t0 for f in frames] == [m * 60_000 for m in (0, 1, 4, 5, 6, 7, 8, 9)]
