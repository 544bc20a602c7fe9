"""mypy, run as ``run-tests.sh`` runs it, sees across the packages and can fail (issue 12).

Behind setuptools' ``package-dir`` mapping mypy resolved every ``klankkast.*`` import
to ``Any`` and passed on everything, while its strict overrides named modules it never
saw. Here a module with a deliberate cross-module type error is put into the package
and plain ``mypy`` (the project's configuration, from the repository root) must report
exactly that error; ``reveal_type`` must show the real type; and every strict override
must name a module that exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
MYPY = Path(sys.executable).with_name("mypy")

PROBE = """\
from klankkast.analysis.rules import Rules
from klankkast.analysis.patrol import local_minutes

reveal_type(Rules)
wrong: str = local_minutes([0])
"""


@pytest.fixture(scope="module")
def mypy_on_a_probe() -> str:
    probe = REPO / "klankkast" / f"_typecheck_probe_{uuid.uuid4().hex[:8]}.py"
    probe.write_text(PROBE)
    try:
        res = subprocess.run(
            [str(MYPY)], cwd=REPO, capture_output=True, text=True, timeout=300,
            env={**os.environ, "MYPY_FORCE_COLOR": "0"},
        )  # fmt: skip
    finally:
        probe.unlink()
    assert res.returncode == 1, f"mypy did not fail on the probe:\n{res.stdout}{res.stderr}"
    return res.stdout.replace(probe.stem, "PROBE")


def test_a_cross_module_type_error_is_reported(mypy_on_a_probe: str) -> None:
    errors = [line for line in mypy_on_a_probe.splitlines() if ": error:" in line]
    assert len(errors) == 1, mypy_on_a_probe
    assert re.search(r"klankkast/PROBE\.py:5: error: Incompatible types in assignment "
                     r"\(expression has type \"ndarray.*variable has type \"str\"\)", errors[0]), errors  # fmt: skip


def test_imports_of_the_own_packages_are_not_any(mypy_on_a_probe: str) -> None:
    (note,) = [line for line in mypy_on_a_probe.splitlines() if "Revealed type" in line]
    assert note.endswith('-> klankkast.analysis.rules.Rules"') and '"Any"' not in note, note


def test_no_override_names_a_module_mypy_never_sees(mypy_on_a_probe: str) -> None:
    assert "unused section" not in mypy_on_a_probe, mypy_on_a_probe
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    strict = [m for o in cfg["overrides"] if o.get("strict") for m in o["module"]]
    assert strict
    for module in strict:
        path = REPO / Path(*module.split("."))
        assert path.with_suffix(".py").is_file(), f"strict override names {module}: no such module"


def test_strict_covers_every_pure_core() -> None:
    """The issue's list: sensor dsp/weighting/bands/wire, analysis episodes/correlate/
    patrol/stats/rules, ingest validate/health and the alert engine."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    strict = {m for o in cfg["overrides"] if o.get("strict") for m in o["module"]}
    cores = {
        "klankkast.sensor.dsp", "klankkast.sensor.weighting", "klankkast.sensor.bands",
        "klankkast.sensor.wire", "klankkast.analysis.episodes", "klankkast.analysis.correlate",
        "klankkast.analysis.patrol", "klankkast.analysis.stats", "klankkast.analysis.rules",
        "klankkast.ingest.validate", "klankkast.ingest.health",
    }  # fmt: skip
    assert cores <= strict, cores - strict
    assert any(m.endswith("alert_engine") or m.startswith("klankkast.alerts") for m in strict)
