"""Complaints and visits as the analysis holds them: no personal data, times UTC ms.

The columns of the documented CSVs and the allowed visit outcomes; the readers are
:mod:`~klankkast.analysis.import_csv`, :mod:`~klankkast.analysis.import_open311` and
:mod:`~klankkast.analysis.import_signalen`, the entry point
:mod:`~klankkast.analysis.importer`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMPLAINT_COLUMNS", "OUTCOMES", "VISIT_COLUMNS", "Complaint", "Visit"]

COMPLAINT_COLUMNS = (
    "id", "received_at", "incident_start", "incident_end", "site", "category", "source",
)  # fmt: skip
VISIT_COLUMNS = ("id", "arrived_at", "left_at", "site", "outcome", "complaint_ids")
OUTCOMES = ("nothing_found", "warning", "fine", "other")


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint without personal data (times UTC ms)."""

    id: str
    received_ms: int
    incident_start_ms: int
    incident_end_ms: int | None
    site: str
    category: str = ""
    source: str = ""
    #: nearest node of the site to the complaint's position (site map with node
    #: positions), else ""; the position itself is not kept
    node: str = ""


@dataclass(frozen=True, slots=True)
class Visit:
    """An enforcement visit (times UTC ms)."""

    id: str
    arrived_ms: int
    left_ms: int
    site: str
    outcome: str
    complaint_ids: tuple[str, ...] = ()
