"""``deploy/pi/install.sh`` run for real on this Debian, into a scratch root
(``--root``), and ``systemd-analyze verify`` on every unit (issue 17)."""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support.stack import require

REPO = Path(__file__).resolve().parents[3]
UNITS = [REPO / "deploy" / "pi" / "klankkast-sensor.service",
         *sorted((REPO / "deploy" / "central" / "systemd").glob("*.service"))]  # fmt: skip


def _copy_source(dst: Path) -> Path:
    """What install.sh needs of a checkout, so that pip builds outside the worktree."""
    src = dst / "src"
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("klankkast", "sensor", "ingest", "analysis", "alerts", "courtyard",
                 "requirements"):  # fmt: skip
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    shutil.copytree(REPO / "deploy" / "pi", src / "deploy" / "pi", ignore=ignore)
    return src


def _install(src: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(src / "deploy" / "pi" / "install.sh"), "--root", str(root),
         "--source", str(src)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(source copy, scratch root) after one run of install.sh."""
    tmp = tmp_path_factory.mktemp("pi-install")
    src = _copy_source(tmp)
    root = tmp / "root"
    res = _install(src, root)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return src, root


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_layout_and_modes(installed: tuple[Path, Path]) -> None:
    src, root = installed
    etc = root / "etc" / "klankkast"
    assert filecmp.cmp(etc / "node.toml", src / "deploy" / "pi" / "node.example.toml", False)
    assert _mode(etc) == 0o750
    assert _mode(etc / "node.toml") == 0o640
    # the one mode of secrets (deploy/mosquitto/README.md, add-node.sh): 0640
    assert _mode(etc / "mqtt.password") == 0o640
    assert _mode(root / "var" / "lib" / "klankkast") == 0o750
    unit = root / "etc" / "systemd" / "system" / "klankkast-sensor.service"
    assert filecmp.cmp(unit, REPO / "deploy" / "pi" / "klankkast-sensor.service", False)
    assert _mode(unit) == 0o644


def test_the_installed_program_runs(installed: tuple[Path, Path]) -> None:
    _src, root = installed
    res = subprocess.run([str(root / "opt/klankkast/bin/klankkast-sensor"), "--version"],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert res.returncode == 0 and res.stdout.startswith("klankkast-sensor "), res.stderr


def test_the_installed_config_passes_validation_at_once(installed: tuple[Path, Path]) -> None:
    """Before, the copied example stopped at ca_file, then cert_file, key_file and
    mic_response: one rerun of check per key. Now only the node's own values remain."""
    _src, root = installed
    etc = root / "etc" / "klankkast"
    (etc / "mqtt.password").write_text("from add-node.sh\n")
    text = (etc / "node.toml").read_text()
    here = etc / "node.local.toml"
    here.write_text(
        text.replace("/etc/klankkast/", f"{etc}/").replace(
            "/var/lib/klankkast/", f"{root}/var/lib/klankkast/"
        )
    )
    code = (
        "import sys; from klankkast.sensor.config import load_config; "
        "c = load_config(sys.argv[1]); print(c.calibration.calibrated_at, c.mqtt.ca_file)"
    )
    res = subprocess.run([str(root / "opt/klankkast/bin/python"), "-c", code, str(here)],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["None", "None"]


def test_a_second_run_keeps_the_config(installed: tuple[Path, Path]) -> None:
    src, root = installed
    node_toml = root / "etc" / "klankkast" / "node.toml"
    node_toml.write_text(node_toml.read_text().replace('id = "n1"', 'id = "n7"'))
    res = _install(src, root)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'id = "n7"' in node_toml.read_text()


def test_install_refuses_an_unknown_option(tmp_path: Path) -> None:
    res = subprocess.run(["bash", str(REPO / "deploy/pi/install.sh"), "--frobnicate"],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 2 and "unknown option --frobnicate" in res.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path, installed: tuple[Path, Path], tmp_path: Path) -> None:
    """``systemd-analyze verify`` with the programs of the scratch install standing in for
    /opt/klankkast/bin; any warning fails (an unknown key is only a warning: the
    central units had StartLimitIntervalSec in [Service], where systemd ignores it)."""
    require("systemd-analyze")
    _src, root = installed
    text = unit.read_text().replace("/opt/klankkast/bin/", f"{root}/opt/klankkast/bin/")
    copy = tmp_path / unit.name
    copy.write_text(text)
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    res = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == "", res.stderr


@pytest.mark.parametrize(
    "timer", sorted((REPO / "deploy" / "central" / "systemd").glob("*.timer")), ids=lambda p: p.name
)
def test_systemd_analyze_verify_timer(
    timer: Path, installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """A timer with the service it starts (klankkast-analyze.timer: the nightly analysis)."""
    require("systemd-analyze")
    _src, root = installed
    service = timer.with_suffix(".service")
    for unit in (service, timer):
        text = unit.read_text().replace("/opt/klankkast/bin/", f"{root}/opt/klankkast/bin/")
        (tmp_path / unit.name).write_text(text)
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    res = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / service.name),
         str(tmp_path / timer.name)],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == "", res.stderr


def test_systemd_analyze_verify_can_fail(tmp_path: Path) -> None:
    """The check above sees a misplaced key (it is not a check that cannot fail)."""
    require("systemd-analyze")
    bad = tmp_path / "bad.service"
    bad.write_text(f"[Unit]\nDescription=x\n[Service]\nExecStart={sys.executable}\n"
                   "StartLimitIntervalSec=300\n")  # fmt: skip
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert "Unknown key" in res.stderr
