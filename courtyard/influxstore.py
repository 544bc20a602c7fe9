"""InfluxDB adapter of the courtyard page: reads through a read-only user, writes marks.

Reads (``klankkast.influx.InfluxHTTP`` with the read-only user; layout in
``deploy/influxdb/README.md``):

* ``"forever"."minute"`` field ``LAeq_e`` per node (energy, combined by energy mean
  in :func:`klankkast.courtyard.model.combine_nodes`);
* ``"<events_rp>"."episode"`` (field ``end``), ``"alert"`` (tag ``state``, field
  ``started``), ``"complaint"`` and ``"visit"`` (their times only: no ids, categories,
  outcomes or any personal data reach the page);
* ``"<marks_rp>"."experience"`` (tag ``household``).

Writes (the write user; nothing else is ever written): measurement ``experience``,
tags ``site`` and ``household`` (keyed hash, never the token or the invitation id);
fields ``mark`` (integer 1, always, so a point has a field), ``kind`` (string, when
given) and ``severity`` (integer 1-5, when given); the time of the mark in ms;
retention policy ``marks_rp`` (``experience``, 365 days).

The household is a tag, not a field, for the reason the complaint id is one: two
households marking in the same millisecond are two series, so neither point
overwrites the other (a point is identified by measurement, tag set and time). Its
cardinality is the number of invitations. The same household and time is the same
point: kind and severity added afterwards merge into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from klankkast.analysis.marks import Mark
from klankkast.courtyard.config import InfluxConfig
from klankkast.courtyard.errors import StorageError
from klankkast.courtyard.model import Alert, Episode, NodeMinute
from klankkast.influx import (
    M_ALERT,
    M_COMPLAINT,
    M_EPISODE,
    M_MINUTE,
    M_VISIT,
    RP_FOREVER,
    InfluxError,
    InfluxHTTP,
    line,
    quote_ident,
)

__all__ = ["M_EXPERIENCE", "InfluxCourtyard", "MarkPoint", "SiteData"]

M_EXPERIENCE: Final = "experience"


#: One mark as written (an ``experience`` point of ``site`` at ``t_ms``): the record
#: the analysis reads back, :class:`klankkast.analysis.marks.Mark`.
MarkPoint = Mark


@dataclass(frozen=True, slots=True)
class SiteData:
    """Everything read for one site since ``since_ms``."""

    site: str
    since_ms: int
    read_ms: int
    node_minutes: list[NodeMinute]
    episodes: list[Episode]
    alerts: list[Alert]
    complaints_ms: list[int]
    visits_ms: list[int]
    marks: list[tuple[int, str]]


def _secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text("utf-8").splitlines()[0].strip()
    except (OSError, IndexError) as err:
        raise StorageError(f"cannot read the InfluxDB password file {path}: {err}") from None


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxCourtyard:
    """Reader (read-only user) and mark writer (write user) of one InfluxDB database."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        self._reader: InfluxHTTP | None = None
        self._writer: InfluxHTTP | None = None

    def start(self) -> None:
        c = self.cfg
        self._reader = InfluxHTTP(
            c.url, c.database, username=c.username, password=_secret(c.password_file),
            timeout_s=c.timeout_s,
        )  # fmt: skip
        self._writer = InfluxHTTP(
            c.url, c.database, username=c.write_username,
            password=_secret(c.write_password_file), timeout_s=c.timeout_s,
        )  # fmt: skip

    def close(self) -> None:
        for client in (self._reader, self._writer):
            if client is not None:
                client.close()

    def _q(self, q: str) -> list[dict[str, Any]]:
        if self._reader is None:
            raise RuntimeError("InfluxCourtyard.start() was not called")
        try:
            return self._reader.query(q)
        except InfluxError as err:
            raise StorageError(str(err)) from None

    def read_site(self, site: str, since_ms: int, now_ms: int) -> SiteData:
        """All the page needs for ``site`` from ``since_ms`` (raises :class:`StorageError`)."""
        rp = quote_ident(self.cfg.events_rp)
        where = f'"site" = {_lit(site)} AND time >= {int(since_ms)}ms'
        # an episode or alert that began before since_ms may still be going on
        where_back = f'"site" = {_lit(site)} AND time >= {int(since_ms) - 86_400_000}ms'
        minutes = self._q(
            f'SELECT "LAeq_e" FROM {quote_ident(RP_FOREVER)}.{quote_ident(M_MINUTE)} '
            f'WHERE {where} GROUP BY "node"'
        )
        episodes = self._q(
            f'SELECT "end", "rule", "LAeq" FROM {rp}.{quote_ident(M_EPISODE)} WHERE {where_back}'
        )
        alerts = self._q(
            f'SELECT "started" FROM {rp}.{quote_ident(M_ALERT)} WHERE {where_back} GROUP BY "state"'
        )
        complaints = self._q(
            f'SELECT "received" FROM {rp}.{quote_ident(M_COMPLAINT)} WHERE {where}'
        )
        visits = self._q(f'SELECT "left" FROM {rp}.{quote_ident(M_VISIT)} WHERE {where}')
        marks = self._q(
            f'SELECT "mark" FROM {quote_ident(self.cfg.marks_rp)}.{quote_ident(M_EXPERIENCE)} '
            f'WHERE {where} GROUP BY "household"'
        )
        return SiteData(
            site=site,
            since_ms=since_ms,
            read_ms=now_ms,
            node_minutes=[
                NodeMinute(int(r["time"]), str(r.get("node", "")), float(r["LAeq_e"]))
                for r in minutes
                if isinstance(r.get("LAeq_e"), int | float)
            ],
            episodes=[
                Episode(
                    int(r["time"]),
                    int(r["end"]) if isinstance(r.get("end"), int | float) else int(r["time"]),
                    str(r.get("rule") or ""),
                    float(r["LAeq"]) if isinstance(r.get("LAeq"), int | float) else float("nan"),
                )
                for r in episodes
            ],
            alerts=[
                Alert(
                    int(r["time"]),
                    str(r.get("state", "")),
                    int(r["started"])
                    if isinstance(r.get("started"), int | float)
                    else int(r["time"]),
                )
                for r in alerts
            ],
            complaints_ms=[int(r["time"]) for r in complaints],
            visits_ms=[int(r["time"]) for r in visits],
            marks=[(int(r["time"]), str(r.get("household") or "")) for r in marks],
        )

    def write_marks(self, marks: Sequence[MarkPoint]) -> None:
        """Write marks in one request; :class:`StorageError` when InfluxDB did not take them.

        A mark written again with the same site and time (the optional kind and
        severity added afterwards) is the same point: InfluxDB merges the fields.
        """
        if self._writer is None:
            raise RuntimeError("InfluxCourtyard.start() was not called")
        lines = []
        for m in marks:
            fields: dict[str, float | int | str | bool] = {"mark": 1}
            if m.kind:
                fields["kind"] = m.kind
            if m.severity is not None:
                fields["severity"] = int(m.severity)
            tags = {"site": m.site, "household": m.household}
            lines.append(line(M_EXPERIENCE, tags, fields, m.t_ms))
        try:
            self._writer.write(lines, rp=self.cfg.marks_rp)
        except InfluxError as err:
            raise StorageError(str(err)) from None

    def check(self) -> list[str]:
        """Problems of the layout as seen by both users (empty: fine)."""
        problems = []
        try:
            self._q(
                f'SELECT count("LAeq_e") FROM {quote_ident(RP_FOREVER)}.{quote_ident(M_MINUTE)} WHERE time > now() - 1h'
            )
        except StorageError as err:
            problems.append(f"reading {RP_FOREVER}.{M_MINUTE}: {err}")
        try:
            rps = self._q(f"SHOW RETENTION POLICIES ON {quote_ident(self.cfg.database)}")
            if self.cfg.marks_rp not in {r.get("name") for r in rps}:
                problems.append(
                    f"retention policy {self.cfg.marks_rp!r} (marks) is missing on "
                    f"{self.cfg.database}; create it with deploy/influxdb/setup.sh"
                )
        except StorageError as err:
            problems.append(f"listing retention policies: {err}")
        return problems
