"""``--levels`` / ``--influx`` take the one address form; other forms are one line and
exit 2 (issue 17: ``http://host:8086/db`` gave a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from klankkast.analysis.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--levels", "http://127.0.0.1:8086/klankkast", "--out", "OUT"],
        ["plan", "--levels", "http://127.0.0.1:8086/klankkast", "--out", "OUT"],
        ["report", "--levels", "x.csv", "--out", "OUT", "--influx", "http://h:8086/db"],
        ["import", "--complaints", "c.csv", "--influx", "influxdb+http://h/db"],
        ["check", "--levels", "influxdb+http://u:secret@h:8086/db"],
        ["check", "--levels", "influxdb+http://h:8086/db?token=abc"],
    ],
)
def test_other_forms_are_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "influxdb+http(s)://[user@]host:port/database" in err
    assert "secret" not in err
    assert not (tmp_path / "out").exists()


def test_a_user_needs_a_password_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--levels", "influxdb+http://reader@h:8086/db"]) == 2
    err = capsys.readouterr().err
    assert "--influx-password-file" in err and len(err.strip().splitlines()) == 1


def test_an_unreadable_password_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", "--levels", "influxdb+http://reader@h:8086/db",
            "--influx-password-file", str(tmp_path / "missing")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--influx-password-file" in err and "readable file" in err


def test_password_reaches_the_loader_but_not_the_address(tmp_path: Path) -> None:
    import argparse

    from klankkast.analysis._cliargs import resolve_influx_args
    from klankkast.analysis.levels import parse_influx_url

    pw = tmp_path / "pw"
    pw.write_text("s@c:ret\n")
    args = argparse.Namespace(
        levels="influxdb+http://reader@h:8086/db?measurement=second",
        influx=None,
        influx_password_file=str(pw),
    )
    resolve_influx_args(args)
    src = parse_influx_url(args.levels)
    assert (src.url, src.database, src.username, src.password, src.measurement) == (
        "http://h:8086", "db", "reader", "s@c:ret", "second",
    )  # fmt: skip
    assert str(args.levels_address) == "influxdb+http://reader@h:8086/db?measurement=second"


def test_a_csv_path_is_left_alone(tmp_path: Path) -> None:
    import argparse

    from klankkast.analysis._cliargs import resolve_influx_args

    args = argparse.Namespace(levels="levels.csv", influx=None)
    resolve_influx_args(args)
    assert args.levels == "levels.csv"


def test_check_validates_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("[periods]\nday_start_h = 25\n")
    assert main(["check", "--rules", str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL rules:") and "day_start_h" in out
    assert main(["check"]) == 0
    assert "OK   rules: documented defaults" in capsys.readouterr().out


def test_check_names_a_missing_level_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--levels", str(tmp_path / "nope.csv")]) == 1
    assert "FAIL levels:" in capsys.readouterr().out
