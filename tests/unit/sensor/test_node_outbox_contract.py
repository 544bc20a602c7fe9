"""One contract suite for every implementation of the Outbox port (memory, SQLite).

The SQLite outbox is also killed mid-stream (a child process that appends and then
``os._exit``s without closing) and reopened: what was committed is still there and
``seq`` continues.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from klankkast.sensor.outbox import MemoryOutbox, NewFrame, Outbox, SqliteOutbox

Factory = Callable[[int], Outbox]


@pytest.fixture(params=["memory", "sqlite", "sqlite-plain"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Every implementation; "sqlite-plain" is SQLite with its fast path (the in-memory
    copy of the pending rows) switched off, as ``[node] fast_paths = false`` runs it."""
    opened: list[Outbox] = []

    def factory(max_bytes: int = 10**9) -> Outbox:
        box: Outbox
        if request.param == "memory":
            box = MemoryOutbox(max_bytes)
        else:
            mirror = request.param == "sqlite"
            path = tmp_path / "outbox.sqlite"
            box = SqliteOutbox(path, max_bytes, synchronous="NORMAL", mirror=mirror)
        opened.append(box)
        return box

    yield factory
    for box in opened:
        with contextlib.suppress(Exception):
            box.close()


def frame(kind: str = "second", stream: str = "s/n/second", size: int = 100) -> NewFrame:
    def build(seq: int) -> bytes:
        head = f"{kind}:{seq}:".encode()
        return head + b"x" * (size - len(head))

    return NewFrame(stream, kind, f"klankkast/v1/s/n/{kind}", build)


def test_append_assigns_seq_per_stream_from_zero(make: Factory) -> None:
    box = make(10**9)
    a = box.append(frame(stream="s/n/second"))
    b = box.append(frame(stream="s/n/second"))
    m = box.append(frame("minute", stream="s/n/minute"))
    assert (a.seq, b.seq, m.seq) == (0, 1, 0)
    assert b.payload.startswith(b"second:1:")
    assert box.next_seq("s/n/second") == 2
    assert box.depth() == 3
    assert box.size_bytes() == 300


def test_pending_is_oldest_first_and_honours_exclude_and_newest(make: Factory) -> None:
    box = make(10**9)
    ids = [box.append(frame()).id for _ in range(5)]
    assert [e.id for e in box.pending(3)] == ids[:3]
    assert [e.id for e in box.pending(3, exclude={ids[0], ids[2]})] == [ids[1], ids[3], ids[4]]
    assert [e.id for e in box.pending(2, newest=True)] == [ids[4], ids[3]]
    assert box.pending(0) == []


def test_ack_deletes_only_acknowledged_and_ignores_unknown(make: Factory) -> None:
    box = make(10**9)
    ids = [box.append(frame()).id for _ in range(4)]
    assert box.ack([ids[1], ids[3], 999_999]) == 2
    assert [e.id for e in box.pending(10)] == [ids[0], ids[2]]
    assert box.depth() == 2
    assert box.size_bytes() == 200
    assert box.ack([ids[1]]) == 0  # a second PUBACK (QoS 1 redelivery) changes nothing


def test_append_many_is_one_batch_with_consecutive_seq(make: Factory) -> None:
    box = make(10**9)
    entries = box.append_many([frame() for _ in range(10)])
    assert [e.seq for e in entries] == list(range(10))
    assert box.depth() == 10


def test_failed_build_rolls_back_the_batch_and_the_seq(make: Factory) -> None:
    box = make(10**9)
    box.append(frame())

    def boom(seq: int) -> bytes:
        raise ValueError("bad frame")

    with pytest.raises(ValueError):
        box.append_many([frame(), NewFrame("s/n/second", "second", "t", boom)])
    assert box.depth() == 1
    assert box.append(frame()).seq == 1


def test_full_outbox_evicts_oldest_seconds_first_and_counts(make: Factory) -> None:
    """Limit 1000 B, frames 100 B: 5 minutes + 10 seconds fill it; 3 more seconds evict
    exactly the 3 oldest seconds (minutes survive), and the evictions are counted."""
    box = make(1000)
    minutes = [box.append(frame("minute", "s/n/minute")).id for _ in range(5)]
    seconds = [box.append(frame()).id for _ in range(5)]
    assert box.evictions == 0
    newer = [box.append(frame()).id for _ in range(3)]
    assert box.evictions == 3
    left = [e.id for e in box.pending(100)]
    assert left == minutes + seconds[3:] + newer
    assert box.size_bytes() <= 1000


def test_minutes_are_evicted_only_when_no_second_is_left(make: Factory) -> None:
    box = make(500)
    minutes = [box.append(frame("minute", "s/n/minute")).id for _ in range(4)]
    box.append(frame())
    box.append(frame("minute", "s/n/minute"))  # 600 B: the only second goes
    assert [e.id for e in box.pending(100)][:4] == minutes
    assert box.evictions == 1
    box.append(frame("minute", "s/n/minute"))  # no second left: the oldest minute goes
    assert box.evictions == 2
    assert minutes[0] not in [e.id for e in box.pending(100)]


def test_sqlite_reopen_keeps_entries_seq_and_eviction_count(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = SqliteOutbox(path, 1000)
    for _ in range(12):
        box.append(frame())
    kept = [e.id for e in box.pending(100)]
    box.close()
    again = SqliteOutbox(path, 1000)
    assert [e.id for e in again.pending(100)] == kept
    assert again.evictions == 2
    assert again.append(frame()).seq == 12
    again.close()


def test_sqlite_survives_a_killed_process(tmp_path: Path) -> None:
    """A child appends 50 frames (each its own transaction), acks 10 and dies with
    os._exit (no close, no checkpoint). The parent finds 40, seq continues at 50."""
    path = tmp_path / "killed.sqlite"
    code = textwrap.dedent(
        f"""
        import os
        from klankkast.sensor.outbox import NewFrame, SqliteOutbox
        box = SqliteOutbox({str(path)!r})
        ids = [box.append(NewFrame("s/n/second", "second", "t", lambda s: b"p%d" % s)).id
               for _ in range(50)]
        box.ack(ids[:10])
        os._exit(9)
        """
    )
    rc = subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode
    assert rc == 9
    box = SqliteOutbox(path)
    assert box.depth() == 40
    assert [e.seq for e in box.pending(100)] == list(range(10, 50))
    assert box.append(NewFrame("s/n/second", "second", "t", lambda s: b"x")).seq == 50
    box.close()


# ---- end-to-end confirmation states: pending -> published -> confirmed (or requeued)


def test_published_frames_leave_pending_but_stay_stored_until_confirmed(make: Factory) -> None:
    """PUBACK of 3 of 5 frames: 2 stay pending, all 5 are stored (depth, bytes); the
    ingest then confirms seq 0-1 and 3: exactly those rows go, in any state."""
    box = make(10**9)
    entries = [box.append(frame()) for _ in range(5)]
    assert box.published([entries[0].id, entries[1].id, entries[2].id], 1_000) == 3
    assert [e.seq for e in box.pending(10)] == [3, 4]
    assert (box.depth(), box.size_bytes()) == (5, 500)
    assert box.unconfirmed() == (3, 1_000)
    assert box.published([entries[0].id], 2_000) == 0  # a second PUBACK changes nothing
    # seq 3 is still pending (in flight): a confirmation deletes it all the same
    assert box.confirm("s/n/second", [(0, 1), (3, 3)]) == 3
    assert [e.seq for e in box.pending(10)] == [4]
    assert (box.depth(), box.size_bytes()) == (2, 200)
    assert box.unconfirmed() == (1, 1_000)
    assert box.published([entries[3].id], 3_000) == 0  # its late PUBACK: row is gone
    assert box.confirm("s/n/second", [(0, 3)]) == 1  # repeated ack: only seq 2 was left
    assert box.confirm("s/n/minute", [(0, 100)]) == 0  # another stream: nothing


def test_confirm_is_per_stream(make: Factory) -> None:
    box = make(10**9)
    s = box.append(frame())
    m = box.append(frame("minute", "s/n/minute"))
    box.published([s.id, m.id], 5)
    assert box.confirm("s/n/minute", [(0, 0)]) == 1
    assert [e.id for e in box.pending(10)] == []
    assert box.unconfirmed() == (1, 5)
    assert box.depth() == 1


def test_requeue_puts_back_frames_whose_puback_is_old_enough(make: Factory) -> None:
    """PUBACKs at 10 s and 70 s; requeue at the 60-s mark moves back only the first, which
    is published again with the same seq and payload; its first-PUBACK time stays."""
    box = make(10**9)
    a, b, c = (box.append(frame()) for _ in range(3))
    box.published([a.id], 10_000)
    box.published([b.id], 70_000)
    assert box.requeue(60_000) == 1
    again = box.pending(10)
    assert [(e.id, e.seq, e.payload) for e in again] == [
        (a.id, a.seq, a.payload),
        (c.id, c.seq, c.payload),
    ]
    assert box.unconfirmed() == (2, 10_000)  # a is still unconfirmed, since 10 s
    assert box.published([a.id], 130_000) == 1
    assert box.requeue(60_000) == 0
    assert box.requeue(130_000) == 2


def test_bound_and_eviction_cover_unconfirmed_frames(make: Factory) -> None:
    """Limit 500 B, 100-B frames: 4 published (awaiting) + 1 pending fill it; a sixth
    evicts the oldest second even though it is published, and it is counted."""
    box = make(500)
    entries = [box.append(frame()) for _ in range(5)]
    box.published([e.id for e in entries[:4]], 1)
    box.append(frame())
    assert box.evictions == 1
    assert box.depth() == 5
    assert box.unconfirmed() == (3, 1)
    assert box.confirm("s/n/second", [(0, 0)]) == 0  # the evicted one is gone
    assert [e.seq for e in box.pending(10)] == [4, 5]


def test_sqlite_reopen_keeps_confirmation_states(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = SqliteOutbox(path)
    entries = [box.append(frame()) for _ in range(4)]
    box.published([entries[0].id, entries[1].id], 7_000)
    box.close()
    again = SqliteOutbox(path)
    assert [e.seq for e in again.pending(10)] == [2, 3]
    assert again.unconfirmed() == (2, 7_000)
    assert again.requeue(7_000) == 2
    assert [e.seq for e in again.pending(10)] == [0, 1, 2, 3]
    again.close()


def test_sqlite_confirmation_states_survive_a_killed_process(tmp_path: Path) -> None:
    """A child appends 20 frames, marks 15 published, gets seq 0-9 confirmed and dies
    with os._exit. The parent finds 10 frames: 5 awaiting confirmation, 5 pending."""
    path = tmp_path / "killed.sqlite"
    code = textwrap.dedent(
        f"""
        import os
        from klankkast.sensor.outbox import NewFrame, SqliteOutbox
        box = SqliteOutbox({str(path)!r})
        ids = [box.append(NewFrame("s/n/second", "second", "t", lambda s: b"p%d" % s)).id
               for _ in range(20)]
        box.published(ids[:15], 42)
        box.confirm("s/n/second", [(0, 9)])
        os._exit(9)
        """
    )
    rc = subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode
    assert rc == 9
    box = SqliteOutbox(path)
    assert box.depth() == 10
    assert box.unconfirmed() == (5, 42)
    assert [e.seq for e in box.pending(100)] == list(range(15, 20))
    assert box.requeue(42) == 5
    assert [e.seq for e in box.pending(100)] == list(range(10, 20))
    box.close()


def test_sqlite_opens_an_outbox_written_before_acks(tmp_path: Path) -> None:
    """A file with the old table (no state columns) opens; its rows are pending."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL,"
        " kind TEXT NOT NULL, topic TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL);"
        "INSERT INTO outbox(stream, kind, topic, seq, payload) VALUES ('s/n/second','second','t',0,x'00');"
    )
    db.commit()
    db.close()
    box = SqliteOutbox(path)
    assert [e.seq for e in box.pending(10)] == [0]
    assert box.published([box.pending(1)[0].id], 3) == 1
    assert box.unconfirmed() == (1, 3)
    box.close()


def test_states_hold_beyond_the_in_memory_copy(make: Factory) -> None:
    """300 frames (more than the SQLite outbox mirrors in memory): 280 published,
    20 pending; requeue and confirmation behave as with few frames."""
    box = make(10**9)
    entries = box.append_many([frame() for _ in range(300)])
    box.published([e.id for e in entries[:280]], 1)
    assert [e.seq for e in box.pending(1000)] == list(range(280, 300))
    assert box.confirm("s/n/second", [(0, 99)]) == 100
    assert box.requeue(1) == 180
    assert [e.seq for e in box.pending(1000)] == list(range(100, 300))
    box.published([e.id for e in entries[100:300]], 2)
    assert box.pending(1000) == []
    assert box.confirm("s/n/second", [(100, 299)]) == 200
    assert box.depth() == 0
    assert box.append(frame()).seq == 300
    assert [e.seq for e in box.pending(10)] == [300]
