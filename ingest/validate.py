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

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from klankkast.decibel import level_to_energy
from klankkast.influx import M_MINUTE, M_SECOND, M_STATUS, RP_FOREVER, RP_RAW, line
from klankkast.sensor import wire

__all__ = [
    "LEVEL_MAX_DB",
    "LEVEL_MIN_DB",
    "T_FUTURE_MS",
    "T_MIN_MS",
    "Point",
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


# -- fast path of encode_chunk --------------------------------------------------------
# The ingest validates and encodes every frame; the general path (wire.decode ->
# check_ranges -> _fast_line) costs ~75 us per 1-s frame, mostly per-field Python
# checks and per-field string formatting. _fast_frame() decides "valid" for the
# common case (a ``second``/``minute`` frame of plain numbers) with whole-list checks
# and formats the line through a cached %-template (the same fields and values as
# the general path, grouped by type). It only ever ACCEPTS: whenever a check does
# not pass (or anything is unusual) it returns None and the message takes the
# general path, which finds the reason. So accept/reject and the reasons are exactly
# those of the general path (tests/unit/ingest/test_ingest_fast_path.py).

#: The same decoder json.loads builds per call for ``parse_constant``, built once.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
_NUM_TYPES: Final = frozenset({int, float})
_INT_TYPE: Final = frozenset({int})
_FRAME_INTS: Final = ("t", "seq", "dur_ms", "overload", "nonfinite")
_get_frame_ints: Final = itemgetter(*_FRAME_INTS)
_LEVEL_SET: Final = frozenset(wire.LEVEL_FIELDS)
_OTHER_NUMS: Final = ("bass", "impulsive", "tonality")
_get_other_nums: Final = itemgetter(*_OTHER_NUMS)
_BAND_NOMINAL_SET: Final = frozenset(wire.BAND_NOMINALS)
_FRAME_KEYS: Final = {
    "second": (
        frozenset(wire.SECOND_REQUIRED),
        frozenset(wire.SECOND_REQUIRED + wire.SECOND_OPTIONAL),
    ),
    "minute": (
        frozenset(wire.MINUTE_REQUIRED),
        frozenset(wire.MINUTE_REQUIRED + wire.MINUTE_OPTIONAL),
    ),
}
_MAX_PAYLOAD: Final = 16_384  # wire._MAX_PAYLOAD (a larger payload takes the general path)
#: topic -> (site, node, kind, rp, line head) of node topics seen (bounded).
_TOPICS: dict[str, tuple[str, str, str, str | None, str]] = {}
_TOPICS_MAX: Final = 100_000
_Plan = tuple[Callable[[dict[str, Any]], Any], tuple[int, ...], Any, str]
#: (payload keys, band keys, tonal_band is a string) -> formatting plan.
_PLANS: dict[tuple[Any, ...], _Plan] = {}
_PLANS_MAX: Final = 10_000


def _topic_info(topic: str) -> tuple[str, str, str, str | None, str] | None:
    info = _TOPICS.get(topic)
    if info is None:
        try:
            site, node, kind = wire.parse_topic(topic)
        except wire.SchemaError:
            return None
        head = f"{_MEASUREMENT_OF_KIND[kind]},node={node},site={site} "
        info = (site, node, kind, _RP_OF_KIND[kind], head)
        if len(_TOPICS) >= _TOPICS_MAX:
            _TOPICS.clear()
        _TOPICS[topic] = info
    return info


def _plan(key: tuple[Any, ...]) -> _Plan:
    """Formatting plan (``%`` template) of frames with these keys.

    The fields of :func:`_fast_line` grouped by type (line protocol does not care
    about field order): the float fields (payload order), their ``_e`` companions,
    the integer fields, the escaped ``tonal_band``, the band levels, then ``t``.
    """
    keys, band_keys, tonal_is_str = key
    floats = [k for k in keys if _KIND.get(k) in ("f", "e")]
    ints = [k for k in keys if _KIND.get(k) == "i"]
    e_index = tuple(i for i, k in enumerate(floats) if _KIND[k] == "e")
    parts = [f"{k}=%r" for k in floats]
    parts.extend(f"{floats[i]}_e=%r" for i in e_index)
    parts.extend(f"{k}=%di" for k in ints)
    if tonal_is_str:
        parts.append('tonal_band="%s"')
    parts.extend(f"{_BAND_PREFIX[n]}%r" for n in band_keys)
    template = ",".join(parts) + " %d"
    get_floats = itemgetter(*floats) if len(floats) > 1 else (lambda p: (p[floats[0]],))
    get_ints = itemgetter(*ints) if len(ints) > 1 else (lambda p: (p[ints[0]],))
    return (get_floats, e_index, get_ints, template)


def _fast_frame(
    topic: str, data: bytes, now_ms: int, raw_retention_ms: int | None
) -> tuple[Any, ...] | None:
    """The result tuple of a valid ``second``/``minute`` frame, or None (= general path)."""
    info = _topic_info(topic)
    if info is None or len(data) > _MAX_PAYLOAD:
        return None
    site, node, kind, rp, head = info
    bounds = _FRAME_KEYS.get(kind)
    if bounds is None:
        return None
    try:
        p = _DECODER.decode(data.decode("utf-8"))
    except Exception:
        return None
    if type(p) is not dict:
        return None
    keys = p.keys()
    required, allowed = bounds
    if not (keys >= required and keys <= allowed):
        return None
    schema = p["schema"]
    if type(schema) is not int or schema != wire.SCHEMA:
        return None
    if p["site"] != site or p["node"] != node or type(p["site"]) is not str:
        return None
    if type(p["node"]) is not str:
        return None
    ints = _get_frame_ints(p)
    if set(map(type, ints)) != _INT_TYPE or min(ints) < 0:
        return None
    t = ints[0]
    if t > now_ms + T_FUTURE_MS or t < T_MIN_MS:
        return None
    if raw_retention_ms is not None and kind == "second" and t < now_ms - raw_retention_ms:
        return None
    bands = p["bands"]
    if type(bands) is not dict or not bands.keys() <= _BAND_NOMINAL_SET:
        return None
    levels = [p[k] for k in keys & _LEVEL_SET]
    levels.extend(bands.values())
    if not set(map(type, levels)) <= _NUM_TYPES:
        return None
    if levels and (
        min(levels) < LEVEL_MIN_DB or max(levels) > LEVEL_MAX_DB or not math.isfinite(sum(levels))
    ):
        return None
    others = _get_other_nums(p)
    if not set(map(type, others)) <= _NUM_TYPES or not math.isfinite(sum(others)):
        return None
    tonal = p.get("tonal_band")
    tonal_text = ""
    tonal_is_str = isinstance(tonal, str)
    if isinstance(tonal, str):
        if tonal not in _BAND_NOMINAL_SET:
            return None
        tonal_text = tonal.translate(_STR_ESCAPE)
    elif tonal is not None:
        return None
    key = (tuple(keys), tuple(bands), tonal_is_str)
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        plan = _PLANS[key] = _plan(key)
    get_floats, e_index, get_ints, template = plan
    args: list[Any] = list(map(float, get_floats(p)))
    args.extend([level_to_energy(args[i]) for i in e_index])
    args.extend(get_ints(p))
    if tonal_is_str:
        args.append(tonal_text)
    args.extend(map(float, bands.values()))
    args.append(t)
    return (True, rp, head + template % tuple(args), kind, site, node, t, ints[1], None)


def encode_chunk(
    items: Sequence[tuple[str, bytes]], now_ms: int, raw_retention_ms: int | None = None
) -> list[tuple[Any, ...]]:
    """Validate and encode a chunk of raw messages (runs in a worker process).

    Returns one tuple per item, in order:

    * ``(None,)`` for an ignored topic (``klankkast/v1/{site}/alerts``);
    * ``(False, reason, message)`` for a rejected message;
    * ``(True, rp, line, kind, site, node, t, seq, state)`` for a valid one (``seq``
      and ``state`` are ``None`` where the kind has none; they feed node health).

    Pure and picklable (a module-level function of bytes and ints), so the ingest can
    run it in a process pool while its main process receives and acknowledges.
    """
    out: list[tuple[Any, ...]] = []
    for topic, data in items:
        try:
            fast = _fast_frame(topic, data, now_ms, raw_retention_ms)
        except Exception:  # never: the general path below finds the reason
            fast = None
        if fast is not None:
            out.append(fast)
            continue
        if is_ignored_topic(topic):
            out.append((None,))
            continue
        try:
            msg = validate_message(topic, data, now_ms, raw_retention_ms)
            (pt,) = to_points(msg)
        except wire.SchemaError as err:
            out.append((False, err.reason, str(err)))
            continue
        except Exception as err:  # never let one message break the chunk
            out.append((False, "internal", f"{type(err).__name__}: {err}"))
            continue
        p = msg.payload
        out.append(
            (
                True,
                pt.rp,
                pt.line,
                msg.kind,
                msg.site,
                msg.node,
                p["t"],
                p.get("seq"),
                p.get("state"),
            )
        )
    return out
