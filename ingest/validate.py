"""Validation of node messages and their mapping to InfluxDB points (pure core).

Structure, types and the topic/payload match come from the wire contract
(:func:`klankkast.sensor.wire.decode`); this module adds the checks that need the
consumer's view: levels within -20..200 dB and timestamps between 2020-01-01 and
five minutes after the ingest's clock. No I/O, no clock: ``now_ms`` is passed in.

Layout of the points (see ``deploy/influxdb/README.md``): tags ``site`` and
``node``; fields named as on the wire; bands as ``LZeq_<nominal>`` with ``.`` written
``p``; for ``LAeq``, ``LCeq`` and ``LZeq`` a linear companion ``<name>_e`` =
10^(L/10) so that InfluxQL can average energy (IEC 61672-1 §3.9: Leq is the level
of the mean square); levels always as floats, counters as integers; timestamp = the
interval start ``t`` in milliseconds, so a redelivered message overwrites itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

from klankkast.decibel import level_to_energy
from klankkast.influx import M_MINUTE, M_SECOND, M_STATUS, RP_FOREVER, RP_RAW, line
from klankkast.sensor import wire

__all__ = [
    "LEVEL_MAX_DB",
    "LEVEL_MIN_DB",
    "T_FUTURE_MS",
    "T_MIN_MS",
    "Encoded",
    "Encoding",
    "Ignored",
    "Point",
    "Rejected",
    "check_ranges",
    "encode_chunk",
    "is_ignored_topic",
    "to_points",
    "validate_message",
]

LEVEL_MIN_DB: Final = -20.0
LEVEL_MAX_DB: Final = 200.0
#: 2020-01-01T00:00:00Z in ms since the epoch.
T_MIN_MS: Final = 1_577_836_800_000
#: How far into the future (by the ingest's clock) a timestamp may lie.
T_FUTURE_MS: Final = 5 * 60 * 1000

#: Integer counters (written with the ``i`` suffix).
_INT_FIELDS: Final = frozenset(
    {
        "seq",
        "dur_ms",
        "overload",
        "nonfinite",
        "xruns",
        "outbox_depth",
        "outbox_evictions",
        "unconfirmed",
        "reanchors",
    }
)
_SKIP: Final = frozenset({"schema", "site", "node", "t", "bands"})
_RP_OF_KIND: Final = {"second": RP_RAW, "minute": RP_FOREVER, "status": None}
_MEASUREMENT_OF_KIND: Final = {"second": M_SECOND, "minute": M_MINUTE, "status": M_STATUS}


@dataclass(frozen=True, slots=True)
class Point:
    """One InfluxDB point: its retention policy (``None`` = the default) and its line."""

    rp: str | None
    line: str


def is_ignored_topic(topic: str) -> bool:
    """Topics under the subscription that are not node data: ``klankkast/v1/{site}/alerts``
    and the ingest's own acknowledgements ``klankkast/v1/{site}/{node}/ack``."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[4] == "ack":
        return "/".join(parts[:2]) == wire.TOPIC_ROOT
    return len(parts) == 4 and parts[3] == "alerts" and "/".join(parts[:2]) == wire.TOPIC_ROOT


def check_ranges(msg: wire.Message, now_ms: int, raw_retention_ms: int | None = None) -> None:
    """Raise :class:`~klankkast.sensor.wire.SchemaError` if a level or ``t`` is out of range.

    Reasons: ``level_range`` (a level or band outside -20..200 dB), ``t_future``
    (more than 5 min after ``now_ms``), ``t_past`` (before 2020-01-01),
    ``beyond_retention`` (a ``second`` frame older than the ``raw`` retention policy
    keeps, which InfluxDB would refuse anyway).
    """
    p = msg.payload
    t = p["t"]
    if t > now_ms + T_FUTURE_MS:
        raise wire.SchemaError(
            "t_future", f"t must be at most 5 min after the ingest's clock {now_ms}; got {t}"
        )
    if t < T_MIN_MS:
        raise wire.SchemaError("t_past", f"t must be at or after 2020-01-01 ({T_MIN_MS}); got {t}")
    if raw_retention_ms is not None and msg.kind == "second" and t < now_ms - raw_retention_ms:
        raise wire.SchemaError(
            "beyond_retention",
            f"t of a second frame must be within the raw retention ({raw_retention_ms} ms); got {t}",
        )
    for key in wire.LEVEL_FIELDS:
        value = p.get(key)
        if value is not None and not LEVEL_MIN_DB <= value <= LEVEL_MAX_DB:
            raise wire.SchemaError(
                "level_range", f"{key} must be from -20 to 200 dB; got {value!r}"
            )
    for nominal, value in (p.get("bands") or {}).items():
        if not LEVEL_MIN_DB <= value <= LEVEL_MAX_DB:
            raise wire.SchemaError(
                "level_range", f"bands[{nominal}] must be from -20 to 200 dB; got {value!r}"
            )


def validate_message(
    topic: str, data: bytes, now_ms: int, raw_retention_ms: int | None = None
) -> wire.Message:
    """Decode ``data`` against the wire contract and check ranges; raise ``SchemaError``."""
    msg = wire.decode(topic, data)
    check_ranges(msg, now_ms, raw_retention_ms)
    return msg


def fields_of(msg: wire.Message) -> dict[str, float | int | str | bool]:
    """InfluxDB fields of a decoded message (see the module docstring)."""
    fields: dict[str, float | int | str | bool] = {}
    for key, value in msg.payload.items():
        if key in _SKIP or value is None:
            continue
        if isinstance(value, bool | str):
            fields[key] = value
        elif key in _INT_FIELDS:
            fields[key] = int(value)
        else:
            fields[key] = float(value)
    for key in wire.LEQ_FIELDS:
        if key in fields:
            fields[f"{key}_e"] = level_to_energy(float(fields[key]))
    for nominal, value in (msg.payload.get("bands") or {}).items():
        fields[wire.band_field(nominal)] = float(value)
    return fields


_BAND_PREFIX: Final = {n: wire.band_field(n) + "=" for n in wire.BAND_NOMINALS}
_LEQ: Final = frozenset(wire.LEQ_FIELDS)
_STR_ESCAPE: Final = str.maketrans({"\\": "\\\\", '"': '\\"'})
#: How the hot path writes each wire field: "f" float, "e" float + ``_e`` companion,
#: "i" integer counter, "-" not a field; others ("x": strings, booleans, nullable
#: numbers) take the general branch.
_KIND: Final = {
    **{k: "f" for k in (*wire.LEVEL_FIELDS, "bass", "impulsive", "tonality", "uptime_s")},
    **{k: "e" for k in wire.LEQ_FIELDS},
    **{k: "i" for k in _INT_FIELDS},
    **{k: "-" for k in _SKIP},
}


def _fast_line(measurement: str, msg: wire.Message) -> str:
    """:func:`line` specialised to a decoded message (hot path, ~45 fields per frame).

    Safe without the generic escaping because :func:`wire.decode` already admitted
    only the contract's field names (plain identifiers) and ids of ``[A-Za-z0-9_.-]``;
    string values are still escaped. Produces the same fields as :func:`fields_of`.
    """
    parts: list[str] = []
    append = parts.append
    kinds = _KIND
    for key, value in msg.payload.items():
        kind = kinds.get(key, "x")
        if kind == "f":
            append(f"{key}={float(value)!r}")
        elif kind == "i":
            append(f"{key}={value}i")
        elif kind == "e":
            f = float(value)
            append(f"{key}={f!r},{key}_e={level_to_energy(f)!r}")
        elif kind == "-" or value is None:
            continue
        elif value is True or value is False:
            append(f"{key}={'true' if value else 'false'}")
        elif isinstance(value, str):
            append(f'{key}="{value.translate(_STR_ESCAPE)}"')
        elif isinstance(value, int):
            append(f"{key}={value}i" if key in _INT_FIELDS else f"{key}={float(value)!r}")
        else:
            append(f"{key}={float(value)!r}")
    bands = msg.payload.get("bands")
    if bands:
        prefix = _BAND_PREFIX
        parts.extend([f"{prefix[n]}{float(v)!r}" for n, v in bands.items()])
    return (
        f"{measurement},node={msg.node},site={msg.site} {','.join(parts)} {int(msg.payload['t'])}"
    )


def to_points(msg: wire.Message) -> list[Point]:
    """The points of one decoded message (one per message today)."""
    return [Point(_RP_OF_KIND[msg.kind], _fast_line(_MEASUREMENT_OF_KIND[msg.kind], msg))]


def to_points_generic(msg: wire.Message) -> list[Point]:
    """:func:`to_points` through the generic :func:`line` encoder (reference for tests)."""
    tags = {"site": msg.site, "node": msg.node}
    lp = line(_MEASUREMENT_OF_KIND[msg.kind], tags, fields_of(msg), int(msg.payload["t"]))
    return [Point(_RP_OF_KIND[msg.kind], lp)]


def rejection_payload(reason: str, topic: str, data: bytes, max_chars: int) -> dict[str, Any]:
    """The JSON object republished to ``klankkast/v1/_rejected`` for a refused message."""
    text = data.decode("utf-8", "replace")
    if len(text) > max_chars:
        text = text[:max_chars] + "…"
    return {"reason": reason, "topic": topic, "payload": text}


class Encoded(NamedTuple):
    """:func:`encode_chunk`'s result for a valid message (``seq``/``state`` feed node
    health; ``None`` where the kind has none)."""

    ok: Literal[True]
    rp: str | None
    line: str
    kind: str
    site: str
    node: str
    t: int
    seq: int | None
    state: str | None


class Rejected(NamedTuple):
    """:func:`encode_chunk`'s result for a refused message: the reason and a message."""

    ok: Literal[False]
    reason: str
    message: str


class Ignored(NamedTuple):
    """:func:`encode_chunk`'s result for a topic the ingest ignores (``.../alerts``)."""

    ok: None = None


#: One result of :func:`encode_chunk`; ``ok`` (the first item) tells which.
Encoding = Encoded | Rejected | Ignored


def encode_chunk(
    items: Sequence[tuple[str, bytes]],
    now_ms: int,
    raw_retention_ms: int | None = None,
    fast: bool = True,
) -> list[Encoding]:
    """Validate and encode a chunk of raw messages (runs in a worker process).

    Returns one result per item, in order: :class:`Encoded`, :class:`Rejected` or
    :class:`Ignored`. ``fast`` (``[ingest] fast_paths``) lets the common frames take
    :func:`klankkast.ingest._fastframe.fast_frame`, with the same results.

    Pure and picklable (a module-level function of bytes and ints), so the ingest can
    run it in a process pool while its main process receives and acknowledges.
    """
    fast_frame: Callable[[str, bytes, int, int | None], Encoded | None] | None = None
    if fast:
        from klankkast.ingest._fastframe import fast_frame as fast_frame_

        fast_frame = fast_frame_
    out: list[Encoding] = []
    for topic, data in items:
        if fast_frame is not None:
            try:
                encoded = fast_frame(topic, data, now_ms, raw_retention_ms)
            except Exception:  # never: the general path below finds the reason
                encoded = None
            if encoded is not None:
                out.append(encoded)
                continue
        if is_ignored_topic(topic):
            out.append(Ignored())
            continue
        try:
            msg = validate_message(topic, data, now_ms, raw_retention_ms)
            (pt,) = to_points(msg)
        except wire.SchemaError as err:
            out.append(Rejected(False, err.reason, str(err)))
            continue
        except Exception as err:  # never let one message break the chunk
            out.append(Rejected(False, "internal", f"{type(err).__name__}: {err}"))
            continue
        p = msg.payload
        kind, site, node = msg.kind, msg.site, msg.node
        out.append(
            Encoded(True, pt.rp, pt.line, kind, site, node, p["t"], p.get("seq"), p.get("state"))
        )
    return out
