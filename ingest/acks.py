"""Acknowledgements to the nodes: which frames are stored, coalesced per node (pure core).

After InfluxDB confirmed a batch (HTTP 204), the ingest tells each node which of its
frames it is done with, on ``klankkast/v1/{site}/{node}/ack`` (the payload is
:func:`klankkast.sensor.wire.encode_ack`: one frame kind, inclusive ``seq`` ranges).
:class:`AckCoalescer` collects the ``(site, node, kind, seq)`` of every finished
frame and hands out at most one message per node per ``interval_s`` (1 s): a node
that sends one frame a second gets one small message a second, and a node draining
a backlog of thousands gets one message naming a single range. With ``second`` and
``minute`` frames both waiting, the kind with the oldest waiting frame goes first
and the other one a slot later; more ranges than fit one message
(:data:`~klankkast.sensor.wire.ACK_MAX_RANGES`) wait for the next slot too.

No I/O and no clock: ``now_s`` (monotonic seconds) is passed in. Each member of a
shared subscription runs its own coalescer and confirms what it wrote itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from klankkast.sensor import wire

__all__ = ["AckCoalescer", "to_ranges"]

#: (site, node, kind, seq) of one frame.
FrameId = tuple[str, str, str, int]


def to_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, disjoint inclusive ranges covering ``seqs``: {1,2,3,7} -> [(1,3),(7,7)]."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


class AckCoalescer:
    """Finished frames in, at most one ack message per node per ``interval_s`` out."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        # (site, node) -> kind -> (seqs waiting, when the first of them arrived)
        self._waiting: dict[tuple[str, str], dict[str, tuple[set[int], float]]] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self.messages = 0
        self.frames = 0

    def add(self, frames: Iterable[FrameId], now_s: float) -> None:
        """Record frames the ingest is done with (written, or refused for good)."""
        waiting = self._waiting
        for site, node, kind, seq in frames:
            kinds = waiting.get((site, node))
            if kinds is None:
                kinds = waiting[(site, node)] = {}
            entry = kinds.get(kind)
            if entry is None:
                kinds[kind] = ({seq}, now_s)
            else:
                entry[0].add(seq)

    def pending_nodes(self) -> int:
        """Nodes with frames waiting to be acknowledged."""
        return len(self._waiting)

    def next_due_s(self) -> float | None:
        """When the next message may go out (monotonic s), or None if nothing waits."""
        if not self._waiting:
            return None
        return min(self._last_sent.get(key, -1e18) + self.interval_s for key in self._waiting)

    def due(self, now_s: float) -> list[tuple[str, bytes]]:
        """``(topic, payload)`` of the messages that may go out now; at most one per node."""
        out: list[tuple[str, bytes]] = []
        for key in list(self._waiting):
            last = self._last_sent.get(key)
            if last is not None and now_s - last < self.interval_s:
                continue
            kinds = self._waiting[key]
            kind = min(kinds, key=lambda k: kinds[k][1])
            seqs, since = kinds.pop(kind)
            ranges = to_ranges(seqs)
            if len(ranges) > wire.ACK_MAX_RANGES:
                rest = ranges[wire.ACK_MAX_RANGES :]
                ranges = ranges[: wire.ACK_MAX_RANGES]
                kinds[kind] = ({s for a, b in rest for s in range(a, b + 1)}, since)
            if not kinds:
                del self._waiting[key]
            site, node = key
            out.append((wire.topic(site, node, "ack"), wire.encode_ack(kind, ranges)))
            self._last_sent[key] = now_s
            self.messages += 1
            self.frames += sum(b - a + 1 for a, b in ranges)
        if len(self._last_sent) > 4 * len(self._waiting) + 10_000:  # forget idle nodes
            self._last_sent = {
                k: t for k, t in self._last_sent.items() if now_s - t < self.interval_s
            }
        return out
