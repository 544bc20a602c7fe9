"""The demo prints Grafana links only when a Grafana answers (issue 17); otherwise how to
start one on the demo's data."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import demo
import pytest

REPO = Path(__file__).resolve().parents[3]


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/api/health":
            body = b'{"database": "ok", "version": "11.3.0"}'
            self.send_response(200)
        else:
            body = b"not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _summary(url: str, answers: bool) -> dict[str, object]:
    links = {uid: f"{url}/d/{uid}" for uid in demo.DASHBOARD_UIDS}
    return {"dashboards": {"links": links, "grafana": {"url": url, "answers": answers}}}


def test_links_only_when_grafana_answers(grafana: str) -> None:
    assert demo.grafana_answers(grafana)
    text = "\n".join(demo.grafana_lines(_summary(grafana, True)))
    for uid in demo.DASHBOARD_UIDS:
        assert f"{grafana}/d/{uid}" in text


def test_without_grafana_the_command_that_starts_one() -> None:
    # nothing listens on the discard port of loopback
    url = "http://127.0.0.1:9"
    assert not demo.grafana_answers(url, timeout_s=0.5)
    text = "\n".join(demo.grafana_lines(_summary(url, False)))
    assert "/d/" not in text
    assert "nothing answers at http://127.0.0.1:9" in text
    assert "docker run" in text and "grafana/grafana-oss:" in text
