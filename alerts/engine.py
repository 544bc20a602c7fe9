"""Live alerts, the pure core: frames in, alert messages out.

No MQTT, HTTP or clock here; :mod:`klankkast.alerts.service` wires this to paho,
webhooks and InfluxDB and passes the wall clock in (``now_ms``) only to decide
whether an alert is *late*.

Per site
--------
1. **Combine nodes per timestamp.** Frames are put on the site's grid (``step_s``:
   1 s for ``second`` frames, 60 s for ``minute`` summaries) and the nodes of one
   step are combined as the analysis combines them (``rules.node_combine``: by
   default the energy mean of LAeq, LCeq and LA90, since microphones in one courtyard
   hear the same sound field; maximum of LAFmax). Frames may arrive
   out of order (a node draining its outbox sends its backlog oldest-first with the
   newest frames interleaved), so each node's progress is tracked by its ``seq``
   (contiguous per node): a step is closed, in time order, once every node heard
   within ``node_timeout_s`` (stream time) has delivered all its frames up to that
   step. A node that is late or gone is not waited for longer than ``hold_s`` of wall
   clock. A frame for an already closed step is counted (``stale_frames``) and
   dropped (the ingest still stores it), unless it lies more than ``late_after_s``
   behind the site's stream: such a backlog (say one node's, after an outage, while
   the others carried on) is run through a detector of its own, and its alerts are
   late and not retained (they do not replace the site's current state).
2. **Episode rules.** The closed steps feed the analysis'
   :class:`~klankkast.analysis.episodes.StreamingDetector`: the one definition of an
   episode (limits per period on the specific level, emergence over the residual
   LAeq held during an episode, minimum duration, gap merging) shared with
   ``klankkast-analyze``; nothing here repeats a threshold. The rules judge a step
   against the residual of the preceding 10 min, which they need about 8 min of data
   to estimate (half of its 5-min LAeqs): after a start, a restart or a long gap no
   alert can start for that long, and a source already on when the stream begins has
   no residual to be judged against until it stops.
3. **On top, for people being woken up:**

   * *confirmation*: the ``start`` alert goes out once the episode has lasted
     ``confirm_s`` (stream time, from the episode's onset as the rules date it);
     shorter episodes raise nothing;
   * *updates* every ``update_s`` while it lasts, an ``end`` when the rules end it;
   * *hysteresis* in time and level: the rules' gap merge already joins runs of
     exceedance separated by less than ``gap_merge_s``; on top, while an alert is
     active the detector sees the levels raised by ``hysteresis_db`` (default 1 dB),
     so the episode only ends once the level has fallen that far below the limit the
     rules apply (a level hovering at a limit cannot make the alert flap). Keep it
     small: a level within ``hysteresis_db`` of where the rules stop holds it on. The
     alert's own figures always use the measured levels;
   * *minimum gap*: no new ``start`` for a site within ``min_gap_s`` after its last
     ``end``; an episode still going on when the gap has passed starts then;
   * *quiet hours* per site (local wall clock): alerts are still published on MQTT
     and written to InfluxDB, but not sent to webhooks (``quiet: true``);
   * *late*: an alert whose stream time ``t`` is more than ``late_after_s`` behind the
     wall clock (a node's backlog after an outage) is marked ``late: true`` and is not
     sent to webhooks.

Detection runs on frame timestamps only, so a replay gives the same alerts as the
live stream (except ``late``, which compares with the wall clock).

Alert message (JSON, also the retained state of ``klankkast/v1/{site}/alerts``)
-------------------------------------------------------------------------------
``schema`` 1; ``id`` ``{site}-{started}``; ``site``; ``state`` ``start`` | ``update`` |
``end``; ``started`` (episode onset, UTC ms); ``t`` (stream time of the deciding
frame, UTC ms); ``ended`` (end of the episode, UTC ms, ``end`` only, else null);
``duration_s`` (of the episode so far, as the rules date it: onset to its last
exceeding step); ``LAeq`` (energy mean over that span, dB(A)); ``LCeq``; ``LAFmax``
(maximum over it); ``bass`` (LCeq − LAeq); ``LAeq_recent`` (energy mean of the last
``update_s``: is it still going on?); ``nodes`` (sorted node ids that contributed);
``period`` and ``rule`` (from the episode rules); ``late``; ``quiet``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

from klankkast.analysis.episodes import Episode, EpisodeEvent, StreamingDetector
from klankkast.analysis.levels import combine_db  # the analysis' node combination
from klankkast.analysis.rules import Rules

__all__ = [
    "ALERT_STATES",
    "Alert",
    "AlertEngine",
    "AlertSettings",
    "QuietHours",
    "combine_db",
    "parse_quiet_range",
]

ALERT_STATES: Final = ("start", "update", "end")
#: Steps seen at a new site before a step may close on completeness (nodes are learnt).
_WARMUP_STEPS: Final = 5


def parse_quiet_range(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` -> (start, end) in minutes after local midnight.

    The end is exclusive and may be ``24:00``; a range whose end is before its start
    runs over midnight (``"22:00-07:00"``). Raises ``ValueError`` with the reason.
    """
    parts = text.strip().split("-")
    if len(parts) != 2:
        raise ValueError("must be 'HH:MM-HH:MM'")
    out = []
    for p in parts:
        hm = p.strip().split(":")
        if len(hm) != 2 or not all(x.isdigit() and len(x) == 2 for x in hm):
            raise ValueError("must be 'HH:MM-HH:MM'")
        h, m = int(hm[0]), int(hm[1])
        if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
            raise ValueError("hours 00-24 and minutes 00-59")
        out.append(h * 60 + m)
    if out[0] == out[1]:
        raise ValueError("start and end must differ")
    return out[0], out[1]


@dataclass(frozen=True)
class QuietHours:
    """Quiet ranges per site on the local wall clock; key ``"*"`` applies to every site."""

    ranges: Mapping[str, Sequence[tuple[int, int]]] = field(default_factory=dict)
    tz: str = "Europe/Amsterdam"

    def is_quiet(self, site: str, t_ms: int) -> bool:
        ranges = [*self.ranges.get(site, ()), *self.ranges.get("*", ())]
        if not ranges:
            return False
        local = dt.datetime.fromtimestamp(t_ms / 1000, tz=ZoneInfo(self.tz))
        minute = local.hour * 60 + local.minute
        for a, b in ranges:
            if (a < b and a <= minute < b) or (a > b and (minute >= a or minute < b)):
                return True
        return False


@dataclass(frozen=True)
class AlertSettings:
    """The ``[alerts]`` knobs the core uses (see ``deploy/central/central.example.toml``)."""

    confirm_s: int = 300
    update_s: int = 60
    min_gap_s: int = 900
    hysteresis_db: float = 1.0
    late_after_s: int = 600
    hold_s: float = 10.0
    node_timeout_s: float = 120.0
    idle_end_s: float = 900.0
    step_s: int = 1
    quiet: QuietHours = field(default_factory=QuietHours)


@dataclass(frozen=True)
class Alert:
    """One message: its JSON ``payload`` and whether it may go to webhooks."""

    site: str
    state: str
    payload: dict[str, Any]
    #: False for alerts of a backlog stream (older than the site's current stream):
    #: they must not replace the retained current state.
    retain: bool = True

    @property
    def late(self) -> bool:
        return bool(self.payload["late"])

    @property
    def quiet(self) -> bool:
        return bool(self.payload["quiet"])

    @property
    def notify(self) -> bool:
        """Send to webhooks: neither late nor in quiet hours."""
        return not (self.late or self.quiet)


@dataclass
class _Step:
    t_ms: int
    laeq: float
    lceq: float
    lafmax: float
    nodes: tuple[str, ...]


class _Node:
    """One node's delivery progress: all its frames up to ``done_idx`` have arrived."""

    def __init__(self) -> None:
        self.seq: int | None = None  # highest seq with no gap before it (since the first)
        self.done_idx = -1
        self.last_idx = -1
        self.ahead: dict[int, int] = {}  # seq -> step index, beyond a gap
        self.offline = False  # its retained status says offline

    def see(self, seq: int | None, idx: int) -> None:
        self.last_idx = max(self.last_idx, idx)
        if seq is None:
            self.done_idx = max(self.done_idx, idx)
            return
        if self.seq is None or seq == self.seq + 1:
            self.seq = seq
            self.done_idx = max(self.done_idx, idx)
            self._advance()
        elif seq > self.seq + 1:
            self.ahead[seq] = idx
        # seq <= self.seq: an earlier frame filling in, or a redelivery

    def _advance(self) -> None:
        assert self.seq is not None
        while self.seq + 1 in self.ahead:
            self.seq += 1
            self.done_idx = max(self.done_idx, self.ahead.pop(self.seq))

    def skip_to(self, idx: int) -> None:
        """Steps up to ``idx`` were closed: frames missing before them are given up."""
        if self.done_idx >= idx:
            return
        passed = [q for q, i in self.ahead.items() if i <= idx]
        if passed:
            self.seq = max(passed)
            for q in passed:
                del self.ahead[q]
            self._advance()
        self.done_idx = max(self.done_idx, min(idx, self.last_idx))


@dataclass
class _Open:
    """An episode the detector has started; an alert once confirmed."""

    onset_ms: int
    period: str
    rule: str
    steps: list[_Step]
    confirmed: bool = False
    last_sent_ms: int = 0


class _Site:
    def __init__(self, site: str, rules: Rules, step_s: int) -> None:
        self.site = site
        self.rules = rules
        self.step_s = step_s
        self.detector = StreamingDetector(rules, step_s, site=site)
        self.pending: dict[int, dict[str, tuple[float, float, float, float]]] = {}
        self.closed_upto = -1  # last closed step index (absolute: t // step)
        self.head = -1  # newest step index seen
        self.nodes: dict[str, _Node] = {}
        self.first = -1  # first step index seen: the nodes are learnt over a few steps
        self.created: dict[int, int] = {}  # pending step -> wall ms of its first frame
        self.recent: deque[_Step] = deque(
            maxlen=max(
                16, (rules.window_s + rules.min_duration_s + rules.gap_merge_s) // step_s + 8
            )
        )
        self.open: _Open | None = None
        self.backlog = False
        self.last_end_ms: int | None = None
        self.last_arrival_ms = 0


class AlertEngine:
    """Per-site streaming detection with confirmation, updates and flood control."""

    def __init__(self, rules: Rules, settings: AlertSettings) -> None:
        self.rules = rules
        self.settings = settings
        self._sites: dict[str, _Site] = {}
        self._reset_steps = (
            max(rules.window_s, rules.background_window_s + settings.step_s, rules.gap_merge_s)
            // settings.step_s
            + 2
        )
        self.counters: dict[str, int] = {
            "frames": 0,
            "stale_frames": 0,
            "steps": 0,
            "episodes_unconfirmed": 0,
            "alerts": 0,
            "alerts_late": 0,
            "backlog_streams": 0,
        }
        self._backlogs: dict[str, _Site] = {}

    # -- input ----------------------------------------------------------------------
    def frame(
        self,
        site: str,
        node: str,
        t_ms: int,
        laeq_db: float,
        lceq_db: float,
        lafmax_db: float,
        la90_db: float | None = None,
        *,
        now_ms: int,
        seq: int | None = None,
    ) -> list[Alert]:
        """One node frame (interval start ``t_ms``, UTC). Returns the alerts it decides.

        ``seq`` is the node's frame counter (``None``: frames of this node are taken to
        arrive in order).
        """
        self.counters["frames"] += 1
        st = self._sites.get(site)
        if st is None:
            st = self._sites[site] = _Site(site, self.rules, self.settings.step_s)
        idx = int(t_ms) // (self.settings.step_s * 1000)
        late_steps = self.settings.late_after_s // self.settings.step_s
        if st.closed_upto >= 0 and idx < st.closed_upto - late_steps:
            # far behind the site's stream: a backlog (say one node's, after an outage)
            # gets a detector of its own; its alerts are late by construction
            bl = self._backlogs.get(site)
            if bl is None or (idx < bl.closed_upto - late_steps):
                bl = self._backlogs[site] = _Site(site, self.rules, self.settings.step_s)
                bl.backlog = True
                self.counters["backlog_streams"] += 1
            st = bl
        st.last_arrival_ms = now_ms
        nd = st.nodes.get(node)
        if nd is None:
            nd = st.nodes[node] = _Node()
        nd.see(seq, idx)
        if st.first < 0:
            st.first = idx
        if idx <= st.closed_upto:
            self.counters["stale_frames"] += 1
            return []
        la90 = math.nan if la90_db is None else float(la90_db)
        if idx not in st.pending:
            st.created[idx] = now_ms
        st.pending.setdefault(idx, {})[node] = (
            float(laeq_db),
            float(lceq_db),
            float(lafmax_db),
            la90,
        )
        st.head = max(st.head, idx)
        return self._close_ready(st, now_ms)

    def status(self, site: str, node: str, state: str) -> None:
        """A node's retained status: ``offline`` (its last will, or a clean stop) or not."""
        st = self._sites.get(site)
        nd = st.nodes.get(node) if st is not None else None
        if nd is not None:
            nd.offline = state == "offline"

    def idle(self, now_ms: int) -> list[Alert]:
        """Wall-clock housekeeping: steps waiting too long for a node are closed, and a
        site whose data stopped is flushed.

        The data stopped when every node of the site has reported ``offline`` and
        nothing came for ``hold_s``, or when nothing came for ``idle_end_s``. Then the
        pending steps are closed and the open episode is ended: with no data it can no
        longer be said to go on.
        """
        out: list[Alert] = []
        limit = self.settings.idle_end_s * 1000
        for st in [*self._sites.values(), *self._backlogs.values()]:
            out += self._close_ready(st, now_ms)
            busy = bool(st.pending) or st.open is not None
            silent = now_ms - st.last_arrival_ms
            gone = bool(st.nodes) and all(nd.offline for nd in st.nodes.values())
            if busy and (silent >= limit or (gone and silent >= self.settings.hold_s * 1000)):
                out += self._close_until(st, st.head, now_ms)
                out += self._handle(st, st.detector.flush(), now_ms)
        return out

    # -- steps ----------------------------------------------------------------------
    def _close_ready(self, st: _Site, now_ms: int) -> list[Alert]:
        wait_ms = self.settings.hold_s * 1000
        timeout = max(1, math.ceil(self.settings.node_timeout_s / self.settings.step_s))
        out: list[Alert] = []
        while st.pending:
            idx = min(st.pending)
            # complete: every recently heard node has delivered all its frames up to idx
            complete = st.head - st.first >= _WARMUP_STEPS and all(
                nd.done_idx >= idx for nd in st.nodes.values() if nd.last_idx >= idx - timeout
            )
            if complete or now_ms - st.created[idx] >= wait_ms:
                out += self._close_until(st, idx, now_ms)
            else:
                break
        return out

    def _close_until(self, st: _Site, upto: int, now_ms: int) -> list[Alert]:
        out: list[Alert] = []
        for idx in sorted(i for i in st.pending if i <= upto):
            del st.created[idx]
            out += self._step(st, idx, st.pending.pop(idx), now_ms)
        for nd in st.nodes.values():
            nd.skip_to(upto)
        return out

    def _step(
        self,
        st: _Site,
        idx: int,
        frames: dict[str, tuple[float, float, float, float]],
        now_ms: int,
    ) -> list[Alert]:
        self.counters["steps"] += 1
        how = self.rules.node_combine
        vals = [frames[n] for n in sorted(frames)]  # same order, same float sums
        # the nodes of a site are combined exactly as the analysis combines them
        laeq = combine_db([v[0] for v in vals], how)
        lceq = combine_db([v[1] for v in vals], how)
        fmaxes = [v[2] for v in vals if math.isfinite(v[2])]
        lafmax = max(fmaxes) if fmaxes else math.nan
        la90 = combine_db([v[3] for v in vals], how)
        step_ms = self.settings.step_s * 1000
        t = idx * step_ms
        out: list[Alert] = []
        if st.closed_upto >= 0 and idx - st.closed_upto > self._reset_steps:
            # a long silence: every rule buffer would be empty; start afresh
            out += self._handle(st, st.detector.flush(), now_ms)
            st.detector = StreamingDetector(self.rules, self.settings.step_s, site=st.site)
        st.closed_upto = idx
        step = _Step(t, laeq, lceq, lafmax, tuple(sorted(frames)))
        st.recent.append(step)
        if st.open is not None:
            st.open.steps.append(step)
        boost = self.settings.hysteresis_db if (st.open and st.open.confirmed) else 0.0
        events = st.detector.update(
            t,
            laeq + boost if math.isfinite(laeq) else None,
            lafmax + boost if math.isfinite(lafmax) else None,
            lceq + boost if math.isfinite(lceq) else None,
            la90 if math.isfinite(la90) else None,
        )
        out += self._handle(st, events, now_ms)
        out += self._tick(st, t, now_ms)
        return out

    def _handle(self, st: _Site, events: list[EpisodeEvent], now_ms: int) -> list[Alert]:
        out: list[Alert] = []
        for ev in events:
            if ev.kind == "start":
                onset = ev.episode.start_ms
                steps = [s for s in st.recent if s.t_ms >= onset]
                st.open = _Open(onset, ev.episode.period, ev.episode.rule, steps)
            elif ev.kind == "end" and st.open is not None:
                op = st.open
                if op.confirmed:
                    out.append(self._end(st, op, ev.t_ms, ev.episode, now_ms))
                else:
                    self.counters["episodes_unconfirmed"] += 1
                st.open = None
        return out

    def _tick(self, st: _Site, t: int, now_ms: int) -> list[Alert]:
        op = st.open
        if op is None:
            return []
        s = self.settings
        if not op.confirmed:
            # how long the episode has lasted by the rules' own dating (its last step
            # whose own level exceeds), not merely how long ago it began
            cur = st.detector.current()
            if cur is None:
                return []
            if cur.rule:
                op.rule = cur.rule
            lasted = cur.end_ms - op.onset_ms
            gap_ok = st.last_end_ms is None or t - st.last_end_ms >= s.min_gap_s * 1000
            if lasted >= s.confirm_s * 1000 and gap_ok:
                op.confirmed = True
                op.last_sent_ms = t
                return [self._emit(st, "start", self._payload(st, op, "start", t, now_ms))]
            return []
        if t - op.last_sent_ms >= s.update_s * 1000:
            op.last_sent_ms = t
            # the episode so far as the rules date it: up to its last exceeding step
            cur = st.detector.current()
            upto = cur.end_ms if cur is not None else t + s.step_s * 1000
            steps = [x for x in op.steps if x.t_ms < upto]
            payload = self._payload(st, op, "update", t, now_ms, steps=steps, upto_ms=upto)
            return [self._emit(st, "update", payload)]
        return []

    # -- messages -------------------------------------------------------------------
    def _end(self, st: _Site, op: _Open, t: int, episode: Episode, now_ms: int) -> Alert:
        st.last_end_ms = t
        end_ms = max(episode.end_ms, op.onset_ms + self.settings.step_s * 1000)
        steps = [x for x in op.steps if x.t_ms < end_ms]
        payload = self._payload(st, op, "end", t, now_ms, steps=steps, ended_ms=end_ms)
        return self._emit(st, "end", payload)

    def _emit(self, st: _Site, state: str, payload: dict[str, Any]) -> Alert:
        self.counters["alerts"] += 1
        if payload["late"]:
            self.counters["alerts_late"] += 1
        return Alert(st.site, state, payload, retain=not st.backlog)

    def _payload(
        self,
        st: _Site,
        op: _Open,
        state: str,
        t: int,
        now_ms: int,
        *,
        steps: list[_Step] | None = None,
        ended_ms: int | None = None,
        upto_ms: int | None = None,
    ) -> dict[str, Any]:
        recent_from = t + self.settings.step_s * 1000 - self.settings.update_s * 1000
        recent = [x.laeq for x in op.steps if x.t_ms >= recent_from and math.isfinite(x.laeq)]
        steps = op.steps if steps is None else steps
        la = [x.laeq for x in steps if math.isfinite(x.laeq)]
        both = [x for x in steps if math.isfinite(x.laeq) and math.isfinite(x.lceq)]
        laeq = combine_db(la, "mean")
        lceq_b = combine_db([x.lceq for x in both], "mean")
        laeq_b = combine_db([x.laeq for x in both], "mean")
        fmax = [x.lafmax for x in steps if math.isfinite(x.lafmax)]
        nodes = sorted({n for x in steps for n in x.nodes})
        end = ended_ms or upto_ms or t + self.settings.step_s * 1000
        return {
            "schema": 1,
            "id": f"{st.site}-{op.onset_ms}",
            "site": st.site,
            "state": state,
            "started": op.onset_ms,
            "t": t,
            "ended": ended_ms,
            "duration_s": round((end - op.onset_ms) / 1000.0, 1),
            "LAeq": _r(laeq),
            "LCeq": _r(lceq_b),
            "LAFmax": _r(max(fmax) if fmax else math.nan),
            "LAeq_recent": _r(combine_db(recent, "mean")),
            "bass": _r(lceq_b - laeq_b),
            "nodes": nodes,
            "period": op.period,
            "rule": op.rule,
            "late": bool(now_ms - t > self.settings.late_after_s * 1000),
            "quiet": self.settings.quiet.is_quiet(st.site, t),
        }


def _r(x: float) -> float | None:
    return round(x, 1) if math.isfinite(x) else None
