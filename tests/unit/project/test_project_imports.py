"""Import directions between the programs, checked rather than hoped for (issue 13).

The rooms of the house and who may use whom:

- ``sensor`` (the node) imports no other part: a node installs without the central code;
- ``ingest`` imports only the wire contract ``sensor.wire`` and the storage module
  ``klankkast.influx``;
- ``analysis`` imports neither ``ingest`` nor ``alerts``;
- nothing imports ``alerts`` (a program on top: it uses the analysis' rules and detector);
- nothing imports ``courtyard`` (the residents' page, a program on top: it reads through the
  storage module and uses the analysis' rules for the limits);
- the storage module imports no part;
- the shared modules (``klankkast.decibel``, the one place of decibel arithmetic, and
  ``klankkast.configcheck``, the one config checker) may be imported by every part and
  import no part.

Every ``import``/``from ... import`` in every module is read with :mod:`ast`, including
imports inside functions (the lazy ones count as much as the top-level ones).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PARTS = ("sensor", "ingest", "analysis", "alerts", "courtyard")

#: part -> the klankkast modules (prefixes) outside itself that it may import
#: the shared modules every part may use: they import no part themselves
SHARED: tuple[str, ...] = (
    "klankkast.decibel",
    "klankkast.configcheck",
    "klankkast.version",
    "klankkast.mqttprobe",
    "klankkast.subcommands",
)
_SHARED_NAMES = tuple(m.removeprefix("klankkast.") for m in SHARED)
ALLOWED: dict[str, tuple[str, ...]] = {
    "sensor": SHARED,
    "ingest": ("klankkast.sensor.wire", "klankkast.influx", *SHARED),
    "analysis": ("klankkast.sensor", "klankkast.influx", *SHARED),
    "alerts": (
        "klankkast.analysis",
        "klankkast.influx",
        "klankkast.sensor.wire",
        "klankkast.ingest",
        *SHARED,
    ),
    "courtyard": ("klankkast.analysis", "klankkast.influx", *SHARED),
    "influx": (),
    "decibel": (),
    "configcheck": (),
    "version": (),
    "mqttprobe": (),
    # the subcommand parser gives every program the one --version
    "subcommands": ("klankkast.version",),
}


def imports_of(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every klankkast import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            # "from klankkast.sensor import wire" imports klankkast.sensor.wire
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return [(ln, m) for ln, m in out if m == "klankkast" or m.startswith("klankkast.")]


def modules() -> list[tuple[str, Path]]:
    found = [(part, p) for part in PARTS for p in sorted((REPO / part).glob("*.py"))]
    shared = [(name, REPO / "klankkast" / f"{name}.py") for name in ("influx", *_SHARED_NAMES)]
    return [*found, *shared]


def _allowed(part: str, module: str) -> bool:
    own = f"klankkast.{part}"
    if module == own or module.startswith(own + "."):
        return True
    return any(module == a or module.startswith(a + ".") for a in ALLOWED[part])


@pytest.mark.parametrize("part", [*PARTS, "influx", *_SHARED_NAMES])
def test_import_directions(part: str) -> None:
    bad = []
    for owner, path in modules():
        if owner != part:
            continue
        package = f"klankkast.{part}" if part in PARTS else "klankkast"
        for line, module in imports_of(path, package):
            if not _allowed(part, module):
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {module}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("top", ["alerts", "courtyard"])
def test_nothing_imports_the_programs_on_top(top: str) -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for part, path in modules()
        if part != top
        for line, module in imports_of(path, f"klankkast.{part}")
        if module == f"klankkast.{top}" or module.startswith(f"klankkast.{top}.")
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The check can fail: a lazy import of the ingest inside an analysis function and a
    relative import reaching up to it are both found."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from klankkast.ingest import service\n"
        "from ..ingest.config import load_central_config\n"
        "import klankkast.alerts.engine\n"
    )
    found = sorted(m for _, m in imports_of(probe, "klankkast.analysis"))
    assert found == [
        "klankkast.alerts.engine",
        "klankkast.ingest.config.load_central_config",
        "klankkast.ingest.service",
    ]
    assert not any(_allowed("analysis", m) for m in found)
