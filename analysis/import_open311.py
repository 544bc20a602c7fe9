"""Complaints from an Open311 GeoReport v2 ``requests.json`` (before site assignment)."""

from __future__ import annotations

from typing import Any

from klankkast.analysis._checks import RawRecord, to_float
from klankkast.analysis.errors import InputError, InputErrors

__all__ = ["open311_records"]


def open311_records(path: str, doc: Any) -> list[RawRecord]:
    if isinstance(doc, dict) and "service_requests" in doc:
        doc = doc["service_requests"]
    if not isinstance(doc, list):
        raise InputErrors(
            [InputError(path, None, None, None, "Open311 requests.json must be a JSON list")]
        )
    out = []
    for i, r in enumerate(doc):
        if not isinstance(r, dict):
            continue
        when = str(r.get("requested_datetime") or "")
        out.append(
            RawRecord(
                line=None,
                id=str(r.get("service_request_id") or r.get("token") or ""),
                received=when,
                start=when,
                end="",
                category=str(r.get("service_name") or r.get("service_code") or ""),
                source="open311",
                address=r.get("address") or None,
                lat=to_float(r.get("lat")),
                lon=to_float(r.get("long")),
            )
        )
        out[-1].line = i + 1
    return out
