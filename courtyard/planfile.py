"""The current patrol plan: ``plan.json`` of ``klankkast-analyze plan``, re-read when it changes.

Only the weekly windows are used: ``(site, weekday_iso, start "HH:MM", end "HH:MM")``
in the plan's local time (Europe/Amsterdam, the rules' zone). A plan replaced by a
new run is picked up at the next page computation; a broken replacement keeps the
previous windows and is logged.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from klankkast.courtyard.errors import ConfigError

__all__ = ["PlanFile", "parse_windows"]

log = logging.getLogger("klankkast.courtyard")
_HM = re.compile(r"([01]\d|2[0-4]):[0-5]\d")
Windows = dict[str, list[tuple[int, str, str]]]


def parse_windows(text: str) -> Windows:
    """The windows of a plan.json document per site; ``ValueError`` naming the fault."""
    doc = json.loads(text)
    out: Windows = {}
    for k, w in enumerate(doc.get("windows", [])):
        try:
            site, wd, start, end = (
                str(w["site"]),
                int(w["weekday_iso"]),
                str(w["start"]),
                str(w["end"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"windows[{k}] must have site, weekday_iso, start, end ({err})"
            ) from None
        if not 1 <= wd <= 7 or not _HM.fullmatch(start) or not _HM.fullmatch(end):
            raise ValueError(f"windows[{k}] must have weekday_iso 1-7 and HH:MM times; got {w!r}")
        out.setdefault(site, []).append((wd, start, end))
    return out


class PlanFile:
    """Callable returning the current windows (``{}`` without a plan)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._windows: Windows = {}
        if path is not None:
            try:
                self._load()
            except (OSError, ValueError) as err:
                raise ConfigError(
                    "plan", str(path), f"must be a readable plan.json ({err})"
                ) from None

    def _load(self) -> None:
        assert self.path is not None
        mtime = self.path.stat().st_mtime
        if mtime != self._mtime:
            self._windows = parse_windows(self.path.read_text("utf-8"))
            self._mtime = mtime

    def __call__(self) -> Windows:
        if self.path is not None:
            try:
                self._load()
            except (OSError, ValueError) as err:
                log.warning("plan %s not re-read, keeping the previous windows: %s", self.path, err)
        return self._windows
