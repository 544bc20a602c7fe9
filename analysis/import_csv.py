"""Complaints and visits from the documented CSVs (see :mod:`klankkast.analysis.importer`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from klankkast.analysis._checks import (
    check_header,
    check_id,
    check_site,
    collapse,
    read_csv,
    to_time,
)
from klankkast.analysis.errors import InputError, InputErrors
from klankkast.analysis.records import (
    COMPLAINT_COLUMNS,
    OUTCOMES,
    VISIT_COLUMNS,
    Complaint,
    Visit,
)

__all__ = ["read_complaints_csv", "read_visits_csv"]

_COMPLAINT_REQUIRED = ("id", "received_at", "incident_start", "site")
_VISIT_REQUIRED = ("id", "arrived_at", "left_at", "site", "outcome")


_R = TypeVar("_R")
#: (errors, file name, line, row) -> the record, or None when a field did not parse
_Parse = Callable[[list[InputError], str, int, dict[str, str]], _R | None]


def _read_records(
    path: str | Path, required: tuple[str, ...], columns: tuple[str, ...], parse: _Parse[_R]
) -> list[_R]:
    """The rows of one documented CSV as records: the header checked, every row's id
    checked for emptiness and repeats, then ``parse``; a row with any problem yields no
    record. Raise :class:`InputErrors` with every problem of the file."""
    name = str(path)
    header, rows = read_csv(path)
    bad = check_header(name, header, required, columns)
    if bad:
        raise InputErrors([bad])
    errors: list[InputError] = []
    seen: dict[str, int] = {}
    out: list[_R] = []
    for line, row in rows:
        n0 = len(errors)
        check_id(errors, seen, name, line, row.get("id", ""))
        record = parse(errors, name, line, row)
        if len(errors) == n0 and record is not None:
            out.append(record)
    if errors:
        raise InputErrors(collapse(errors))
    return out


def read_complaints_csv(path: str | Path, known_sites: set[str] | None = None) -> list[Complaint]:
    """Complaints from the documented CSV; raise :class:`InputErrors` with every problem."""

    def complaint(
        errors: list[InputError], name: str, line: int, row: dict[str, str]
    ) -> Complaint | None:
        received = to_time(errors, name, line, "received_at", row.get("received_at", ""))
        start = to_time(errors, name, line, "incident_start", row.get("incident_start", ""))
        end = to_time(
            errors, name, line, "incident_end", row.get("incident_end", ""), optional=True
        )
        check_site(errors, known_sites, name, line, row.get("site", ""))
        if start is not None and end is not None and end < start:
            errors.append(
                InputError(
                    name, line, "incident_end", row["incident_end"], "ends before incident_start"
                )
            )
        if received is None or start is None:
            return None
        return Complaint(
            row.get("id", ""),
            received,
            start,
            end,
            row["site"],
            row.get("category", ""),
            row.get("source", "") or "csv",
        )

    return _read_records(path, _COMPLAINT_REQUIRED, COMPLAINT_COLUMNS, complaint)


def read_visits_csv(
    path: str | Path,
    known_sites: set[str] | None = None,
    complaint_ids: set[str] | None = None,
) -> list[Visit]:
    """Visits from the documented CSV; raise :class:`InputErrors` with every problem."""

    def visit(errors: list[InputError], name: str, line: int, row: dict[str, str]) -> Visit | None:
        arrived = to_time(errors, name, line, "arrived_at", row.get("arrived_at", ""))
        left = to_time(errors, name, line, "left_at", row.get("left_at", ""))
        check_site(errors, known_sites, name, line, row.get("site", ""))
        outcome = row.get("outcome", "")
        if outcome not in OUTCOMES:
            errors.append(
                InputError(name, line, "outcome", outcome, f"must be one of {', '.join(OUTCOMES)}")
            )
        if arrived is not None and left is not None and left < arrived:
            errors.append(InputError(name, line, "left_at", row["left_at"], "is before arrived_at"))
        ids = tuple(x.strip() for x in row.get("complaint_ids", "").split(";") if x.strip())
        if complaint_ids is not None:
            unknown = [x for x in ids if x not in complaint_ids]
            if unknown:
                errors.append(
                    InputError(
                        name, line, "complaint_ids", ";".join(unknown), "unknown complaint id(s)"
                    )
                )
        if arrived is None or left is None:
            return None
        return Visit(row.get("id", ""), arrived, left, row["site"], outcome, ids)

    return _read_records(path, _VISIT_REQUIRED, VISIT_COLUMNS, visit)
