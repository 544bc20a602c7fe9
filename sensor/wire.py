"""The wire contract between a klankkast node and the central ingest.

Standard library only: ``klankkast.ingest`` imports this module, and importing it
must cost nothing. The node (``sensor/``) owns it.

Topics
------
``klankkast/v1/{site}/{node}/second``  one frame per 1-s interval
``klankkast/v1/{site}/{node}/minute``  one summary per longer interval (default 60 s)
``klankkast/v1/{site}/{node}/status``  retained node status; the MQTT last will sets ``offline``
``klankkast/v1/{site}/{node}/ack``     the ingest's confirmations to the node (see below)
``klankkast/v1/{site}/alerts``          retained live alert state (written by ``klankkast-alerts``)
``klankkast/v1/_rejected``              what the ingest refused, with the reason

Payloads
--------
UTF-8 JSON objects carrying ``"schema": 1``, ``site``, ``node`` and ``t`` (interval
start, UTC milliseconds). ``second`` and ``minute`` frames also carry ``seq`` (per
node and kind: ``second`` and ``minute`` count separately, each contiguous from 0 and
monotonic across restarts) and ``dur_ms`` (the duration the interval actually
covers; shorter than nominal only for the partial interval flushed at shutdown).

Levels only: :func:`encode` refuses unknown fields, every level is a number, bands
are keyed by IEC 61260-1 nominal one-third-octave frequencies, and strings are short.
Nothing finer than one-third-octave bands per second can be expressed, so no field
can carry audio.

Bands
-----
``bands`` maps each nominal frequency to the band Leq (Z-weighted, dB) of the
frame's interval. The filters are IEC 61260-1:2014 class 1 base-10
one-third-octave bands with a sixth-order Butterworth magnitude shape (-3 dB on
the band edges), applied in the frequency domain to 1-s frames weighted by the
power-complementary Vorbis window and hopped by 0.5 s
(:mod:`klankkast.sensor.bands`). "Band Leq of the second" means: the frames start
0.25 s before and 0.25 s after the second's start, so the second's band energy
weighs its own samples by 1 from 0.25 s to 0.75 s and shares only a 0.5-s
crossfade centred on each boundary (+/- 0.25 s, weight 1/2 at the boundary) with
its neighbours. Consecutive seconds' weights sum to one, so over whole seconds the
power sum of the bands equals LZeq (within 0.1 dB for sound between 20 Hz and
20 kHz; the filters' effective bandwidth adds 0.05 dB); a sound further than
0.25 s from the boundaries lands wholly in its second, a second further than
0.25 s from any sound carries none of it. LZeq, LAeq and the other broadband
levels cover exactly [t, t + dur_ms). A ``minute`` frame's bands are the energy
mean of its seconds' bands. Schema 1 frames from nodes before this definition
(issue 14) weighted each second's bands from -0.5 s to +1 s (centred 0.25 s
early) with a third-order shape; the field names and ranges are unchanged.

Acknowledgements (ingest → node)
--------------------------------
After InfluxDB has confirmed a write (HTTP 204), the ingest publishes to each node
it wrote for, QoS 1, at most one message per node per second, on
``klankkast/v1/{site}/{node}/ack``::

    {"schema":1,"kind":"second","ranges":[[0,41],[43,43]]}

``kind`` is ``second`` or ``minute``; ``ranges`` are inclusive ``[first_seq,
last_seq]`` pairs of that kind's ``seq`` (sorted, disjoint, at most
:data:`ACK_MAX_RANGES` per message; one message per kind). They name the frames the
ingest is done with: stored in InfluxDB, or refused for good (a frame that breaks
this contract, counted and republished on ``_rejected``), where sending it again
cannot change the outcome. A node with ``[outbox] confirm = "ingest"`` keeps every
frame until it is named here and publishes it again (same ``seq`` and payload, so
InfluxDB overwrites the same point) when no confirmation came in time. Only the
ingest may publish here and only the node may read it (``deploy/mosquitto/acl``).
Use :func:`encode_ack` / :func:`decode_ack`; :func:`topic` with kind ``ack``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ACK_MAX_RANGES",
    "ALERT_TOPIC_FMT",
    "BAND_NOMINALS",
    "FRAME_KINDS",
    "MINUTE_OPTIONAL",
    "MINUTE_REQUIRED",
    "REJECTED_TOPIC",
    "SCHEMA",
    "SECOND_OPTIONAL",
    "SECOND_REQUIRED",
    "STATUS_OPTIONAL",
    "STATUS_REQUIRED",
    "STATUS_STATES",
    "TOPIC_ROOT",
    "Message",
    "SchemaError",
    "band_field",
    "decode",
    "decode_ack",
    "encode",
    "encode_ack",
    "is_ack_topic",
    "parse_topic",
    "topic",
    "validate",
]

SCHEMA: Final = 1
TOPIC_ROOT: Final = "klankkast/v1"
REJECTED_TOPIC: Final = f"{TOPIC_ROOT}/_rejected"
ALERT_TOPIC_FMT: Final = TOPIC_ROOT + "/{site}/alerts"
FRAME_KINDS: Final = ("second", "minute")
KINDS: Final = ("second", "minute", "status")
#: Topic kinds: node messages plus the ingest's ``ack`` to the node.
TOPIC_KINDS: Final = (*KINDS, "ack")
#: Most ``[first, last]`` ranges in one ack message (about 30 bytes each: < 16 kB).
ACK_MAX_RANGES: Final = 500
STATUS_STATES: Final = ("online", "degraded", "offline")

#: IEC 61260-1 nominal mid-band frequencies of the one-third-octave bands 20 Hz-20 kHz,
#: written as in the standard. Lower sample rates carry a prefix of this list.
BAND_NOMINALS: Final = (
    "20", "25", "31.5", "40", "50", "63", "80", "100", "125", "160", "200", "250",
    "315", "400", "500", "630", "800", "1000", "1250", "1600", "2000", "2500", "3150",
    "4000", "5000", "6300", "8000", "10000", "12500", "16000", "20000",
)  # fmt: skip

_COMMON: Final = ("schema", "site", "node", "t")
_FRAME_COMMON: Final = (*_COMMON, "seq", "dur_ms")

#: Indicators computed on the node (see ``klankkast.sensor.dsp``):
#: ``bass`` LCeq - LAeq in dB; ``impulsive`` the impulse adjustment in dB;
#: ``tonality`` the largest margin in dB by which a band exceeds the ISO 1996-2
#: one-third-octave tone criterion (> 0 means a tone); ``tonal_band`` its nominal
#: frequency or null. ``overload``: samples at or above full scale; ``nonfinite``:
#: NaN/inf samples dropped; both counts per interval.
SECOND_REQUIRED: Final = (
    *_FRAME_COMMON,
    "LAeq", "LCeq", "LZeq", "LAFmax", "LAFmin", "LASmax", "LCpeak",
    "bands", "overload", "nonfinite", "bass", "impulsive", "tonality",
)  # fmt: skip
SECOND_OPTIONAL: Final = ("tonal_band",)
MINUTE_REQUIRED: Final = (
    *_FRAME_COMMON,
    "LAeq", "LCeq", "LZeq", "LAFmax", "LAFmin", "LA10", "LA50", "LA90", "LA95",
    "bands", "overload", "nonfinite", "bass", "impulsive", "tonality",
)  # fmt: skip
MINUTE_OPTIONAL: Final = ("LASmax", "LCpeak", "tonal_band")
STATUS_REQUIRED: Final = (*_COMMON, "state", "version", "uptime_s")
STATUS_OPTIONAL: Final = (
    "xruns", "outbox_depth", "outbox_evictions", "clock_synced", "calibrated_at",
    "cpu_temp_c", "audio", "reanchors", "drift_ms", "error", "disk_free_mb",
    "unconfirmed", "unconfirmed_age_s", "calibrated",
)  # fmt: skip

#: Fields that hold a level in dB (validated against the allowed range by the ingest).
LEVEL_FIELDS: Final = (
    "LAeq", "LCeq", "LZeq", "LAFmax", "LAFmin", "LASmax", "LCpeak",
    "LA10", "LA50", "LA90", "LA95",
)  # fmt: skip
#: Broadband equivalent levels; the ingest stores a linear companion ``<name>_e``.
LEQ_FIELDS: Final = ("LAeq", "LCeq", "LZeq")

_INT_FIELDS: Final = (
    "schema", "t", "seq", "dur_ms", "overload", "nonfinite", "xruns",
    "outbox_depth", "outbox_evictions", "reanchors", "unconfirmed",
)  # fmt: skip
_NUM_FIELDS: Final = (
    *LEVEL_FIELDS, "bass", "impulsive", "tonality", "uptime_s", "cpu_temp_c",
    "drift_ms", "disk_free_mb", "unconfirmed_age_s",
)  # fmt: skip
_STR_FIELDS: Final = ("site", "node", "state", "version", "calibrated_at", "audio", "error")
_NULLABLE: Final = ("tonal_band", "calibrated_at", "cpu_temp_c", "error", "drift_ms")
_MAX_STR: Final = 200
_MAX_PAYLOAD: Final = 16_384
_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_ALLOWED: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "second": (SECOND_REQUIRED, SECOND_OPTIONAL),
    "minute": (MINUTE_REQUIRED, MINUTE_OPTIONAL),
    "status": (STATUS_REQUIRED, STATUS_OPTIONAL),
}


# Set views of the tuples above for the per-field membership tests of validate()
# (the ingest validates every message; tuple scans cost a fifth of decode()).
_INT_SET: Final = frozenset(_INT_FIELDS)
_NUM_SET: Final = frozenset(_NUM_FIELDS)
_STR_SET: Final = frozenset(_STR_FIELDS)
_NULLABLE_SET: Final = frozenset(_NULLABLE)
_BAND_SET: Final = frozenset(BAND_NOMINALS)


class SchemaError(ValueError):
    """A payload or topic does not follow the wire contract.

    ``reason`` is a short machine-friendly key (``unknown_field``, ``bad_type`` ...)
    used by the ingest to count rejections; ``str(err)`` is the human message.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded and structurally valid message."""

    kind: str
    site: str
    node: str
    payload: dict[str, Any]


def valid_id(value: str) -> bool:
    """Site and node ids: 1-64 of ``[A-Za-z0-9_.-]``, starting alphanumeric."""
    return bool(_ID_RE.match(value))


def topic(site: str, node: str, kind: str) -> str:
    """Topic of a node's messages: ``klankkast/v1/{site}/{node}/{kind}`` (``ack``: to it)."""
    if kind not in TOPIC_KINDS:
        raise SchemaError(
            "unknown_kind", f"kind must be one of {', '.join(TOPIC_KINDS)}; got {kind!r}"
        )
    for name, value in (("site", site), ("node", node)):
        if not valid_id(value):
            raise SchemaError(
                "bad_id",
                f"{name} must be 1-64 of [A-Za-z0-9_.-], starting alphanumeric; got {value!r}",
            )
    return f"{TOPIC_ROOT}/{site}/{node}/{kind}"


def parse_topic(value: str) -> tuple[str, str, str]:
    """Split a node topic into ``(site, node, kind)``; raise :class:`SchemaError` otherwise."""
    parts = value.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise SchemaError(
            "bad_topic", f"topic must be {TOPIC_ROOT}/<site>/<node>/<kind>; got {value!r}"
        )
    site, node, kind = parts[2], parts[3], parts[4]
    if kind not in KINDS:
        raise SchemaError(
            "bad_topic", f"topic kind must be one of {', '.join(KINDS)}; got {kind!r}"
        )
    if not (valid_id(site) and valid_id(node)):
        raise SchemaError("bad_topic", f"topic site/node are not valid ids: {value!r}")
    return site, node, kind


def band_field(nominal: str) -> str:
    """InfluxDB field name of a band level: ``LZeq_31p5``, ``LZeq_1000``."""
    return "LZeq_" + nominal.replace(".", "p")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate(kind: str, payload: dict[str, Any]) -> None:
    """Check a payload's structure against the contract for ``kind``.

    Raises :class:`SchemaError` naming the field, the value and what is allowed.
    Range checks on levels and times belong to the consumer (the ingest), which
    knows the clock; this checks keys, types and shape.
    """
    if kind not in _ALLOWED:
        raise SchemaError("unknown_kind", f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if not isinstance(payload, dict):
        raise SchemaError(
            "not_object", f"payload must be a JSON object; got {type(payload).__name__}"
        )
    required, optional = _ALLOWED[kind]
    unknown = sorted(set(payload) - set(required) - set(optional))
    if unknown:
        raise SchemaError(
            "unknown_field", f"{kind} payload has unknown field(s): {', '.join(unknown)}"
        )
    missing = [k for k in required if k not in payload]
    if missing:
        raise SchemaError("missing_field", f"{kind} payload lacks field(s): {', '.join(missing)}")
    if payload["schema"] != SCHEMA or isinstance(payload["schema"], bool):
        raise SchemaError("schema_version", f"schema must be {SCHEMA}; got {payload['schema']!r}")
    for key, value in payload.items():
        if value is None and key in _NULLABLE_SET:
            continue
        if key in _INT_SET:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SchemaError(
                    "bad_type", f"{key} must be a non-negative integer; got {value!r}"
                )
        elif key in _NUM_SET:
            if not _is_number(value):
                raise SchemaError("bad_type", f"{key} must be a finite number; got {value!r}")
        elif key in _STR_SET:
            if not isinstance(value, str) or len(value) > _MAX_STR:
                raise SchemaError(
                    "bad_type", f"{key} must be a string of at most {_MAX_STR} characters"
                )
        elif key in ("clock_synced", "calibrated"):
            if not isinstance(value, bool):
                raise SchemaError("bad_type", f"{key} must be true or false; got {value!r}")
        elif key == "tonal_band":
            if value not in BAND_NOMINALS:
                raise SchemaError(
                    "bad_band", f"tonal_band must be a nominal band or null; got {value!r}"
                )
        elif key == "bands":
            _validate_bands(value)
    for key in ("site", "node"):
        if not valid_id(payload[key]):
            raise SchemaError(
                "bad_id", f"{key} must be 1-64 of [A-Za-z0-9_.-]; got {payload[key]!r}"
            )
    if kind == "status" and payload["state"] not in STATUS_STATES:
        raise SchemaError(
            "bad_state",
            f"state must be one of {', '.join(STATUS_STATES)}; got {payload['state']!r}",
        )


def _validate_bands(value: Any) -> None:
    if not isinstance(value, dict):
        raise SchemaError("bad_bands", "bands must be an object of nominal frequency -> dB")
    for nominal, level in value.items():
        if nominal not in _BAND_SET:
            raise SchemaError(
                "bad_band", f"bands key must be an IEC nominal frequency; got {nominal!r}"
            )
        if not _is_number(level):
            raise SchemaError(
                "bad_type", f"bands[{nominal}] must be a finite number; got {level!r}"
            )


def encode(kind: str, payload: dict[str, Any]) -> bytes:
    """Validate and serialise a payload; ``schema`` is filled in when absent."""
    full = {"schema": SCHEMA, **payload}
    validate(kind, full)
    data = json.dumps(full, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > _MAX_PAYLOAD:
        raise SchemaError(
            "too_large", f"{kind} payload is {len(data)} bytes; at most {_MAX_PAYLOAD}"
        )
    return data


def decode(topic_name: str, data: bytes) -> Message:
    """Parse and validate one MQTT message of a node topic.

    Checks that the topic's site and node match the payload's.
    """
    site, node, kind = parse_topic(topic_name)
    if len(data) > _MAX_PAYLOAD:
        raise SchemaError("too_large", f"payload is {len(data)} bytes; at most {_MAX_PAYLOAD}")
    payload = _json_object(data, "payload")
    validate(kind, payload)
    if payload["site"] != site or payload["node"] != node:
        raise SchemaError(
            "topic_mismatch",
            f"topic says {site}/{node}, payload says {payload['site']}/{payload['node']}",
        )
    return Message(kind=kind, site=site, node=node, payload=payload)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` as a JSON object (no NaN/Infinity); :class:`SchemaError` otherwise."""
    try:
        payload = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as err:
        raise SchemaError("bad_json", f"{what} is not UTF-8 JSON: {err}") from None
    if not isinstance(payload, dict):
        raise SchemaError(
            "not_object", f"{what} must be a JSON object; got {type(payload).__name__}"
        )
    return payload


def is_ack_topic(value: str) -> bool:
    """True for ``klankkast/v1/{site}/{node}/ack`` (cheap: no id validation)."""
    return value.endswith("/ack") and value.startswith(TOPIC_ROOT + "/") and value.count("/") == 4


def encode_ack(kind: str, ranges: list[tuple[int, int]] | list[list[int]]) -> bytes:
    """Serialise one acknowledgement: ``{"schema":1,"kind":...,"ranges":[[a,b],...]}``.

    ``ranges`` are inclusive, sorted, disjoint ``(first_seq, last_seq)`` pairs,
    1 to :data:`ACK_MAX_RANGES` of them.
    """
    _check_ack(kind, ranges)
    body = ",".join(f"[{int(a)},{int(b)}]" for a, b in ranges)
    return b'{"schema":%d,"kind":"%s","ranges":[%s]}' % (SCHEMA, kind.encode(), body.encode())


def decode_ack(data: bytes) -> tuple[str, list[tuple[int, int]]]:
    """Parse one acknowledgement into ``(kind, ranges)``; :class:`SchemaError` otherwise."""
    if len(data) > _MAX_PAYLOAD:
        raise SchemaError("too_large", f"ack is {len(data)} bytes; at most {_MAX_PAYLOAD}")
    payload = _json_object(data, "ack")
    unknown = sorted(set(payload) - {"schema", "kind", "ranges"})
    if unknown:
        raise SchemaError("unknown_field", f"ack has unknown field(s): {', '.join(unknown)}")
    if payload.get("schema") != SCHEMA or isinstance(payload.get("schema"), bool):
        raise SchemaError(
            "schema_version", f"schema must be {SCHEMA}; got {payload.get('schema')!r}"
        )
    kind, ranges = payload.get("kind"), payload.get("ranges")
    if not isinstance(ranges, list) or not all(isinstance(r, list) and len(r) == 2 for r in ranges):
        raise SchemaError("bad_type", "ranges must be a list of [first_seq, last_seq] pairs")
    pairs = [(r[0], r[1]) for r in ranges]
    _check_ack(kind, pairs)
    return str(kind), pairs


def _check_ack(kind: Any, ranges: Any) -> None:
    if kind not in FRAME_KINDS:
        raise SchemaError(
            "unknown_kind", f"ack kind must be one of {', '.join(FRAME_KINDS)}; got {kind!r}"
        )
    if not 1 <= len(ranges) <= ACK_MAX_RANGES:
        raise SchemaError(
            "bad_ranges", f"ack must hold 1 to {ACK_MAX_RANGES} ranges; got {len(ranges)}"
        )
    last = -1
    for a, b in ranges:
        for v in (a, b):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise SchemaError("bad_type", f"ack seq must be a non-negative integer; got {v!r}")
        if not last < a <= b:
            raise SchemaError(
                "bad_ranges",
                f"ack ranges must be sorted, disjoint and first <= last; got [{a}, {b}] "
                f"after seq {last}",
            )
        last = b
