"""frame_builder encodes a frame once and only swaps ``seq``: bytes equal wire.encode;
with the fast path (the splice, ``[node] fast_paths``) on and off."""

from __future__ import annotations

import json

import numpy as np
import pytest

from klankkast.sensor import wire
from klankkast.sensor.dsp import Meter
from klankkast.sensor.service import frame_builder


def _payloads() -> list[tuple[str, dict[str, object]]]:
    m = Meter(16000, offset_db=100.0, summary_s=2)
    x = np.random.default_rng(5).normal(0.0, 0.1, 2 * 16000)
    out = []
    for r in m.process(x) + m.flush():
        kind = "second" if r.kind == "second" else "minute"
        out.append((kind, {"site": "yard1", "node": "n1", "t": 1_700_000_000_000, **r.fields}))
    return out


@pytest.mark.parametrize("fast", [True, False], ids=["fast_paths", "plain"])
@pytest.mark.parametrize("seq", [0, 1, 9, 10, 99_999, 2**40])
def test_build_equals_wire_encode(seq: int, fast: bool) -> None:
    payloads = _payloads()
    assert {k for k, _ in payloads} == {"second", "minute"}
    for kind, payload in payloads:
        payload["dur_ms"] = 1000
        got = frame_builder(kind, payload, fast)(seq)
        assert got == wire.encode(kind, {**payload, "seq": seq})
        assert json.loads(got)["seq"] == seq


@pytest.mark.parametrize("fast", [True, False], ids=["fast_paths", "plain"])
def test_bad_payload_fails_at_build_time_and_seq_is_checked(fast: bool) -> None:
    kind, payload = _payloads()[0]
    payload["dur_ms"] = 1000
    with pytest.raises(wire.SchemaError):
        frame_builder(kind, {**payload, "bogus": 1}, fast)
    with pytest.raises(wire.SchemaError):
        frame_builder(kind, {**payload, "seq": 3}, fast)
    build = frame_builder(kind, payload, fast)
    with pytest.raises(wire.SchemaError):
        build(-1)
