"""Reading the CSV files people actually have: Excel's Dutch defaults included.

A Dutch Excel (and the Signalen export opened and saved in it) writes CSV with ``;``
between the fields (the comma is the decimal separator: ``52,3745``), in Windows-1252
unless saved as "CSV UTF-8", which starts with a byte-order mark. This module:

* decodes UTF-8 (with or without BOM), else Windows-1252 (cp1252), which maps every
  byte, so a file never fails to decode; the encoding used is returned;
* detects the separator from the header line: ``;``, ``,`` or a tab, whichever splits
  it into the most fields outside quotes;
* parses numbers with a decimal comma (:func:`parse_float`).

Pure standard library; no file is opened except by :func:`read_text`.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CsvText", "detect_separator", "parse_float", "read_csv_rows", "read_text"]

_SEPARATORS = (";", ",", "\t")


@dataclass(frozen=True)
class CsvText:
    """Decoded text of a file and the encoding it was read with."""

    text: str
    encoding: str  # "utf-8" (BOM or not) or "cp1252"


def read_text(path: str | Path) -> CsvText:
    """UTF-8 (a BOM is dropped), else Windows-1252, Excel's default in the Netherlands."""
    raw = Path(path).read_bytes()
    try:
        return CsvText(raw.decode("utf-8-sig"), "utf-8")
    except UnicodeDecodeError:
        return CsvText(raw.decode("cp1252", errors="replace"), "cp1252")


def detect_separator(header_line: str) -> str:
    """The separator that splits the header into the most fields (``;``, ``,`` or tab).

    Counted outside double quotes; a tie (a header of one field) gives ``,``.
    """
    counts = dict.fromkeys(_SEPARATORS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_SEPARATORS, key=lambda s: (counts[s], s == ","))
    return best if counts[best] else ","


def read_csv_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]], str]:
    """Header (stripped), rows ``(line, {column: value})`` without empty rows, separator."""
    first = text.splitlines()[0] if text else ""
    sep = detect_separator(first)
    reader = csv.DictReader(io.StringIO(text), delimiter=sep)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for row in reader:
        if not any((v or "").strip() for k, v in row.items() if k is not None):
            continue
        rows.append(
            (reader.line_num, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)})
        )
    return header, rows, sep


def parse_float(value: object) -> float | None:
    """A finite number from ``52.3745`` or ``52,3745`` (decimal comma); None otherwise.

    A value with both separators is read with the last one as the decimal mark
    (``1.234,5`` and ``1,234.5`` are both 1234.5).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
        return f if math.isfinite(f) else None
    if not isinstance(value, str):
        return None
    s = value.strip().replace("\u00a0", "").replace(" ", "")
    if "," in s and "." in s:
        if s.rfind(",") > s.rfind("."):
            s = s.replace(".", "").replace(",", ".")
        else:
            s = s.replace(",", "")
    elif s.count(",") == 1:
        s = s.replace(",", ".")
    try:
        f = float(s)
    except ValueError:
        return None
    return f if math.isfinite(f) else None
