"""Node health derived from the message stream (pure core; times are passed in).

Per node (tags ``site``, ``node``) the tracker keeps the time a frame was last
received, the ``seq`` numbers of 1-s frames seen in each UTC hour, and the state
from the retained ``status`` topic (including the ``offline`` last will).

Points written to measurement ``node_health`` (retention policy: the default):

* a **snapshot** per node every ``health_interval_s`` at the snapshot time: fields
  ``last_seen_ms`` (i, receive time of the newest frame), ``age_s`` (seconds since
  then), ``frame_t_ms`` (i, interval start of the newest frame), ``online`` (i, 1/0),
  ``state`` (string), ``frames_hour`` (i) and ``seq_gaps_hour`` (i, missing ``seq``
  numbers between the smallest and largest seen in the current UTC hour);
* an **hourly** summary per node at the start of each UTC hour (rewritten as the
  hour fills, so the latest write wins): ``frames`` (i), ``seq_gaps`` (i),
  ``seq_min``/``seq_max`` (i), tag ``period=hour``;
* a **transition** point whenever the state changes: ``online`` (i), ``state``,
  tag ``event=transition``, at the receive time.

Snapshots and hourly summaries are told apart by tag ``period`` (``snapshot`` /
``hour``); filter with ``WHERE "period"='hour'``. Tag ``instance`` (the ingest's MQTT
client id) keeps the points of several ingest processes of one share group apart:
each sees only its share of a node's frames, so the node's gaps in an hour are
``max(seq_max) - min(seq_min) + 1 - sum(frames)`` over the instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from klankkast.influx import M_NODE_HEALTH, line
from klankkast.sensor import wire

__all__ = ["HOUR_MS", "HealthTracker", "NodeState"]

HOUR_MS: Final = 3_600_000


@dataclass(slots=True)
class _Hour:
    seqs: set[int] = field(default_factory=set)

    def gaps(self) -> int:
        if not self.seqs:
            return 0
        return (max(self.seqs) - min(self.seqs) + 1) - len(self.seqs)


@dataclass(slots=True)
class NodeState:
    """What the tracker knows about one node."""

    last_seen_ms: int | None = None
    frame_t_ms: int | None = None
    state: str = "unknown"
    hours: dict[int, _Hour] = field(default_factory=dict)
    dirty_hours: set[int] = field(default_factory=set)


class HealthTracker:
    """Accumulates node health; :meth:`drain` returns line-protocol lines to write."""

    def __init__(self, keep_hours: int = 2, instance: str | None = None) -> None:
        self.instance = instance
        self.nodes: dict[tuple[str, str], NodeState] = {}
        self.keep_hours = keep_hours
        self._pending: list[str] = []

    def _node(self, site: str, node: str) -> NodeState:
        key = (site, node)
        st = self.nodes.get(key)
        if st is None:
            st = self.nodes[key] = NodeState()
        return st

    def observe(self, msg: wire.Message, recv_ms: int) -> None:
        """Take note of one valid message received at ``recv_ms``."""
        st = self._node(msg.site, msg.node)
        p = msg.payload
        if msg.kind in wire.FRAME_KINDS:
            st.last_seen_ms = recv_ms if st.last_seen_ms is None else max(st.last_seen_ms, recv_ms)
            t = int(p["t"])
            st.frame_t_ms = t if st.frame_t_ms is None else max(st.frame_t_ms, t)
            if msg.kind == "second":
                hour = t - t % HOUR_MS
                st.hours.setdefault(hour, _Hour()).seqs.add(int(p["seq"]))
                st.dirty_hours.add(hour)
                if len(st.hours) > self.keep_hours:
                    for old in sorted(st.hours)[: len(st.hours) - self.keep_hours]:
                        st.hours.pop(old)
                        st.dirty_hours.discard(old)
            if st.state in ("unknown", "offline"):
                self._transition(msg.site, msg.node, st, "online", recv_ms)
        elif msg.kind == "status":
            state = str(p["state"])
            if state != st.state:
                self._transition(msg.site, msg.node, st, state, recv_ms)

    def observe_frame(
        self, kind: str, site: str, node: str, t: int, seq: int | None, recv_ms: int
    ) -> None:
        """:meth:`observe` of a ``second``/``minute`` frame from its parts (hot path).

        Same effect as ``observe(Message(kind, site, node, {"t": t, "seq": seq}), recv_ms)``
        without building the message.
        """
        st = self.nodes.get((site, node))
        if st is None:
            st = self.nodes[(site, node)] = NodeState()
        if st.last_seen_ms is None or recv_ms > st.last_seen_ms:
            st.last_seen_ms = recv_ms
        t = int(t)
        if st.frame_t_ms is None or t > st.frame_t_ms:
            st.frame_t_ms = t
        if kind == "second":
            hour = t - t % HOUR_MS
            h = st.hours.get(hour)
            if h is None:
                h = st.hours[hour] = _Hour()
                if len(st.hours) > self.keep_hours:
                    for old in sorted(st.hours)[: len(st.hours) - self.keep_hours]:
                        st.hours.pop(old)
                        st.dirty_hours.discard(old)
            h.seqs.add(int(seq))  # type: ignore[arg-type]
            if hour in st.hours:
                st.dirty_hours.add(hour)
        if st.state == "unknown" or st.state == "offline":
            self._transition(site, node, st, "online", recv_ms)

    def _tags(self, site: str, node: str) -> dict[str, str]:
        tags = {"site": site, "node": node}
        if self.instance:
            tags["instance"] = self.instance
        return tags

    def _transition(self, site: str, node: str, st: NodeState, state: str, t_ms: int) -> None:
        st.state = state
        self._pending.append(
            line(
                M_NODE_HEALTH,
                {**self._tags(site, node), "event": "transition"},
                {"online": int(state != "offline"), "state": state},
                t_ms,
            )
        )

    def snapshot(self, now_ms: int) -> list[str]:
        """Lines of the periodic snapshot and the hourly summaries of changed hours."""
        out = self._pending
        self._pending = []
        for (site, node), st in self.nodes.items():
            tags = self._tags(site, node)
            current = st.hours.get(now_ms - now_ms % HOUR_MS)
            fields: dict[str, float | int | str | bool] = {
                "online": int(st.state not in ("offline", "unknown")),
                "state": st.state,
                "frames_hour": len(current.seqs) if current else 0,
                "seq_gaps_hour": current.gaps() if current else 0,
            }
            if st.last_seen_ms is not None:
                fields["last_seen_ms"] = st.last_seen_ms
                fields["age_s"] = max(0.0, (now_ms - st.last_seen_ms) / 1000.0)
            if st.frame_t_ms is not None:
                fields["frame_t_ms"] = st.frame_t_ms
            out.append(line(M_NODE_HEALTH, {**tags, "period": "snapshot"}, fields, now_ms))
            for hour in sorted(st.dirty_hours):
                h = st.hours[hour]
                out.append(
                    line(
                        M_NODE_HEALTH,
                        {**tags, "period": "hour"},
                        {
                            "frames": len(h.seqs),
                            "seq_gaps": h.gaps(),
                            "seq_min": min(h.seqs),
                            "seq_max": max(h.seqs),
                        },
                        hour,
                    )
                )
            st.dirty_hours.clear()
        return out
