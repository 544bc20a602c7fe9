"""The demo as a package (issue 13): a pure scenario, the node's own publisher with the
node's flow control, and modules that each answer one question."""

from __future__ import annotations

import ast
from pathlib import Path

import demo
import pytest
from demo._common import DemoError

from klankkast.sensor import wire
from klankkast.sensor.publisher import FakePublisher

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "deploy" / "local" / "demo"

#: what the scenario may import: computation only (no clock, files, processes, network)
PURE = {"__future__", "math", "collections.abc", "dataclasses", "datetime", "typing"}
PURE |= {"zoneinfo", "numpy"}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            out.add(node.module or "")
    return out


def test_the_scenario_imports_nothing_that_does_io() -> None:
    assert _imports(PACKAGE / "scenario.py") <= PURE


def test_the_demo_speaks_mqtt_only_through_the_nodes_adapter() -> None:
    """No second MQTT client: paho is the node's adapter's business."""
    users = [p.name for p in PACKAGE.glob("*.py") if any("paho" in m for m in _imports(p))]
    assert users == []
    assert "klankkast.sensor.publisher" in str(_imports(PACKAGE / "frames.py"))


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_of_the_demo_is_a_whole_program(path: Path) -> None:
    """Issue 13: none of its modules much over 400 lines."""
    assert len(path.read_text().splitlines()) <= 400


def _status(t: int) -> dict[str, object]:
    return {"site": "s", "node": "n-001", "t": t, "state": "online", "version": "t",
            "uptime_s": 0.0}  # fmt: skip


def test_wire_publisher_sends_the_wire_encoding_and_waits_for_every_ack() -> None:
    fake = FakePublisher(window=3)  # acks inside publish(), before the id is returned
    pub = demo.WirePublisher("mqtt://127.0.0.1:1", "t", adapter=fake)
    for t in range(10):
        pub.publish("status", _status(t))
    pub.close()
    assert pub.count == 10
    assert fake.sent[0] == (wire.topic("s", "n-001", "status"), wire.encode("status", _status(0)), False)  # fmt: skip
    assert fake.max_outstanding == 1


def test_wire_publisher_keeps_no_more_than_the_window_unacknowledged() -> None:
    fake = FakePublisher(window=2)
    fake.hold = True
    pub = demo.WirePublisher("mqtt://127.0.0.1:1", "t", timeout_s=0.05, adapter=fake)
    pub.publish("status", _status(0))
    pub.publish("status", _status(1))
    with pytest.raises(DemoError, match="did not acknowledge"):
        pub.publish("status", _status(2))  # a third would exceed the window
    assert len(fake.sent) == 2
    fake.release()
    pub.publish("status", _status(2))
    fake.release()
    pub.close()
    assert fake.max_outstanding == 2


def test_wire_publisher_stops_on_a_refused_message() -> None:
    fake = FakePublisher(window=5)
    fake.reason = 0x87  # not authorised (MQTT v5 §3.4.2.1)
    pub = demo.WirePublisher("mqtt://127.0.0.1:1", "t", adapter=fake)
    pub.publish("status", _status(0))
    with pytest.raises(DemoError, match=r"refused .* 0x87"):
        pub.flush()
