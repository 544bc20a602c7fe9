"""The durable outbox: every frame is stored here before it is published.

A frame is appended (with its per-stream ``seq`` assigned in the same transaction,
so ``seq`` is monotonic across restarts and crashes) and published with QoS 1 by
:class:`klankkast.sensor.delivery.Dispatcher`. What happens on the broker's PUBACK
depends on who confirms delivery (``[outbox] confirm``):

* ``"broker"``: :meth:`Outbox.ack` deletes the frame;
* ``"ingest"`` (end to end): :meth:`Outbox.published` moves it from *pending* to
  *published, awaiting confirmation* (with the time), :meth:`Outbox.confirm` deletes
  it when the ingest names its ``(stream, seq)`` in an ack message, and
  :meth:`Outbox.requeue` moves what waited too long back to *pending*, to be
  published again with the same ``seq`` and payload.

States are stored, so a node that restarts keeps both pending and unconfirmed
frames. The store is bounded over all of them: when the payload bytes exceed the
limit, the oldest ``second`` frames are evicted first and ``minute`` summaries
last, whatever their state; evictions are counted (persistently) and reported in
the node status.

Two implementations of the :class:`Outbox` role share one contract suite:
:class:`SqliteOutbox` (SQLite in WAL mode, the node's) and :class:`MemoryOutbox`
(tests, benchmarks).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from klankkast.sensor.errors import OutboxError

__all__ = ["Entry", "MemoryOutbox", "NewFrame", "Outbox", "SqliteOutbox"]

#: Eviction order: lower rank goes first.
_EVICT_RANK = {"second": 0, "minute": 1}


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored message, waiting for its PUBACK or its confirmation."""

    id: int
    stream: str
    kind: str
    topic: str
    payload: bytes
    seq: int


@dataclass(frozen=True, slots=True)
class NewFrame:
    """A frame to append: ``build(seq)`` returns the encoded payload for that ``seq``.

    ``stream`` names the sequence (``"{site}/{node}/{kind}"``): ``seq`` counts per
    stream, starting at 0.
    """

    stream: str
    kind: str
    topic: str
    build: Callable[[int], bytes]


class Outbox(Protocol):
    """Role: durable FIFO of encoded frames, deleted on acknowledgement.

    ``pending`` lists only frames not yet published (or put back by ``requeue``);
    ``depth``, ``size_bytes`` and the bound count every stored frame.
    """

    def append(self, frame: NewFrame) -> Entry: ...

    def append_many(self, frames: Sequence[NewFrame]) -> list[Entry]: ...

    def pending(
        self, limit: int, exclude: Collection[int] = (), *, newest: bool = False
    ) -> list[Entry]: ...

    def ack(self, ids: Iterable[int]) -> int: ...

    def published(self, ids: Iterable[int], now_ms: int) -> int: ...

    def confirm(self, stream: str, ranges: Iterable[tuple[int, int]]) -> int: ...

    def requeue(self, sent_before_ms: int) -> int: ...

    def unconfirmed(self) -> tuple[int, int | None]: ...

    def depth(self) -> int: ...

    def size_bytes(self) -> int: ...

    @property
    def evictions(self) -> int: ...

    def next_seq(self, stream: str) -> int: ...

    def close(self) -> None: ...


class _Totals:
    """What both outboxes do alike: count payload bytes held and frames evicted so far,
    and append one frame as a batch of one."""

    _bytes: int
    _evictions: int

    def append(self, frame: NewFrame) -> Entry:
        return self.append_many([frame])[0]

    def append_many(self, frames: Sequence[NewFrame]) -> list[Entry]:
        raise NotImplementedError

    def size_bytes(self) -> int:
        return self._bytes

    @property
    def evictions(self) -> int:
        return self._evictions


class MemoryOutbox(_Totals):
    """In-memory :class:`Outbox` (tests, benchmarks). ``max_bytes`` bounds payload bytes."""

    def __init__(self, max_bytes: int = 2048 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._rows: OrderedDict[int, Entry] = OrderedDict()
        self._sent: dict[int, int] = {}  # id -> time of the last PUBACK (ms): awaiting
        self._first: dict[int, int] = {}  # id -> time of the first PUBACK (ms)
        self._seq: dict[str, int] = {}
        self._next_id = 1
        self._bytes = 0
        self._evictions = 0
        self._lock = threading.Lock()

    def append_many(self, frames: Sequence[NewFrame]) -> list[Entry]:
        out: list[Entry] = []
        with self._lock:
            seqs = dict(self._seq)
            for f in frames:  # build everything first: a failing build changes nothing
                seq = seqs.get(f.stream, 0)
                seqs[f.stream] = seq + 1
                out.append(
                    Entry(self._next_id + len(out), f.stream, f.kind, f.topic, f.build(seq), seq)
                )
            self._seq = seqs
            self._next_id += len(out)
            for e in out:
                self._rows[e.id] = e
                self._bytes += len(e.payload)
            self._evict()
        return out

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._rows:
            rank = min(_EVICT_RANK.get(e.kind, 2) for e in self._rows.values())
            victim = next(e for e in self._rows.values() if _EVICT_RANK.get(e.kind, 2) == rank)
            self._drop(victim.id)
            self._evictions += 1

    def _drop(self, i: int) -> bool:
        e = self._rows.pop(i, None)
        if e is None:
            return False
        self._bytes -= len(e.payload)
        self._sent.pop(i, None)
        self._first.pop(i, None)
        return True

    def pending(
        self, limit: int, exclude: Collection[int] = (), *, newest: bool = False
    ) -> list[Entry]:
        with self._lock:
            rows = reversed(self._rows.values()) if newest else iter(self._rows.values())
            out: list[Entry] = []
            for e in rows:
                if len(out) >= limit:
                    break
                if e.id not in exclude and e.id not in self._sent:
                    out.append(e)
            return out

    def ack(self, ids: Iterable[int]) -> int:
        with self._lock:
            return sum(self._drop(i) for i in ids)

    def published(self, ids: Iterable[int], now_ms: int) -> int:
        n = 0
        with self._lock:
            for i in ids:
                if i in self._rows and i not in self._sent:
                    self._sent[i] = now_ms
                    self._first.setdefault(i, now_ms)
                    n += 1
        return n

    def confirm(self, stream: str, ranges: Iterable[tuple[int, int]]) -> int:
        spans = list(ranges)
        with self._lock:
            victims = [
                e.id
                for e in self._rows.values()
                if e.stream == stream and any(a <= e.seq <= b for a, b in spans)
            ]
            return sum(self._drop(i) for i in victims)

    def requeue(self, sent_before_ms: int) -> int:
        with self._lock:
            due = [i for i, t in self._sent.items() if t <= sent_before_ms]
            for i in due:
                del self._sent[i]
            return len(due)

    def unconfirmed(self) -> tuple[int, int | None]:
        with self._lock:
            return len(self._first), min(self._first.values(), default=None)

    def depth(self) -> int:
        return len(self._rows)

    def next_seq(self, stream: str) -> int:
        return self._seq.get(stream, 0)

    def close(self) -> None:
        pass


#: Rows kept in memory for pending() while the outbox is small (SqliteOutbox).
_MIRROR_MAX = 256

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    sent_ms INTEGER,
    first_ms INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, id);
CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: Index of the confirmation by (stream, seq). The state columns (``sent_ms``: time of
#: the last PUBACK, NULL while pending; ``first_ms``: of the first) are added to an
#: older file on open. They have no index: requeue (every few seconds) and the status
#: count (every minute) scan the table, which costs less than keeping an index up to
#: date on every PUBACK and confirmation.
_STATE_SQL = """
CREATE INDEX IF NOT EXISTS outbox_stream_seq ON outbox(stream, seq);
"""


class SqliteOutbox(_Totals):
    """:class:`Outbox` in one SQLite file (WAL journal), safe across threads.

    Parameters
    ----------
    path
        The database file; its directory is created when missing.
    max_bytes
        Bound on the stored payload bytes (the file is somewhat larger: row and
        index overhead, and SQLite reuses freed pages rather than shrinking).
    synchronous
        SQLite ``synchronous`` pragma. ``"FULL"`` (the node) makes each append
        durable across a power cut; ``"NORMAL"`` survives a process crash only.
    mirror
        Keep the in-memory copy of the pending rows (a fast path, ``[node] fast_paths``);
        off, :meth:`pending` always reads SQLite. The same rows either way (the
        outbox contract suite runs both).
    """

    def __init__(
        self,
        path: Path | str,
        max_bytes: int = 2048 * 1024 * 1024,
        *,
        synchronous: str = "FULL",
        mirror: bool = True,
    ) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL"):
            raise OutboxError(f"synchronous must be OFF, NORMAL or FULL; got {synchronous!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.synchronous = synchronous
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(_SCHEMA_SQL)
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
            for col in ("sent_ms", "first_ms"):  # an outbox written before acks
                if col not in cols:
                    self._db.execute(f"ALTER TABLE outbox ADD COLUMN {col} INTEGER")
            self._db.executescript(_STATE_SQL)
            row = self._db.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0), count(sent_ms) FROM outbox"
            ).fetchone()
            self._depth, self._bytes, self._waiting = int(row[0]), int(row[1]), int(row[2])
            ev = self._db.execute("SELECT value FROM counters WHERE name='evictions'").fetchone()
            self._evictions = int(ev[0]) if ev else 0
            # Deletes go through a second connection without the fsync: a delete lost in
            # a power cut only means one QoS 1 redelivery, and the next append's fsync of
            # the shared WAL persists it anyway. (Toggling the pragma on one connection
            # cost four extra statements per acknowledgement.)
            self._db_del = self._db
            if synchronous == "FULL":
                self._db_del = sqlite3.connect(
                    str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
                )
                self._db_del.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as err:
            raise OutboxError(f"outbox {str(self.path)!r} cannot be opened: {err}") from None
        self._seq_cache: dict[str, int] = {}
        # In-memory copy of the pending rows (not yet published) while they are few (the
        # normal case: a few frames waiting for their PUBACK), so pending() needs no
        # SELECT. Valid only while complete: built from empty, dropped when it would
        # exceed _MIRROR_MAX rows, on eviction or requeue, rebuilt when no row is
        # pending again. (_waiting counts the published rows awaiting confirmation.)
        # ``mirror=False`` ([node] fast_paths = false): always SELECT.
        self.mirror = mirror
        self._mirror: OrderedDict[int, Entry] | None = (
            self._new_mirror() if self._depth == self._waiting else None
        )

    def _new_mirror(self) -> OrderedDict[int, Entry] | None:
        """An empty copy to fill, or None when the copy is switched off."""
        return OrderedDict() if self.mirror else None

    def _seq_of(self, stream: str) -> int:
        if stream not in self._seq_cache:
            row = self._db.execute(
                "SELECT next_seq FROM streams WHERE stream=?", (stream,)
            ).fetchone()
            self._seq_cache[stream] = int(row[0]) if row else 0
        return self._seq_cache[stream]

    def append_many(self, frames: Sequence[NewFrame]) -> list[Entry]:
        out: list[Entry] = []
        with self._lock:
            cache = dict(self._seq_cache)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                added = 0
                for f in frames:
                    seq = self._seq_of(f.stream)
                    payload = f.build(seq)
                    cur = self._db.execute(
                        "INSERT INTO outbox(stream, kind, topic, seq, payload) VALUES (?,?,?,?,?)",
                        (f.stream, f.kind, f.topic, seq, payload),
                    )
                    self._db.execute(
                        "INSERT INTO streams(stream, next_seq) VALUES (?, ?) "
                        "ON CONFLICT(stream) DO UPDATE SET next_seq=excluded.next_seq",
                        (f.stream, seq + 1),
                    )
                    self._seq_cache[f.stream] = seq + 1
                    assert cur.lastrowid is not None
                    out.append(Entry(cur.lastrowid, f.stream, f.kind, f.topic, payload, seq))
                    added += len(payload)
                evicted_n, evicted_b, evicted_w = self._evict(self._bytes + added)
                self._db.execute("COMMIT")
            except BaseException as err:
                self._seq_cache = cache
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(err, sqlite3.Error):
                    raise OutboxError(f"outbox {str(self.path)!r} write failed: {err}") from None
                raise
            self._depth += len(out) - evicted_n
            self._bytes += added - evicted_b
            self._evictions += evicted_n
            self._waiting -= evicted_w
            if self._mirror is None and self._depth - len(out) == self._waiting:
                self._mirror = self._new_mirror()  # nothing else pending: start a new copy
            if self._mirror is not None:
                if evicted_n or len(self._mirror) + len(out) > _MIRROR_MAX:
                    self._mirror = None
                else:
                    for e in out:
                        self._mirror[e.id] = e
        return out

    def _evict(self, total: int) -> tuple[int, int, int]:
        """Delete oldest rows (``second`` first, then ``minute``, then the rest), any state.

        Returns the rows deleted, their payload bytes and how many were published.
        """
        if total <= self.max_bytes:
            return 0, 0, 0
        n = freed = waiting = 0
        for kind_clause in ("kind='second'", "kind='minute'", "kind NOT IN ('second','minute')"):
            while total - freed > self.max_bytes:
                rows = self._db.execute(
                    f"SELECT id, length(payload), sent_ms FROM outbox WHERE {kind_clause} "
                    "ORDER BY id LIMIT 256"
                ).fetchall()
                if not rows:
                    break
                victims = []
                for rid, size, sent in rows:
                    if total - freed <= self.max_bytes:
                        break
                    victims.append(rid)
                    freed += size
                    waiting += sent is not None
                self._db.executemany("DELETE FROM outbox WHERE id=?", [(v,) for v in victims])
                n += len(victims)
        if n:
            self._db.execute(
                "INSERT INTO counters(name, value) VALUES ('evictions', ?) "
                "ON CONFLICT(name) DO UPDATE SET value=value+excluded.value",
                (n,),
            )
        return n, freed, waiting

    def pending(
        self, limit: int, exclude: Collection[int] = (), *, newest: bool = False
    ) -> list[Entry]:
        if limit <= 0:
            return []
        with self._lock:
            if self._mirror is not None:
                rows_m = reversed(self._mirror.values()) if newest else iter(self._mirror.values())
                found: list[Entry] = []
                for e in rows_m:
                    if len(found) >= limit:
                        break
                    if e.id not in exclude:
                        found.append(e)
                return found
        order = "DESC" if newest else "ASC"
        ex = list(exclude)
        where = "WHERE sent_ms IS NULL"
        if ex:
            where += f" AND id NOT IN ({','.join('?' * len(ex))})"
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, stream, kind, topic, payload, seq FROM outbox {where} "
                f"ORDER BY id {order} LIMIT ?",
                (*ex, limit),
            ).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]

    def ack(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        db = self._db_del
        with self._lock:
            try:
                removed = n = waiting = 0
                sql = "DELETE FROM outbox WHERE id=? RETURNING length(payload), sent_ms"
                if len(ids) == 1:  # the usual case: one statement, its own transaction
                    rows = db.execute(sql, (ids[0],)).fetchall()
                else:
                    db.execute("BEGIN IMMEDIATE")
                    rows = [r for i in ids for r in db.execute(sql, (i,)).fetchall()]
                    db.execute("COMMIT")
                for size, sent in rows:
                    removed += int(size)
                    n += 1
                    waiting += sent is not None
            except sqlite3.Error as err:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise OutboxError(f"outbox {str(self.path)!r} delete failed: {err}") from None
            self._deleted(ids, n, removed, waiting)
        return n

    def _deleted(self, ids: Iterable[int], n: int, removed: int, waiting: int) -> None:
        """Book-keeping after deleting ``n`` rows (``waiting`` of them published); locked."""
        self._depth -= n
        self._bytes -= removed
        self._waiting -= waiting
        if self._mirror is not None:
            for i in ids:
                self._mirror.pop(i, None)
        elif self._depth == self._waiting:
            self._mirror = self._new_mirror()

    def published(self, ids: Iterable[int], now_ms: int) -> int:
        """PUBACK: pending rows ``ids`` now await confirmation (ids gone meanwhile: skipped)."""
        ids = list(ids)
        if not ids:
            return 0
        db = self._db_del
        sql = (
            "UPDATE outbox SET sent_ms=?, first_ms=coalesce(first_ms, ?) "
            "WHERE id=? AND sent_ms IS NULL"
        )
        with self._lock:
            try:
                if len(ids) == 1:
                    n = db.execute(sql, (now_ms, now_ms, ids[0])).rowcount
                else:
                    db.execute("BEGIN IMMEDIATE")
                    n = sum(db.execute(sql, (now_ms, now_ms, i)).rowcount for i in ids)
                    db.execute("COMMIT")
            except sqlite3.Error as err:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise OutboxError(f"outbox {str(self.path)!r} update failed: {err}") from None
            self._waiting += n
            if self._mirror is not None:
                for i in ids:
                    self._mirror.pop(i, None)
            elif self._depth == self._waiting:
                self._mirror = self._new_mirror()
        return n

    def confirm(self, stream: str, ranges: Iterable[tuple[int, int]]) -> int:
        """Delete the rows of ``stream`` whose ``seq`` lies in an inclusive range, any state."""
        spans = list(ranges)
        if not spans:
            return 0
        db = self._db_del
        sql = (
            "DELETE FROM outbox WHERE stream=? AND seq BETWEEN ? AND ? "
            "RETURNING id, length(payload), sent_ms"
        )
        with self._lock:
            try:
                if len(spans) == 1:  # the usual case: one statement, its own transaction
                    rows = db.execute(sql, (stream, *spans[0])).fetchall()
                else:
                    db.execute("BEGIN IMMEDIATE")
                    rows = [r for a, b in spans for r in db.execute(sql, (stream, a, b)).fetchall()]
                    db.execute("COMMIT")
            except sqlite3.Error as err:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise OutboxError(f"outbox {str(self.path)!r} delete failed: {err}") from None
            self._deleted(
                [r[0] for r in rows],
                len(rows),
                sum(int(r[1]) for r in rows),
                sum(r[2] is not None for r in rows),
            )
        return len(rows)

    def requeue(self, sent_before_ms: int) -> int:
        """Published rows whose last PUBACK is at or before ``sent_before_ms`` become pending."""
        db = self._db_del
        with self._lock:
            try:
                n = db.execute(
                    "UPDATE outbox SET sent_ms=NULL WHERE sent_ms IS NOT NULL AND sent_ms<=?",
                    (sent_before_ms,),
                ).rowcount
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {str(self.path)!r} update failed: {err}") from None
            if n:
                self._waiting -= n
                self._mirror = None  # the copy lacks the requeued rows
        return int(n)

    def unconfirmed(self) -> tuple[int, int | None]:
        """Rows published at least once and not confirmed, and the earliest first PUBACK (ms)."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*), min(first_ms) FROM outbox WHERE first_ms IS NOT NULL"
            ).fetchone()
        return int(row[0]), None if row[1] is None else int(row[1])

    def depth(self) -> int:
        return self._depth

    def next_seq(self, stream: str) -> int:
        with self._lock:
            return self._seq_of(stream)

    def close(self) -> None:
        with self._lock:
            if self._db_del is not self._db:
                with contextlib.suppress(sqlite3.Error):
                    self._db_del.close()
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
