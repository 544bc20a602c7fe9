"""Config, CLI, invitation store and tokens of klankkast-courtyard (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from klankkast.courtyard import tokens
from klankkast.courtyard.cli import main
from klankkast.courtyard.config import load_config, parse_config
from klankkast.courtyard.errors import ConfigError
from klankkast.courtyard.invitations import InvitationRefused, SqliteInvitations

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "deploy" / "central" / "central.example.toml"
DAY = 86_400_000


def test_the_example_config_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.sites == {"yard1": "Binnenplaats Noord"}
    assert cfg.root_path == "/binnenplaats"
    assert cfg.influxdb.username == "courtyard_read"
    assert cfg.influxdb.write_username == "courtyard_write"
    assert cfg.influxdb.marks_rp == "experience"
    assert cfg.cookie_secure is True


def test_the_ingest_still_accepts_the_example_with_a_courtyard_section() -> None:
    from klankkast.ingest.config import load_central_config

    assert load_central_config(EXAMPLE).influxdb.database == "klankkast"


def _doc(**changes: object) -> dict[str, object]:
    c: dict[str, object] = {"secret_file": "key", "sites": {"yard1": "Hof"}}
    c.update(changes)
    return {"courtyard": c}


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"sites": {}}, "sites"),
        ({"sites": {"bad site": "x"}}, "sites"),
        ({"listen_port": 0}, "listen_port"),
        ({"listen_port": "80"}, "listen_port"),
        ({"cache_s": -1}, "cache_s"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"cookie_secure": "yes"}, "cookie_secure"),
        ({"invitation_days": 0}, "invitation_days"),
        ({"colour": "red"}, "colour"),
        ({"influxdb": {"marks_rp": "a b"}}, "influxdb.marks_rp"),
        ({"influxdb": {"user": "x"}}, "influxdb.user"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(
    tmp_path: Path, changes: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_doc(**changes), base=tmp_path, path="c.toml")
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"c.toml: courtyard.{key} = ")


def test_every_problem_of_the_file_is_reported_at_once(tmp_path: Path) -> None:
    doc = _doc(listen_port=0, cache_s=-1, colour="red", influxdb={"timeout_s": 0})
    with pytest.raises(ConfigError) as info:
        parse_config(doc, base=tmp_path, path="c.toml")
    keys = sorted(e.key for e in info.value.errors)
    assert keys == [
        "courtyard.cache_s",
        "courtyard.colour",
        "courtyard.influxdb.timeout_s",
        "courtyard.listen_port",
    ]
    assert "did you mean 'cookie_secure'?" not in str(info.value)  # 'colour' is not near


def test_a_near_miss_gets_a_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'listen_port'"):
        parse_config(_doc(listen_prot=8090), base=tmp_path)


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"short")
    cfg = parse_config(_doc(), base=tmp_path)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        cfg.secret_key()


def test_tokens_and_sessions() -> None:
    key, other = b"k" * 32, b"o" * 32
    tok = tokens.new_token()
    assert tokens.well_formed_token(tok) and len(tok) == 43
    assert tokens.token_hash(tok) != tok and len(tokens.token_hash(tok)) == 64
    s = tokens.session_value(key, "abcdefgh", 1_000_000)
    assert tokens.verify_session(key, s, 1_000_100, 3600) == "abcdefgh"
    assert tokens.verify_session(other, s, 1_000_100, 3600) is None  # another key
    assert tokens.verify_session(key, s, 1_000_000 + 3601, 3600) is None  # too old
    assert tokens.verify_session(key, s.replace("abcdefgh", "abcdefgj"), 1_000_100, 3600) is None
    c = tokens.csrf_token(key, s)
    assert tokens.verify_csrf(key, s, c) and not tokens.verify_csrf(key, s, "")
    assert not tokens.verify_csrf(key, tokens.session_value(key, "zzzzzzzz", 1_000_000), c)
    # the household hash depends on the key: without it, it links to nothing
    assert tokens.household_hash(key, "abcdefgh") != tokens.household_hash(other, "abcdefgh")
    assert tokens.household_hash(key, "abcdefgh") == tokens.household_hash(key, "abcdefgh")


def test_store_keeps_only_hashes_and_refuses_revoked_and_expired(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    store = SqliteInvitations(path)
    store.start()
    made = store.create("yard1", 3, 1_000 * DAY, 30)
    assert len({i.id for i, _ in made}) == 3
    inv, tok = made[0]
    assert store.by_token(tok).id == inv.id
    store.by_token(tok).check(1_000 * DAY + 29 * DAY)
    with pytest.raises(InvitationRefused) as info:
        store.by_token(tok).check(1_000 * DAY + 30 * DAY)
    assert info.value.reason == "expired"
    assert store.revoke(inv.id, 1_001 * DAY)
    with pytest.raises(InvitationRefused) as info:
        store.by_token(tok).check(1_001 * DAY)
    assert info.value.reason == "revoked"
    with pytest.raises(InvitationRefused):
        store.by_token(tokens.new_token())
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for _, t in made:
        assert t.encode() not in raw
    # kill and reopen: the invitations and their states survive
    store = SqliteInvitations(path)
    store.start()
    assert [i.revoked_ms is not None for i in store.all()].count(True) == 1
    store.close()


def _config(tmp_path: Path) -> Path:
    (tmp_path / "key").write_bytes(b"x" * 40)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[courtyard]\nsecret_file = "key"\ndatabase = "inv.sqlite"\n'
        'base_url = "https://geluid.example.nl/hof"\n[courtyard.sites]\nyard1 = "Hof"\n'
    )
    return cfg


def test_cli_invite_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    out = tmp_path / "letters"
    assert (
        main(["--config", str(cfg), "invite", "--site", "yard1", "--count", "2", "--out", str(out)])
        == 0
    )
    letters = sorted(out.glob("letter-*.html"))
    assert len(letters) == 2
    html = letters[0].read_text()
    assert "https://geluid.example.nl/hof/i/" in html and "<svg" in html
    assert 'lang="nl"' in html and 'lang="en"' in html and "size: A4" in html
    assert "http" not in html.replace("https://geluid.example.nl/hof/i/", "").replace(
        "http://www.w3.org/2000/svg", ""
    )  # no third-party resource in the letter
    capsys.readouterr()
    assert main(["--config", str(cfg), "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in rows] == ["valid", "valid"]
    assert main(["--config", str(cfg), "revoke", rows[0]["id"]]) == 0
    assert main(["--config", str(cfg), "revoke", "nosuchid"]) == 4
    capsys.readouterr()
    main(["--config", str(cfg), "list", "--json"])
    assert sorted(r["state"] for r in json.loads(capsys.readouterr().out)) == ["revoked", "valid"]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    assert (
        main(
            [
                "--config",
                str(cfg),
                "invite",
                "--site",
                "yard9",
                "--count",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--site" in err[0] and "yard9" in err[0]
    assert main(["--config", str(tmp_path / "missing.toml"), "list"]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_help_lists_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "exit status" in text and "3  InfluxDB" in text


def test_the_compose_service_and_its_config() -> None:
    import yaml

    central = REPO / "deploy" / "central"
    services = yaml.safe_load((central / "docker-compose.yml").read_text())["services"]
    svc = services["courtyard"]
    assert svc["command"][:3] == ["klankkast-courtyard", "--config", "/etc/klankkast/central.toml"]
    assert svc["ports"] == ["127.0.0.1:8090:8090"]  # loopback only, behind the web server
    cfg = load_config(central / "central.compose.toml")
    assert cfg.listen_port == 8090 and cfg.cookie_secure
    assert set(svc["secrets"]) == {
        cfg.secret_file.name,
        cfg.influxdb.password_file.name if cfg.influxdb.password_file else "",
        cfg.influxdb.write_password_file.name if cfg.influxdb.write_password_file else "",
    }
    assert "COPY courtyard ./courtyard" in (central / "Dockerfile").read_text()
