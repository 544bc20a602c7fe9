"""One live alert as the engine emits it, for the alert adapters' and formatters' tests.

Its values are the ones the tests' expectations are written from: LAeq 72.9 dB(A),
two nodes, a night-time absolute-limit episode that started 300 s before ``t``.
"""

from __future__ import annotations

from klankkast.alerts.engine import Alert


def sample_alert(state: str = "start") -> Alert:
    return Alert(
        "yard1",
        state,
        {
            "schema": 1, "id": "yard1-1", "site": "yard1", "state": state,
            "started": 1_780_000_000_000, "t": 1_780_000_300_000, "ended": None,
            "duration_s": 300.0, "LAeq": 72.9, "LCeq": 80.1, "LAFmax": 78.0,
            "LAeq_recent": 73.0, "bass": 7.2, "nodes": ["n1", "n2"], "period": "night",
            "rule": "absolute", "late": False, "quiet": False,
        },
    )  # fmt: skip
