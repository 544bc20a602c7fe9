"""The locks in ``requirements/`` and the installed environment agree with ``pyproject.toml``.

Every install (``run-demo.sh``, ``run-tests.sh``, CI, the Pi's ``install.sh``, the central
image) takes its versions from a lock, so that what a fresh machine gets does not drift
with the calendar. These tests fail when someone edits the dependencies in
``pyproject.toml`` and forgets ``deploy/local/lock.sh``, when a lock pins a version that
its range in ``pyproject.toml`` excludes, and when the test environment holds anything
but the locked versions.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[3]
#: lock file -> the extras it resolves
LOCKS = {"sensor": ("sensor",), "central": ("central",), "dev": ("sensor", "central", "dev")}
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)(?:\s*;\s*(.+))?$")


def read_lock(name: str, *, here_only: bool = False) -> dict[str, Version]:
    """Package -> pinned version of ``requirements/<name>.txt`` (comments ignored);
    with ``here_only`` only the pins whose environment marker holds on this machine."""
    pins: dict[str, Version] = {}
    for line in (REPO / "requirements" / f"{name}.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _PIN.match(line)
        assert m, f"requirements/{name}.txt: not an exact pin: {line!r}"
        if here_only and m.group(3) and not Marker(m.group(3)).evaluate():
            continue
        pkg = canonicalize_name(m.group(1))
        assert pkg not in pins, f"requirements/{name}.txt pins {pkg} twice (a forked resolution)"
        pins[pkg] = Version(m.group(2))
    return pins


def wanted(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project.get("dependencies", [])]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_is_pinned_inside_its_range(lock: str) -> None:
    pins = read_lock(lock)
    for req in wanted(LOCKS[lock]):
        if req.marker is not None and not req.marker.evaluate({"python_version": "3.11"}):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, (
            f"pyproject.toml asks for {req} but requirements/{lock}.txt does not pin it; "
            "run deploy/local/lock.sh"
        )
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{lock}.txt pins {name}=={pins[name]}, outside pyproject.toml's "
            f"{req}; run deploy/local/lock.sh"
        )


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_the_lock_holds_nothing_pyproject_does_not_lead_to(lock: str) -> None:
    """Each pin is named in the lock as needed by a requirement (uv's ``# via``), so a
    dependency removed from pyproject.toml leaves no stale pin behind."""
    text = (REPO / "requirements" / f"{lock}.txt").read_text()
    direct = {canonicalize_name(r.name) for r in wanted(LOCKS[lock])}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    for block in blocks:
        name = canonicalize_name(block.split("==", 1)[0])
        if name in direct:
            assert "klankkast (pyproject.toml)" in block, f"{name}: not marked as direct"
        else:
            assert "# via" in block, f"{name}: pinned in requirements/{lock}.txt without a reason"
            assert "klankkast (pyproject.toml)" not in block, (
                f"{name} is marked as a direct requirement of klankkast but pyproject.toml "
                "no longer asks for it; run deploy/local/lock.sh"
            )


@pytest.mark.parametrize("lock", ["sensor", "central"])
def test_every_lock_agrees_with_the_dev_lock(lock: str) -> None:
    """One ``.venv`` serves the demo (central + sensor locks) and the tests (dev lock):
    a package pinned in both must have one version, or running the demo after the
    tests would leave the tests' environment off its lock."""
    pins, dev = read_lock(lock), read_lock("dev")
    for name in pins:
        assert pins[name] == dev.get(name), (name, pins[name], dev.get(name))


def test_paho_stays_inside_what_the_direct_publish_path_was_tested_against() -> None:
    """``ingest/_pahofast.py`` reads paho 2.x private names; its tests ran on 2.1-2.2."""
    for lock in LOCKS:
        v = read_lock(lock).get("paho-mqtt")
        if v is not None:
            assert Version("2.1") <= v < Version("2.3"), (lock, v)
    for req in wanted(("sensor", "central")):
        if canonicalize_name(req.name) == "paho-mqtt":
            assert not req.specifier.contains("2.3.0"), req


def test_the_test_environment_holds_exactly_the_dev_lock() -> None:
    """What ``run-tests.sh`` installed is what the lock says: every pinned package at its
    version, and nothing else beyond pip, setuptools and klankkast itself."""
    pins = read_lock("dev", here_only=True)
    installed = {
        canonicalize_name(d.metadata["Name"]): Version(d.version)
        for d in importlib.metadata.distributions()
    }
    for name, version in pins.items():
        assert installed.get(name) == version, (
            f"{name}: installed {installed.get(name)}, locked {version}"
        )
    extra = set(installed) - set(pins) - {"pip", "setuptools", "klankkast", "wheel"}
    assert not extra, f"installed but not locked: {sorted(extra)}"
