"""The central deployment files: compose parses and pins every image, the Dockerfile
pins its base, the systemd units are complete, and the compose configs load."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CENTRAL = REPO / "deploy" / "central"
# name:tag with a tag that names an exact release: digits and dots (optionally a
# -variant such as -slim-bookworm), never "latest" or a bare major version
PINNED = re.compile(r"^[a-z0-9./_-]+:(\d+\.\d+(\.\d+)+)(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$")


def _compose() -> dict:
    return yaml.safe_load((CENTRAL / "docker-compose.yml").read_text())


def test_compose_parses_with_the_central_services() -> None:
    doc = _compose()
    services = doc["services"]
    assert {"mosquitto", "influxdb", "grafana", "ingest", "alerts"} <= set(services)
    assert services["ingest"]["command"][0] == "klankkast-ingest"
    assert services["alerts"]["command"][0] == "klankkast-alerts"


def test_every_image_is_pinned_to_an_exact_version() -> None:
    for name, svc in _compose()["services"].items():
        image = svc["image"]
        assert PINNED.match(image), f"{name}: image {image!r} is not pinned to an exact version"
        assert "latest" not in image
    assert _compose()["services"]["influxdb"]["image"].startswith("influxdb:1.11.")


def test_dockerfile_base_is_pinned() -> None:
    froms = [
        ln.split()[1]
        for ln in (CENTRAL / "Dockerfile").read_text().splitlines()
        if ln.upper().startswith("FROM ")
    ]
    assert froms
    for image in froms:
        assert PINNED.match(image), image


def test_compose_files_it_mounts_exist() -> None:
    doc = _compose()
    for name, svc in doc["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith(("./secrets", "./mosquitto-etc")):  # made by make-secrets.sh
                continue
            if src.startswith("."):
                assert (CENTRAL / src).exists(), f"{name}: {src} missing"
    for secret in doc["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    script = CENTRAL / "make-secrets.sh"
    text = script.read_text()
    for secret in doc["secrets"]:
        assert secret.removesuffix(".password") in text, secret


@pytest.mark.parametrize("name", ["central.compose.toml", "central.alerts.compose.toml"])
def test_compose_configs_load(name: str) -> None:
    from klankkast.ingest.config import load_central_config

    cfg = load_central_config(CENTRAL / name)
    assert cfg.mqtt.url == "mqtts://mosquitto:8883"
    assert cfg.influxdb.url == "http://influxdb:8086"
    assert cfg.mqtt.username == ("alerts" if "alerts" in name else "ingest")


@pytest.mark.parametrize(
    "unit", sorted((CENTRAL / "systemd").glob("*.service")), ids=lambda p: p.name
)
def test_systemd_units(unit: Path) -> None:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(unit)
    svc = cp["Service"]
    timer = unit.with_suffix(".timer")
    if timer.exists():
        # started by its timer: one run, then done
        assert svc["Type"] == "oneshot"
        assert "Install" not in cp
        tp = configparser.ConfigParser(strict=False, interpolation=None)
        tp.read(timer)
        assert tp["Timer"]["OnCalendar"] and tp["Timer"]["Persistent"] == "true"
        assert tp["Install"]["WantedBy"] == "timers.target"
    else:
        assert svc["Type"] in ("simple", "notify")
        assert svc["Restart"] == "on-failure"
        assert cp["Install"]["WantedBy"] == "multi-user.target"
    assert svc["User"] == "klankkast"
    assert svc["ExecStart"].split()[0].endswith(unit.stem)
    assert "--config /etc/klankkast/central.toml" in svc["ExecStart"]
    assert svc.get("NoNewPrivileges") == "yes"


def test_scripts_are_executable_bash() -> None:
    for path in (CENTRAL / "make-secrets.sh", REPO / "deploy" / "influxdb" / "setup.sh"):
        assert path.stat().st_mode & 0o111, path
        assert path.read_text().startswith("#!/usr/bin/env bash")


def test_web_server_fills_every_template_value_and_reaches_the_courtyard() -> None:
    """The web service (nginx) gets a value for every ${KLANKKAST_*} of its template, and
    proxies /binnenplaats/ to where the courtyard listens, under its base_url's path."""
    import re
    import tomllib

    web = _compose()["services"]["web"]
    template = (CENTRAL.parent / "web" / "klankkast.conf.template").read_text()
    needed = set(re.findall(r"\$\{(KLANKKAST_[A-Z_]+)\}", template))
    assert needed and needed <= set(web["environment"])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in web["volumes"]}
    assert mounts["/etc/nginx/templates/default.conf.template"] == "../web/klankkast.conf.template"
    assert "reports" in _compose()["volumes"]
    cfg = tomllib.loads((CENTRAL / "central.compose.toml").read_text())["courtyard"]
    host, port = web["environment"]["KLANKKAST_COURTYARD_UPSTREAM"].split(":")
    assert host == "courtyard" and int(port) == cfg["listen_port"]
    assert cfg["base_url"].startswith("https://") and cfg["base_url"].endswith("/binnenplaats")
    assert "location /binnenplaats/" in template
