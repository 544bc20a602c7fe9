"""deploy/pi: the unit file, install script and README stay consistent with the code."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

from klankkast.sensor import wire

PI = Path(__file__).resolve().parents[3] / "deploy" / "pi"


def unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(
        re.sub(r"^DeviceAllow=.*$", "", (PI / "klankkast-sensor.service").read_text(), flags=re.M)
    )
    return cp


def test_unit_is_notify_with_watchdog_dedicated_user_and_ordered_stop() -> None:
    s = unit()["Service"]
    assert s["Type"] == "notify"
    assert int(s["WatchdogSec"]) >= 10
    assert s["User"] == "klankkast" and "audio" in s["SupplementaryGroups"]
    assert s["Restart"] == "on-failure"
    assert s["KillSignal"] == "SIGTERM"
    assert s["RestartPreventExitStatus"] == "1"  # config errors do not loop
    assert s["ExecStart"] == (
        "/opt/klankkast/bin/klankkast-sensor run --config /etc/klankkast/node.toml"
    )


def test_install_script_matches_the_unit_and_parses() -> None:
    text = (PI / "install.sh").read_text()
    assert "PREFIX=$ROOT/opt/klankkast" in text and "ETC=$ROOT/etc/klankkast" in text
    assert "[sensor]" in text and "useradd --system" in text
    assert "systemctl enable klankkast-sensor.service" in text
    assert subprocess.run(["bash", "-n", str(PI / "install.sh")], check=False).returncode == 0
    if shutil.which("shellcheck"):
        assert subprocess.run(["shellcheck", "-S", "error", str(PI / "install.sh")]).returncode == 0


def test_readme_explains_every_status_field() -> None:
    text = (PI / "README.md").read_text()
    for field in ("state", *wire.STATUS_OPTIONAL, "version", "uptime_s"):
        assert f"`{field}`" in text, field
    assert "INMP441" in text and "36 dB(A)" in text and "½-inch" in text
