"""``pip install .`` (not editable) gives importable packages and console scripts (issue 2).

The source is copied to a temporary directory, built into a wheel with pip (build
isolation, as on a fresh machine), and the wheel installed with ``--no-deps`` into a
new virtual environment. The project's dependencies are borrowed from the test
venv through a plain path line in a ``.pth`` file, which adds the directory to
``sys.path`` without running its ``.pth`` files, so the editable install of the
working tree stays invisible and every ``klankkast`` module must come from the wheel.
"""

from __future__ import annotations

import configparser
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

SCRIPTS = {
    "klankkast-sensor": "klankkast._entry:sensor",
    "klankkast-ingest": "klankkast._entry:ingest",
    "klankkast-analyze": "klankkast._entry:analyze",
    "klankkast-alerts": "klankkast._entry:alerts",
    "klankkast-courtyard": "klankkast._entry:courtyard",
}
#: the extra each program needs
EXTRA = {
    "klankkast-sensor": "sensor",
    "klankkast-ingest": "central",
    "klankkast-analyze": "central",
    "klankkast-alerts": "central",
    "klankkast-courtyard": "central",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, venv) built from a copy of the working tree."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("klankkast", "sensor", "ingest", "analysis", "alerts", "courtyard"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    dist = tmp / "dist"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, f"pip wheel failed:\n{res.stdout}\n{res.stderr}"
    (wheel,) = dist.glob("klankkast-*.whl")
    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    res = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
         "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, f"pip install failed:\n{res.stdout}\n{res.stderr}"
    bare = tmp / "bare"
    shutil.copytree(venv, bare, symlinks=True)
    _fix_venv_scripts(venv, bare)
    (venv_site,) = (venv / "lib").glob("python3*/site-packages")
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (venv_site / "zz_klankkast_test_deps.pth").write_text("\n".join(deps) + "\n")
    return wheel, venv


def _fix_venv_scripts(old: Path, new: Path) -> None:
    """Console scripts of a copied venv point at the copy's interpreter."""
    for script in (new / "bin").glob("klankkast-*"):
        script.write_text(script.read_text().replace(str(old), str(new)))


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_without_extras_a_program_names_its_extra_in_one_line(
    installed: tuple[Path, Path], script: str
) -> None:
    """``pip install klankkast`` alone (no numpy, paho, pandas...): each console script
    works or exits 1 with one line naming the extra, never a traceback."""
    _, venv = installed
    bare = venv.parent / "bare"
    res = subprocess.run(
        [str(bare / "bin" / script), "--help"], capture_output=True, text=True, timeout=60,
        cwd=bare,
    )  # fmt: skip
    if res.returncode == 0:
        assert "usage" in res.stdout.lower()
        return
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"pip install 'klankkast[{EXTRA[script]}]'" in lines[0] and script in lines[0]


def test_wheel_contents_and_entry_points(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (ep_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        eps = configparser.ConfigParser()
        eps.read_string(zf.read(ep_name).decode())
    for pkg in ("sensor", "ingest", "analysis", "alerts", "courtyard"):
        assert f"klankkast/{pkg}/__init__.py" in names
        assert f"klankkast/{pkg}/py.typed" in names
    assert "klankkast/sensor/wire.py" in names
    # Every module and package-data file (*.toml, *.html) of the flat folders ships.
    for folder in ("sensor", "ingest", "analysis", "alerts", "courtyard"):
        for pattern in ("*.py", "*.toml", "*.html", "templates/*.html", "static/*"):
            for path in (REPO / folder).glob(pattern):
                rel = path.relative_to(REPO / folder).as_posix()
                assert f"klankkast/{folder}/{rel}" in names, f"{folder}/{rel} not in the wheel"
    # Flat layout mapped under klankkast/: nothing installs as a top-level sensor/ etc.
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"klankkast", ep_name.split("/", 1)[0]}
    assert dict(eps["console_scripts"]) == SCRIPTS


def test_installed_packages_import_from_the_wheel(installed: tuple[Path, Path]) -> None:
    _, venv = installed
    code = (
        "import klankkast.sensor, klankkast.ingest, klankkast.analysis, klankkast.sensor.wire\n"
        "import klankkast.courtyard\n"
        "for m in (klankkast.sensor, klankkast.ingest, klankkast.analysis, klankkast.courtyard):\n"
        "    print(m.__file__)\n"
    )
    # cwd outside the working tree: its klankkast/ must not shadow the installed one.
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=venv,
    )
    assert res.returncode == 0, res.stderr
    files = res.stdout.split()
    assert len(files) == 4
    for f in files:
        assert Path(f).is_relative_to(venv), f"{f} imported from outside the new venv"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_scripts_run(installed: tuple[Path, Path], script: str) -> None:
    _, venv = installed
    exe = venv / "bin" / script
    assert exe.exists(), f"console script {script} not installed"
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, cwd=venv)
    assert res.returncode == 0, f"{script} --help failed:\n{res.stderr}"
    assert "usage" in res.stdout.lower()
