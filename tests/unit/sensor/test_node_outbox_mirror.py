"""SqliteOutbox answers pending() from memory while small: same answers as the database.

A random walk of appends, acks and pending queries (oldest and newest first, with
exclusions), crossing the in-memory limit, emptying the outbox and evicting, is
checked against a second SqliteOutbox whose in-memory copy is disabled, and against
a fresh reopen of the file.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from klankkast.sensor import outbox as ob
from klankkast.sensor.outbox import NewFrame, SqliteOutbox


def _frame(kind: str, size: int) -> NewFrame:
    return NewFrame(f"s/n/{kind}", kind, f"t/{kind}", lambda seq: b"x" * size + b"%d" % seq)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pending_from_memory_equals_pending_from_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(ob, "_MIRROR_MAX", 40)
    rng = random.Random(seed)
    limit = 40_000
    a = SqliteOutbox(tmp_path / "a.sqlite", limit, synchronous="OFF")
    b = SqliteOutbox(tmp_path / "b.sqlite", limit, synchronous="OFF")
    b._mirror = None  # always the database
    b_ack = b.ack

    def ack_b(ids: list[int]) -> int:
        n = b_ack(ids)
        b._mirror = None
        return n

    used_memory = 0
    for _ in range(1500):
        op = rng.random()
        if op < 0.55:
            kind = "second" if rng.random() < 0.9 else "minute"
            frames = [_frame(kind, rng.randint(100, 1500)) for _ in range(rng.choice([1, 1, 2]))]
            ea, eb = a.append_many(frames), b.append_many(frames)
            assert [(e.seq, e.payload) for e in ea] == [(e.seq, e.payload) for e in eb]
        elif op < 0.75:
            rows = a.pending(1000)
            if rows:
                pick = rng.sample(rows, rng.randint(1, min(5, len(rows))))
                ids = [e.id for e in pick]
                assert a.ack(ids) == ack_b(ids)
        else:
            lim = rng.randint(1, 30)
            newest = rng.random() < 0.3
            every = a.pending(1000)
            ex = {e.id for e in every if rng.random() < 0.3}
            used_memory += a._mirror is not None
            got = a.pending(lim, ex, newest=newest)
            want = b.pending(lim, ex, newest=newest)
            assert [(e.id, e.seq, e.payload) for e in got] == [
                (e.id, e.seq, e.payload) for e in want
            ]
        assert a.depth() == b.depth() and a.size_bytes() == b.size_bytes()
        assert a.evictions == b.evictions
        if rng.random() < 0.006:  # drain everything now and then
            ids = [e.id for e in a.pending(10_000)]
            a.ack(ids)
            ack_b(ids)
            assert a.depth() == 0 and a._mirror is not None
    assert used_memory > 0
    ids = [e.id for e in a.pending(10_000)]
    a.ack(ids)
    ack_b(ids)
    assert a._mirror is not None
    for _ in range(40):  # over the bound from the empty state: evictions while small
        frames = [_frame("second", 1500)]
        a.append_many(frames)
        b.append_many(frames)
    assert a.evictions > 0 and a.evictions == b.evictions
    for newest in (False, True):
        assert [e.id for e in a.pending(100, newest=newest)] == [
            e.id for e in b.pending(100, newest=newest)
        ]
    final = [(e.id, e.payload) for e in a.pending(10_000)]
    a.close()
    b.close()
    again = SqliteOutbox(tmp_path / "a.sqlite", limit, synchronous="OFF")
    assert [(e.id, e.payload) for e in again.pending(10_000)] == final
    again.close()
