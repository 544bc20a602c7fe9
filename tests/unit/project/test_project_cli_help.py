"""Every program has ``--version``, and every ``--help`` (programs and subcommands)
lists its exit statuses, as the README promises (issue 17: no ``--version`` anywhere;
five ``--help`` texts without exit statuses). Runs the installed console scripts."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import klankkast

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
PROGRAMS = ("klankkast-sensor", "klankkast-ingest", "klankkast-analyze", "klankkast-alerts",
            "klankkast-courtyard")  # fmt: skip


def _subcommands() -> list[list[str]]:
    from klankkast.analysis.cli import COMMANDS as ANALYZE
    from klankkast.sensor.cli import COMMANDS as SENSOR

    return [
        *(["klankkast-sensor", c] for c in SENSOR),
        *(["klankkast-analyze", c] for c in ANALYZE),
        ["klankkast-ingest", "check"],
        ["klankkast-alerts", "check"],
        *(["klankkast-courtyard", "--config", "x", c]
          for c in ("serve", "invite", "revoke", "list", "check")),
    ]  # fmt: skip


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_scripts_are_declared() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(declared) == set(PROGRAMS)


@pytest.mark.parametrize("program", PROGRAMS)
def test_version(program: str) -> None:
    res = _run(program, "--version")
    assert res.returncode == 0, res.stderr
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert res.stdout.strip() == f"{program} {version}"
    assert version == klankkast.__version__


@pytest.mark.parametrize("argv", [[p] for p in PROGRAMS] + _subcommands(), ids=" ".join)
def test_help_lists_exit_statuses(argv: list[str]) -> None:
    res = _run(*argv, "--help")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split()).lower()
    assert "exit status" in text
    assert "0" in text.split("exit status", 1)[1][:200]
