"""Complaint/visit import: formats, DST, one error per problem with file and line, privacy."""

from __future__ import annotations

import json

import pytest

from klankkast.analysis.errors import InputErrors, TimeParseError
from klankkast.analysis.importer import (
    fix_swapped_lat_lon,
    haversine_m,
    load_complaints,
    load_site_map,
    load_visits,
    main,
)
from klankkast.analysis.timeutil import parse_time_ms

HEAD = "id,received_at,incident_start,incident_end,site,category,source\n"
VHEAD = "id,arrived_at,left_at,site,outcome,complaint_ids\n"


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------- time rules
def test_local_time_without_offset_is_amsterdam():
    """Summer: CEST = UTC+2; winter: CET = UTC+1."""
    assert parse_time_ms("2026-06-01T22:15") == parse_time_ms("2026-06-01T20:15:00Z")
    assert parse_time_ms("2026-01-10 22:15") == parse_time_ms("2026-01-10T21:15:00Z")
    assert parse_time_ms("2026-06-01") == parse_time_ms("2026-05-31T22:00:00Z")


def test_dst_gap_0230_on_last_sunday_of_march_is_an_error():
    """29 March 2026: clocks jump 02:00 -> 03:00 local, 02:30 never happens."""
    with pytest.raises(TimeParseError, match="does not exist"):
        parse_time_ms("2026-03-29T02:30")
    # with an explicit offset it is a valid instant
    assert parse_time_ms("2026-03-29T02:30+01:00") == parse_time_ms("2026-03-29T01:30Z")


def test_ambiguous_0230_on_last_sunday_of_october_is_first_occurrence():
    """25 October 2026: 02:00-02:59 happens twice; without offset the first (CEST, UTC+2)."""
    assert parse_time_ms("2026-10-25T02:30") == parse_time_ms("2026-10-25T00:30Z")
    assert parse_time_ms("2026-10-25T02:30+01:00") == parse_time_ms("2026-10-25T01:30Z")


def test_dst_complaints_in_csv(tmp_path):
    """The October complaint imports (first occurrence), the March one fails with its line."""
    p = _write(
        tmp_path,
        "c.csv",
        HEAD
        + "c1,2026-10-25T03:10,2026-10-25T02:30,,yard1,music,phone\n"
        + "c2,2026-03-29T03:10,2026-03-29T02:30,,yard1,music,phone\n",
    )
    with pytest.raises(InputErrors) as err:
        load_complaints(p)
    assert len(err.value.errors) == 1
    e = err.value.errors[0]
    assert (e.line, e.column, e.value) == (3, "incident_start", "2026-03-29T02:30")
    assert str(p) in str(e)
    p.write_text(HEAD + "c1,2026-10-25T03:10,2026-10-25T02:30,,yard1,music,phone\n")
    (c,), _ = load_complaints(p)
    assert c.incident_start_ms == parse_time_ms("2026-10-25T00:30:00Z")
    assert c.received_ms == parse_time_ms("2026-10-25T02:10:00Z")  # 03:10 CET


# ------------------------------------------------------------------- bad files
def test_wrong_columns_one_error(tmp_path):
    p = _write(tmp_path, "c.csv", "id,when,site\nc1,2026-06-01T22:00,yard1\n")
    with pytest.raises(InputErrors) as err:
        load_complaints(p, fmt="csv")
    (e,) = err.value.errors
    assert e.line == 1
    assert "received_at" in str(e) and "incident_start" in str(e)


def test_every_problem_reported_once_with_line_and_nothing_imported(tmp_path):
    p = _write(
        tmp_path,
        "c.csv",
        HEAD
        + "c1,2026-06-01T22:30,2026-06-01T22:00,,yard1,music,app\n"  # line 2 ok
        + "c2,yesterday,2026-06-01T22:00,,yard1,music,app\n"  # line 3 bad time
        + "c3,2026-06-01T22:30,2026-06-01T22:00,,nowhere,music,app\n"  # line 4 unknown site
        + "c1,2026-06-01T22:30,2026-06-01T22:00,,yard1,music,app\n",  # line 5 duplicate id
    )
    with pytest.raises(InputErrors) as err:
        load_complaints(p, known_sites={"yard1", "yard2"})
    got = [(e.line, e.column) for e in err.value.errors]
    assert got == [(3, "received_at"), (4, "site"), (5, "id")]
    assert "first on line 2" in str(err.value.errors[2])
    assert all(str(p) in str(e) for e in err.value.errors)


def test_visits_validation(tmp_path):
    p = _write(
        tmp_path,
        "v.csv",
        VHEAD
        + "v1,2026-06-01T23:00,2026-06-01T23:20,yard1,warning,c1;c2\n"
        + "v2,2026-06-01T23:00,2026-06-01T22:20,yard1,fine,\n"  # left before arrival
        + "v3,2026-06-01T23:00,2026-06-01T23:20,yard1,arrested,\n"  # bad outcome
        + "v4,2026-06-01T23:00,2026-06-01T23:20,yard1,other,c9\n",  # unknown complaint
    )
    with pytest.raises(InputErrors) as err:
        load_visits(p, known_sites={"yard1"}, complaint_ids={"c1", "c2"})
    assert [(e.line, e.column) for e in err.value.errors] == [
        (3, "left_at"),
        (4, "outcome"),
        (5, "complaint_ids"),
    ]
    p.write_text(VHEAD + "v1,2026-06-01T23:00,2026-06-01T23:20,yard1,warning,c1; c2\n")
    (v,) = load_visits(p)
    assert v.complaint_ids == ("c1", "c2")
    assert v.left_ms - v.arrived_ms == 20 * 60_000


# ------------------------------------------------------------- Open311/Signalen
SITE_MAP = """
max_distance_m = 150
[[site]]
id = "yard1"
lat = 52.3745
lon = 4.8820
addresses = ["Westerstraat 12"]
[[site]]
id = "yard2"
lat = 52.3600
lon = 4.9000
radius_m = 80
"""


def test_site_map_by_address_and_distance(tmp_path):
    sm = load_site_map(_write(tmp_path, "sites.toml", SITE_MAP))
    assert sm.match("westerstraat 12, 1015 MN Amsterdam", None, None) == "yard1"
    assert sm.match("Westerstraat 120", None, None) is None  # not a prefix of a word boundary
    # 0.0005 deg latitude = 55.6 m from yard2 (inside 80 m); 0.001 = 111 m (outside)
    assert haversine_m(52.36, 4.9, 52.3605, 4.9) == pytest.approx(55.6, abs=0.5)
    assert sm.match(None, 52.3605, 4.9000) == "yard2"
    assert sm.match(None, 52.3610, 4.9000) is None


def test_open311_requests_json_drops_personal_data(tmp_path):
    doc = [
        {
            "service_request_id": "638344",
            "status": "open",
            "service_name": "Geluidsoverlast",
            "service_code": "noise",
            "description": "Mijn buurman Jan de Vries draait elke nacht muziek",
            "requested_datetime": "2026-06-05T23:40:00+02:00",
            "address": "Westerstraat 12 1015MN Amsterdam",
            "lat": 52.3745,
            "long": 4.8820,
            "email": "jan@example.org",
            "first_name": "Piet",
            "phone": "0612345678",
        },
        {
            "service_request_id": "638345",
            "service_name": "Geluidsoverlast",
            "requested_datetime": "2026-06-05T23:50:00+02:00",
            "address": "Elders 1",
            "lat": 52.0,
            "long": 5.0,
        },
    ]
    p = _write(tmp_path, "requests.json", json.dumps(doc))
    sm = load_site_map(_write(tmp_path, "sites.toml", SITE_MAP))
    complaints, unmatched = load_complaints(p, site_map=sm)
    assert unmatched == 1
    (c,) = complaints
    assert (c.id, c.site, c.category, c.source) == ("638344", "yard1", "Geluidsoverlast", "open311")
    assert c.incident_start_ms == parse_time_ms("2026-06-05T21:40:00Z")
    text = repr(c)
    for secret in ("Jan", "jan@example.org", "Piet", "0612345678", "Westerstraat", "muziek"):
        assert secret not in text


def test_signalen_csv_lat_lon_swap(tmp_path):
    """Row 2 carries longitude 4.8820 in the column called lat: swapped back to yard1."""
    p = _write(
        tmp_path,
        "signalen.csv",
        "id,created_at,incident_date_start,incident_date_end,main_category,sub_category,lat,lon,text,email\n"
        "SIG-1,2026-06-05T23:45:00+02:00,2026-06-05T23:30:00+02:00,,overlast,geluid,52.3745,4.8820,lawaai,a@b.nl\n"
        "SIG-2,2026-06-06T00:15:00+02:00,2026-06-06T00:00:00+02:00,,overlast,geluid,4.8820,52.3745,lawaai,a@b.nl\n",
    )
    sm = load_site_map(_write(tmp_path, "sites.toml", SITE_MAP))
    complaints, unmatched = load_complaints(p, site_map=sm)
    assert unmatched == 0
    assert [c.site for c in complaints] == ["yard1", "yard1"]
    assert complaints[1].category == "geluid"
    assert complaints[0].incident_start_ms == parse_time_ms("2026-06-05T21:30:00Z")
    assert fix_swapped_lat_lon(4.9, 52.37) == (52.37, 4.9)
    assert fix_swapped_lat_lon(52.37, 4.9) == (52.37, 4.9)


def test_signalen_api_json(tmp_path):
    doc = {
        "results": [
            {
                "id": 1234,
                "created_at": "2026-06-05T23:45:00+02:00",
                "incident_date_start": "2026-06-05T23:30:00+02:00",
                "incident_date_end": None,
                "category": {"main": "overlast-van-en-door-personen", "sub": "geluidsoverlast"},
                "location": {"geometrie": {"type": "Point", "coordinates": [4.9000, 52.3600]}},
                "reporter": {"email": "x@y.nl", "phone": "06"},
                "text": "vrij tekstveld",
            }
        ]
    }
    p = _write(tmp_path, "signalen.json", json.dumps(doc))
    sm = load_site_map(_write(tmp_path, "sites.toml", SITE_MAP))
    (c,), _ = load_complaints(p, fmt="signalen", site_map=sm)
    assert (c.id, c.site, c.category, c.source) == ("1234", "yard2", "geluidsoverlast", "signalen")


def test_import_cli_reports_errors_and_exit_status(tmp_path, capsys):
    import argparse

    from klankkast.analysis import importer

    good = _write(tmp_path, "c.csv", HEAD + "c1,2026-06-01T22:30,2026-06-01T22:00,,yard1,,\n")
    bad = _write(tmp_path, "b.csv", HEAD + "c1,2026-06-01T22:30,2026-13-01T22:00,,yard1,,\n")
    parser = argparse.ArgumentParser()
    importer.add_arguments(parser)
    assert main(parser.parse_args(["--complaints", str(good), "--sites", "yard1"])) == 0
    assert "1 complaints" in capsys.readouterr().out
    assert main(parser.parse_args(["--complaints", str(bad)])) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: column incident_start" in err
    assert "nothing imported" in err


def test_site_map_node_positions_give_the_nearest_node(tmp_path):
    """Two nodes 0.0004° of latitude apart (44.5 m); a complaint position 0.0001° from
    n2 (11 m) belongs to n2. Only the node id is kept, not the position."""
    text = SITE_MAP.replace(
        'addresses = ["Westerstraat 12"]',
        'addresses = ["Westerstraat 12"]\n'
        'nodes = [{id = "n1", lat = 52.3745, lon = 4.8820},'
        ' {id = "n2", lat = 52.3749, lon = 4.8820}]',
    )
    sm = load_site_map(_write(tmp_path, "sites.toml", text))
    assert sm.has_node_positions()
    assert sm.nearest_node("yard1", 52.3748, 4.8820) == "n2"
    assert sm.nearest_node("yard1", 52.3746, 4.8820) == "n1"
    assert sm.nearest_node("yard1", None, None) == ""
    assert sm.nearest_node("yard2", 52.3600, 4.9000) == ""  # no node positions there
    bad = SITE_MAP.replace('addresses = ["Westerstraat 12"]', 'nodes = [{id = "n1", lat = 95}]')
    with pytest.raises(InputErrors) as err:
        load_site_map(_write(tmp_path, "bad.toml", bad))
    assert "site[0].nodes[0]" in str(err.value)


# ------------------------------------------------- Excel's Dutch defaults (issue 16)
SIG_ROWS = [
    ("SIG-1", "2026-06-05T23:45:00+02:00", "2026-06-05T23:30:00+02:00", "geluid café",
     "52,3745", "4,8820"),
    ("SIG-2", "2026-06-06T00:15:00+02:00", "2026-06-06T00:00:00+02:00", "geluid café",
     "4,8820", "52,3745"),
]  # fmt: skip


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig", "utf-8"])
def test_dutch_excel_signalen_csv_with_semicolons_and_decimal_commas(tmp_path, encoding):
    """A Signalen export saved by a Dutch Excel: ';' between fields, decimal commas in
    lat/lon, Windows-1252 (or UTF-8 with a BOM). It used to be rejected as 'missing
    column(s) id,created_at'. The header is found, 52,3745 is 52.3745 (yard1's
    position), the swapped row is swapped back, and 'café' survives the decoding."""
    text = "id;created_at;incident_date_start;sub_category;lat;lon\r\n" + "".join(
        ";".join(r) + "\r\n" for r in SIG_ROWS
    )
    p = tmp_path / "signalen.csv"
    p.write_bytes(text.encode(encoding))
    sm = load_site_map(_write(tmp_path, "sites.toml", SITE_MAP))
    complaints, unmatched = load_complaints(p, site_map=sm)
    assert unmatched == 0
    assert [(c.id, c.site, c.category) for c in complaints] == [
        ("SIG-1", "yard1", "geluid café"),
        ("SIG-2", "yard1", "geluid café"),
    ]


def test_complaints_csv_with_semicolons_and_bom(tmp_path):
    """Our own CSV saved by Excel: ';' separators and a BOM before 'id'."""
    text = HEAD.replace(",", ";") + "c1;2026-06-01T22:30;2026-06-01T22:00;;yard1;muziek;app\n"
    p = tmp_path / "c.csv"
    p.write_bytes(text.encode("utf-8-sig"))
    (c,), _ = load_complaints(p, known_sites={"yard1"})
    assert (c.id, c.site, c.category) == ("c1", "yard1", "muziek")
    v = tmp_path / "v.csv"
    v.write_bytes(
        (VHEAD.replace(",", ";") + "v1;2026-06-01T22:40;2026-06-01T23:00;yard1;warning;c1\n")
        .encode("cp1252")
    )  # fmt: skip
    (visit,) = load_visits(v, known_sites={"yard1"}, complaint_ids={"c1"})
    assert visit.complaint_ids == ("c1",)


def test_parse_float_decimal_comma():
    from klankkast.analysis.csvfile import detect_separator, parse_float

    assert parse_float("52,3745") == 52.3745
    assert parse_float("52.3745") == 52.3745
    assert parse_float("1.234,5") == 1234.5 and parse_float("1,234.5") == 1234.5
    assert parse_float("") is None and parse_float("abc") is None and parse_float("nan") is None
    assert detect_separator('id;"a,b";c') == ";"
    assert detect_separator("id,a;b,c") == ","
    assert detect_separator("id\ta\tb") == "\t"


def test_a_file_level_problem_is_reported_once(tmp_path):
    """2,000 Signalen records without a site and no --site-map: one line, not 2,000."""
    rows = "".join(
        f"S{i},2026-06-05T23:45:00+02:00,2026-06-05T23:30:00+02:00,52.3745,4.8820\n"
        for i in range(2000)
    )
    p = _write(tmp_path, "s.csv", "id,created_at,incident_date_start,lat,lon\n" + rows)
    with pytest.raises(InputErrors) as err:
        load_complaints(p, fmt="signalen")
    (e,) = err.value.errors
    assert "no site column (2000 record(s)); pass --site-map FILE" in str(e)


def test_the_same_problem_on_many_lines_is_one_line_with_a_suggestion(tmp_path):
    """2,000 rows naming 'Yard_1' (a typo of yard1): one line with the count, the first
    lines, and the nearest known site."""
    rows = "".join(f"c{i},2026-06-01T22:30,2026-06-01T22:00,,Yard_1,,\n" for i in range(2000))
    p = _write(tmp_path, "c.csv", HEAD + rows)
    with pytest.raises(InputErrors) as err:
        load_complaints(p, known_sites={"yard1", "yard2", "binnenplaats-ster"})
    (e,) = err.value.errors
    text = str(e)
    assert "did you mean 'yard1'?" in text
    assert "on 2000 lines (2, 3, 4, 5, 6, …)" in text
    one = "c1,2026-06-01T22:30,2026-06-01T22:00,,{},,\n"
    for name, known, hint in (
        ("binnenplaats ster", {"yard1", "binnenplaats-ster"}, "did you mean 'binnenplaats-ster'?"),
        ("zzzz", {"yard1"}, None),
    ):
        with pytest.raises(InputErrors) as err:
            load_complaints(_write(tmp_path, "d.csv", HEAD + one.format(name)), known_sites=known)
        text = str(err.value.errors[0])
        assert "unknown site" in text
        assert (hint in text) if hint else ("did you mean" not in text)
