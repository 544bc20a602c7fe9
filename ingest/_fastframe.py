"""The fast path of :func:`klankkast.ingest.validate.encode_chunk` (``[ingest] fast_paths``).

The ingest validates and encodes every frame; the general path (``wire.decode`` ->
``check_ranges`` -> ``_fast_line``) costs ~75 us per 1-s frame, mostly per-field
Python checks and per-field string formatting. :func:`fast_frame` decides "valid" for
the common case (a ``second``/``minute`` frame of plain numbers) with whole-list
checks and formats the line through a cached %-template (the same fields and values
as the general path, grouped by type). It only ever ACCEPTS: whenever a check does
not pass (or anything is unusual) it returns None and the message takes the general
path, which finds the reason. So accept/reject and the reasons are exactly those of
the general path; ``tests/unit/ingest/test_ingest_fast_path.py`` runs ``encode_chunk``
with the fast path on and off and compares. ``[ingest] fast_paths = false`` switches
it off (to rule it out when diagnosing a fault).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final

from klankkast.decibel import level_to_energy
from klankkast.ingest.validate import (
    _BAND_PREFIX,
    _KIND,
    _MEASUREMENT_OF_KIND,
    _RP_OF_KIND,
    _STR_ESCAPE,
    LEVEL_MAX_DB,
    LEVEL_MIN_DB,
    T_FUTURE_MS,
    T_MIN_MS,
    Encoded,
)
from klankkast.sensor import wire

__all__ = ["fast_frame"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


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


def fast_frame(
    topic: str, data: bytes, now_ms: int, raw_retention_ms: int | None
) -> Encoded | None:
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
    return Encoded(True, rp, head + template % tuple(args), kind, site, node, t, ints[1], None)
