"""The web app in process (Starlette's test client), with a fake InfluxDB port.

Bad input: forged and expired tokens, a missing CSRF token, oversized and malformed
form fields, an unknown site, another courtyard, InfluxDB down. Each gets a clear
page, the right status, and nothing is written (neither a mark nor the household's
10-minute slot). The clock is injected: Thursday 11 June 2026, 21:30 local.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

with warnings.catch_warnings():
    # Starlette 1.x nudges towards httpx2 for its test client; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from klankkast.courtyard.app import SECURITY_HEADERS, Services, create_app
from klankkast.courtyard.config import parse_config
from klankkast.courtyard.errors import StorageError
from klankkast.courtyard.influxstore import MarkPoint, SiteData
from klankkast.courtyard.invitations import SqliteInvitations
from klankkast.courtyard.model import Limits, NodeMinute

AMS = ZoneInfo("Europe/Amsterdam")
NOW = int(dt.datetime(2026, 6, 11, 21, 30, tzinfo=AMS).timestamp() * 1000)
MIN = 60_000


@dataclass
class FakeStore:
    """The InfluxDB port: the last hour at 58 dB(A) except the last 10 min ... see levels."""

    down: bool = False
    level_db: float = 58.0
    marks: list[tuple[str, str, int, str | None, int | None]] = field(default_factory=list)
    reads: int = 0

    def read_site(self, site: str, since_ms: int, now_ms: int) -> SiteData:
        self.reads += 1
        if self.down:
            raise StorageError("InfluxDB at http://127.0.0.1:9 unreachable: refused")
        start = now_ms - now_ms % MIN - 60 * MIN
        rows = [
            NodeMinute(start + k * MIN, "n1", 10 ** ((35.0 if k < 50 else self.level_db) / 10))
            for k in range(60)
        ]
        # what InfluxDB would hold: one point per (household, time), the detail merged in
        marks = sorted({(m[2], m[1]) for m in self.marks if m[0] == site})
        return SiteData(site, since_ms, now_ms, rows, [], [], [], [], marks)

    def write_marks(self, marks: Sequence[MarkPoint]) -> None:
        if self.down:
            raise StorageError("InfluxDB at http://127.0.0.1:9 unreachable: refused")
        self.marks.extend((m.site, m.household, m.t_ms, m.kind, m.severity) for m in marks)


@dataclass
class World:
    client: TestClient
    store: FakeStore
    invitations: SqliteInvitations
    tokens: dict[str, str]
    ids: dict[str, str]
    clock: list[int]


@pytest.fixture
def world(tmp_path: Path) -> World:
    (tmp_path / "key").write_bytes(b"k" * 48)
    cfg = parse_config(
        {"courtyard": {"secret_file": "key", "database": "inv.sqlite", "cookie_secure": False,
                       "cache_s": 0.0, "sites": {"yard1": "Binnenhof", "yard2": "Hofje"}}},
        base=tmp_path,
    )  # fmt: skip
    inv = SqliteInvitations(cfg.database)
    inv.start()
    toks, ids = {}, {}
    for site in ("yard1", "yard2"):
        ((i, tok),) = inv.create(site, 1, NOW - 86_400_000, 30)
        toks[site], ids[site] = tok, i.id
    ((old, old_tok),) = inv.create("yard1", 1, NOW - 40 * 86_400_000, 30)
    toks["expired"], ids["expired"] = old_tok, old.id
    store = FakeStore()
    clock = [NOW]
    svc = Services(
        cfg=cfg, key=cfg.secret_key(), invitations=inv, store=store, limits=Limits(),
        now_ms=lambda: clock[0],
    )  # fmt: skip
    client = TestClient(create_app(svc), base_url="http://testserver")
    yield World(client, store, inv, toks, ids, clock)
    inv.close()


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, "no CSRF field in the form"
    return m.group(1)


def _open(w: World, site: str = "yard1") -> str:
    r = w.client.get(f"/i/{w.tokens[site]}")
    assert r.status_code == 200
    r = w.client.get(f"/s/{site}")
    assert r.status_code == 200
    return _csrf(r.text)


def test_invitation_sets_a_strict_httponly_session_cookie(world: World) -> None:
    r = world.client.get(f"/i/{world.tokens['yard1']}")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "kk_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    # the cookie carries neither the token nor anything derived from it without the key
    assert world.tokens["yard1"].lower() not in cookie


def test_security_headers_on_pages_and_errors(world: World) -> None:
    for r in (world.client.get("/how"), world.client.get("/s/yard1"), world.client.get("/nope")):
        for key, value in SECURITY_HEADERS.items():
            assert r.headers[key] == value
    csp = SECURITY_HEADERS["content-security-policy"]
    assert "default-src 'self'" in csp and "http" not in csp


def test_mark_writes_once_per_ten_minutes(world: World) -> None:
    """A mark at 21:30, another at 21:35 (not counted), a third at 21:40 (counted)."""
    csrf = _open(world)
    r = world.client.post("/s/yard1/mark", data={"csrf": csrf, "kind": "music", "severity": "4"})
    assert r.status_code == 200
    assert 'data-counted="yes"' in r.text
    # the level is that of the fake: 58 dB(A) in the evening (limit 45)
    assert "58 dB(A), boven de avondgrens van 45" in r.text
    world.clock[0] = NOW + 5 * MIN
    r = world.client.post("/s/yard1/mark", data={"csrf": csrf})
    assert r.status_code == 200 and 'data-counted="no"' in r.text and "21:30" in r.text
    world.clock[0] = NOW + 10 * MIN
    r = world.client.post("/s/yard1/mark", data={"csrf": csrf, "lang": "en"})
    assert 'data-counted="yes"' in r.text
    assert [(m[2], m[3], m[4]) for m in world.store.marks] == [
        (NOW, "music", 4), (NOW + 10 * MIN, None, None),
    ]  # fmt: skip
    household = world.store.marks[0][1]
    assert re.fullmatch(r"[0-9a-f]{32}", household)
    assert world.tokens["yard1"] not in household and world.ids["yard1"] not in household


@pytest.mark.parametrize(
    ("token", "status", "what"),
    [
        ("A" * 43, 404, "unknown"),  # well-formed but forged
        ("x", 404, "unknown"),  # malformed
        ("expired", 403, "expired"),
    ],
)
def test_forged_and_expired_tokens_are_refused(
    world: World, token: str, status: int, what: str
) -> None:
    token = world.tokens.get(token, token)
    r = world.client.get(f"/i/{token}")
    assert r.status_code == status
    assert f'data-error="{what}"' in r.text
    assert "set-cookie" not in r.headers or "kk_session" not in r.headers["set-cookie"]


def test_revoked_invitation_stops_its_session(world: World) -> None:
    _open(world)
    assert world.invitations.revoke(world.ids["yard1"], NOW)
    r = world.client.get("/s/yard1")
    assert r.status_code == 403 and 'data-error="revoked"' in r.text
    assert world.client.get(f"/i/{world.tokens['yard1']}").status_code == 403


def test_other_courtyard_and_unknown_site(world: World) -> None:
    _open(world, "yard1")
    r = world.client.get("/s/yard2")
    assert r.status_code == 403 and 'data-error="other_site"' in r.text
    r = world.client.get("/s/nowhere?lang=en")
    assert r.status_code == 404 and "Unknown courtyard" in r.text
    # marking another courtyard with a valid CSRF token of one's own is refused too
    r = world.client.post("/s/yard2/mark", data={"csrf": _csrf(world.client.get("/s/yard1").text)})
    assert r.status_code == 403
    assert world.store.marks == []


def test_no_session_is_refused(world: World) -> None:
    r = world.client.get("/s/yard1")
    assert r.status_code == 403 and 'data-error="no_session"' in r.text
    world.client.cookies.set("kk_session", "abcdefgh.1781000000.forged")
    assert world.client.get("/s/yard1").status_code == 403


@pytest.mark.parametrize(
    ("data", "status", "what"),
    [
        ({"kind": "music"}, 403, "csrf"),
        ({"csrf": "0" * 64}, 403, "csrf"),
        ({"csrf": "{csrf}", "kind": "fireworks"}, 400, "bad_form"),
        ({"csrf": "{csrf}", "severity": "9"}, 400, "bad_form"),
        ({"csrf": "{csrf}", "severity": "1.5"}, 400, "bad_form"),
        ({"csrf": "{csrf}", "kind": "music" * 30}, 400, "bad_form"),
        ({"csrf": "{csrf}", "name": "Jan"}, 400, "bad_form"),
        ({"csrf": "{csrf}", "kind": "x" * 3000}, 413, "too_large"),
    ],
)
def test_bad_forms_write_nothing(
    world: World, data: dict[str, str], status: int, what: str
) -> None:
    csrf = _open(world)
    form = {k: v.replace("{csrf}", csrf) for k, v in data.items()}
    r = world.client.post("/s/yard1/mark", data=form)
    assert r.status_code == status
    assert f'data-error="{what}"' in r.text
    assert world.store.marks == []
    assert world.invitations.last_mark_ms(world.ids["yard1"]) is None


def test_malformed_bodies_write_nothing(world: World) -> None:
    csrf = _open(world)
    for body, ctype in (
        (b"\xff\xfe=1", "application/x-www-form-urlencoded"),
        (f"csrf={csrf}&csrf={csrf}".encode(), "application/x-www-form-urlencoded"),
        (f'{{"csrf": "{csrf}"}}'.encode(), "application/json"),
    ):
        r = world.client.post("/s/yard1/mark", content=body, headers={"content-type": ctype})
        assert r.status_code == 400, body
    assert world.store.marks == []


def test_influxdb_down_gives_503_and_writes_nothing(world: World) -> None:
    csrf = _open(world)
    world.store.down = True
    r = world.client.get("/s/yard1")
    assert r.status_code == 503 and 'data-error="storage"' in r.text
    r = world.client.post("/s/yard1/mark", data={"csrf": csrf})
    assert r.status_code == 503
    assert world.store.marks == []
    # the household was not charged its 10-minute slot: it may mark once InfluxDB is back
    assert world.invitations.last_mark_ms(world.ids["yard1"]) is None
    world.store.down = False
    r = world.client.post("/s/yard1/mark", data={"csrf": csrf})
    assert 'data-counted="yes"' in r.text and len(world.store.marks) == 1


def test_the_access_log_has_no_address_and_no_token(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="klankkast.courtyard.access"):
        _open(world)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/i/<token>" in text and "/s/yard1 200" in text
    assert world.tokens["yard1"] not in text
    assert "testclient" not in text and "127.0.0.1" not in text


def test_pages_in_both_languages(world: World) -> None:
    _open(world)
    nl = world.client.get("/s/yard1/week?lang=nl")
    en = world.client.get("/s/yard1/week?lang=en")
    assert '<html lang="nl">' in nl.text and "Deze week" in nl.text
    assert '<html lang="en">' in en.text and "This week" in en.text
    how = world.client.get("/how?lang=en")
    assert "No audio is ever recorded" in how.text and "365 days" in how.text
    # the limits of rules.default.toml, as the page states them
    assert "day from 7:00 (50 dB(A)), evening from 19:00 (45 dB(A))" in how.text
    assert "night from 23:00 (40 dB(A))" in how.text
    assert "<script" not in how.text + nl.text + en.text


def test_one_tap_then_kind_and_severity_complete_the_same_mark(world: World) -> None:
    """The detail is written at the time of the counted mark (the same InfluxDB point),
    so it never counts as a second mark."""
    csrf = _open(world)
    r = world.client.post("/s/yard1/mark", data={"csrf": csrf})
    assert 'data-counted="yes"' in r.text and 'action="/s/yard1/mark/detail"' in r.text
    world.clock[0] = NOW + 2 * MIN
    r = world.client.post(
        "/s/yard1/mark/detail", data={"csrf": csrf, "kind": "bangs", "severity": "5"}
    )
    assert r.status_code == 200 and "aangevuld" in r.text
    assert [(m[2], m[3], m[4]) for m in world.store.marks] == [
        (NOW, None, None),
        (NOW, "bangs", 5),
    ]
    assert world.invitations.last_mark_ms(world.ids["yard1"]) == NOW


def test_detail_needs_a_counted_mark_and_something_to_add(world: World) -> None:
    csrf = _open(world)
    r = world.client.post("/s/yard1/mark/detail", data={"csrf": csrf, "kind": "music"})
    assert r.status_code == 409 and 'data-error="no_mark"' in r.text
    world.client.post("/s/yard1/mark", data={"csrf": csrf})
    r = world.client.post("/s/yard1/mark/detail", data={"csrf": csrf})
    assert r.status_code == 400
    r = world.client.post("/s/yard1/mark/detail", data={"kind": "music"})
    assert r.status_code == 403
    world.clock[0] = NOW + 10 * MIN  # the mark's 10 minutes are over
    r = world.client.post("/s/yard1/mark/detail", data={"csrf": csrf, "kind": "music"})
    assert r.status_code == 409
    assert len(world.store.marks) == 1


def test_week_day_labels_do_not_depend_on_the_locale() -> None:
    from klankkast.courtyard.texts import day_label

    assert day_label(dt.date(2026, 6, 11), "nl") == "do 11-06"
    assert day_label(dt.date(2026, 6, 11), "en") == "Thu 11-06"


def test_a_foreign_origin_is_refused_even_with_the_token(world: World) -> None:
    csrf = _open(world)
    r = world.client.post(
        "/s/yard1/mark", data={"csrf": csrf}, headers={"origin": "https://evil.example"}
    )
    assert r.status_code == 403 and 'data-error="csrf"' in r.text
    r = world.client.post("/s/yard1/mark", data={"csrf": csrf}, headers={"origin": "null"})
    assert r.status_code == 403
    r = world.client.post(
        "/s/yard1/mark", data={"csrf": csrf}, headers={"origin": "http://testserver"}
    )
    assert r.status_code == 200
    assert len(world.store.marks) == 1


def test_the_page_shows_the_households_own_marks(world: World) -> None:
    """After a mark at 21:30 the household sees it as its own; another household of the
    same courtyard sees one mark of one household, and none of its own."""
    csrf = _open(world)
    world.client.post("/s/yard1/mark", data={"csrf": csrf})
    page = world.client.get("/s/yard1").text
    assert re.search(r'data-fact="own-marks">21:30<', page)
    other = TestClient(world.client.app, base_url="http://testserver")
    ((_, tok),) = world.invitations.create("yard1", 1, NOW - 86_400_000, 30)
    assert other.get(f"/i/{tok}").status_code == 200
    page = other.get("/s/yard1").text
    assert re.search(r'data-fact="own-marks">geen<', page)
    assert re.search(r'data-fact="marks">1 \(1 huishoudens\)<', page)
