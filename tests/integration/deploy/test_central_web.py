"""The central stack's web server (deploy/web/klankkast.conf.template) in a real nginx:
reports read-only over TLS, the residents' page proxied under /binnenplaats/ without
stripping the path, and no client address in its log."""

from __future__ import annotations

import http.client
import http.server
import re
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from services import find_binary, free_port, make_tls_files
from support.stack import require

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "deploy" / "web" / "klankkast.conf.template"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"


def render(template: str, env: dict[str, str]) -> str:
    """What the nginx image's envsubst does: ${VAR} of the given names, nothing else."""
    return re.sub(r"\$\{(KLANKKAST_[A-Z_]+)\}", lambda m: env[m.group(1)], template)


class _Upstream(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict[str, str]]]] = []

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, dict(self.headers)))
        body = b"courtyard page"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[dict[str, Any]]:
    require("nginx", "openssl")
    tls = make_tls_files(tmp_path / "tls")
    reports = tmp_path / "reports"
    # the layout of klankkast-analyze run: <date>/report/{report.html,summary.json}, latest -> <date>
    (reports / "2026-12-03" / "report").mkdir(parents=True)
    (reports / "2026-12-03" / "report" / "report.html").write_text(
        "<!DOCTYPE html><title>r</title>"
    )
    (reports / "2026-12-03" / "report" / "summary.json").write_text("{}")
    (reports / "latest").symlink_to("2026-12-03")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    _Upstream.seen = []
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        "KLANKKAST_WEB_PORT": f"127.0.0.1:{port}",
        "KLANKKAST_TLS_CERT": str(tls.server_cert),
        "KLANKKAST_TLS_KEY": str(tls.server_key),
        "KLANKKAST_REPORTS_DIR": str(reports),
        "KLANKKAST_COURTYARD_UPSTREAM": f"127.0.0.1:{upstream.server_address[1]}",
    }
    (tmp_path / "klankkast.conf").write_text(render(TEMPLATE.read_text(), env))
    temp = tmp_path / "temp"
    temp.mkdir()
    # the main configuration the nginx image has around conf.d/*.conf, in a temp dir
    (tmp_path / "nginx.conf").write_text(
        f"""daemon off;
user root;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp_path}/klankkast.conf;
}}
"""
    )
    log = open(tmp_path / "access.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [find_binary("nginx"), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ctx = ssl.create_default_context(cafile=str(tls.ca_file))
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
            conn.request("HEAD", "/reports/")
            conn.getresponse().read()
            conn.close()
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.1)
    try:
        yield {"port": port, "ctx": ctx, "log": tmp_path / "access.log", "reports": reports}
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        upstream.shutdown()
        upstream.server_close()


def _get(web: dict[str, Any], method: str, path: str, body: bytes | None = None):
    conn = http.client.HTTPSConnection("127.0.0.1", web["port"], context=web["ctx"], timeout=5)
    conn.request(method, path, body=body, headers={"Host": "geluid.example.nl"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_reports_are_served_read_only_over_tls(web: dict[str, Any]) -> None:
    resp, data = _get(web, "GET", "/reports/latest/report/report.html")
    assert resp.status == 200 and data.startswith(b"<!DOCTYPE html>")
    assert resp.getheader("Content-Type", "").startswith("text/html")
    assert "default-src 'none'" in (resp.getheader("Content-Security-Policy") or "")
    assert resp.getheader("Strict-Transport-Security")
    resp, _ = _get(web, "GET", "/reports/latest/report/summary.json")
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    resp, _ = _get(web, "GET", "/")
    assert resp.status == 302 and resp.getheader("Location", "").endswith("/reports/latest/")
    resp, _ = _get(web, "POST", "/reports/latest/report/report.html", b"x")
    assert resp.status == 403
    resp, _ = _get(web, "GET", "/grafana/")
    assert resp.status == 404


def test_the_residents_page_is_proxied_with_its_path(web: dict[str, Any]) -> None:
    resp, data = _get(web, "GET", "/binnenplaats/s/yard1?lang=en")
    assert resp.status == 200 and data == b"courtyard page"
    assert resp.getheader("Strict-Transport-Security")
    resp, _ = _get(web, "POST", "/binnenplaats/s/yard1/mark", b"csrf=x")
    assert resp.status == 200
    (get, post) = _Upstream.seen
    assert get[:2] == ("GET", "/binnenplaats/s/yard1?lang=en")
    assert post[:2] == ("POST", "/binnenplaats/s/yard1/mark")
    headers = {k.lower(): v for k, v in get[2].items()}
    assert headers["host"] == "geluid.example.nl"
    assert headers["x-forwarded-proto"] == "https"
    assert not headers.get("x-forwarded-for")
    # a body over 16 kB never reaches the page
    resp, _ = _get(web, "POST", "/binnenplaats/s/yard1/mark", b"x" * 20_000)
    assert resp.status == 413


def test_no_client_address_in_the_log(web: dict[str, Any]) -> None:
    _get(web, "GET", "/reports/latest/report/report.html")
    _get(web, "GET", "/binnenplaats/s/yard1")
    deadline = time.monotonic() + 5
    # nginx writes a line when a request ends; the fixture's own probe is a line too, so
    # wait for the two requests of this test by name
    while time.monotonic() < deadline and not all(
        path in web["log"].read_text()
        for path in ("/binnenplaats/s/yard1", "/reports/latest/report/report.html")
    ):
        time.sleep(0.05)
    text = web["log"].read_text()
    assert "/binnenplaats/s/yard1" in text and "/reports/latest/report/report.html" in text
    assert "127.0.0.1" not in text, text


def test_the_dashboards_report_links_are_served(web: dict[str, Any], tmp_path: Path) -> None:
    """After one real ``klankkast-analyze run`` into the served folder, every report link
    of the Grafana dashboards (``$reports`` = ``https://HOST/reports``) answers 200 with
    its type: the latest report as HTML, the current plan as a calendar, the folder as a
    listing; through the run's ``latest`` and ``current-plan`` links."""
    import json

    from support.analysis_scenario import make_scenario, write_files

    from klankkast.analysis.cli import main as analyze
    from klankkast.analysis.service import Schedule, parse_config, run_once

    sc = make_scenario(3, sites=1, days=14, founded=4, unfounded=1, gap_day=None)
    files = write_files(sc, tmp_path / "in", two_nodes=False)
    cfg = parse_config(
        {"levels": files["levels"], "out_dir": str(web["reports"]), "lang": "nl"}, base=tmp_path
    )
    run_once(cfg, sc.t1_ms, Schedule(cfg.report_at, cfg.plan_weekday, "Europe/Amsterdam"),
             analyze=analyze, say=lambda _line: None)  # fmt: skip
    types = {".html": "text/html", ".ics": "text/calendar", "": "text/html"}
    urls = {
        link["url"]
        for path in DASHBOARDS.glob("*.json")
        for link in json.loads(path.read_text())["links"]
        if link["type"] == "link"
    }
    assert len(urls) == 3
    for url in sorted(urls):
        path = "/reports/" + url.removeprefix("${reports}/")
        resp, data = _get(web, "GET", path)
        assert resp.status == 200, (path, resp.status)
        assert resp.getheader("Content-Type", "").startswith(types[Path(path).suffix]), path
        assert data
