"""The writer loop's decisions (klankkast.ingest.batcher): chunks, arrival order, batches
by size and age, the waits, and shutdown. Pure: the clock is a number passed in, the
encoder futures are fakes whose ``done()`` the test sets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from klankkast.ingest.batcher import IDLE_MAX_S, POLL_S, Backoff, Batcher, BatchLimits, Ticker


@dataclass
class FakeFuture:
    is_done: bool = False

    def done(self) -> bool:
        return self.is_done


def make(
    batch_points: int = 100,
    batch_s: float = 1.0,
    chunk_items: int = 3,
    max_pending: int = 2,
    stats_s: float = 10.0,
    health_s: float = 60.0,
) -> Batcher[str, FakeFuture]:
    return Batcher(
        BatchLimits(batch_points, batch_s, chunk_items, max_pending), 0.0, stats_s, health_s
    )


def take_all(b: Batcher[str, FakeFuture], items: list[str], now: float) -> list[list[str]]:
    """Feed ``items`` as the loop does and return the chunks cut (each then in flight)."""
    chunks = []
    for it in items:
        if b.take(it, now):
            chunks.append(b.cut())
    last = b.cut()
    if last:
        chunks.append(last)
    return chunks


def merge_all(b: Batcher[str, FakeFuture], now: float, points_per_item: int = 1) -> list[str]:
    """Merge what the batcher releases (ready, then closing), as the loop does."""
    merged: list[str] = []
    for release in (b.ready, lambda: b.closing(now)):
        while (r := release()) is not None:
            _, items = r
            b.points.setdefault(None, []).extend(f"lp {i}" for i in items)
            b.merged(items, points_per_item * len(items))
            merged += items
    return merged


def test_chunks_are_cut_at_chunk_items_and_at_the_end_of_the_queue() -> None:
    b = make(chunk_items=3)
    assert take_all(b, list("abcdefg"), 0.0) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert b.cut() == []


def test_acks_keep_arrival_order_when_a_later_chunk_is_encoded_first() -> None:
    """Chunk 2 finishes before chunk 1: nothing is merged until chunk 1 is done, then both,
    in order; the batch's acknowledgements are a, b, c, d."""
    b = make(chunk_items=2, max_pending=5)
    first, second = FakeFuture(), FakeFuture()
    c1, c2 = take_all(b, ["a", "b", "c", "d"], 0.0)
    b.submitted(first, c1)
    b.submitted(second, c2)
    second.is_done = True
    assert b.ready() is None
    first.is_done = True
    assert merge_all(b, 0.1) == ["a", "b", "c", "d"]
    assert b.batch()[1] == ["a", "b", "c", "d"]


def test_too_many_chunks_in_flight_wait_for_the_oldest() -> None:
    """max_pending = 2: with a third chunk in flight the oldest is merged, done or not."""
    b = make(chunk_items=1, max_pending=2)
    for c in take_all(b, ["a", "b", "c"], 0.0):
        b.submitted(FakeFuture(), c)
    r = b.ready()
    assert r is not None and r[1] == ["a"]
    assert b.ready() is None  # two left: within the limit


def test_batch_by_size() -> None:
    """batch_points = 4: three one-point messages are not a batch, four are."""
    b = make(batch_points=4, batch_s=1.0, chunk_items=10)
    (c,) = take_all(b, ["a", "b", "c"], 0.0)
    b.submitted(FakeFuture(True), c)
    merge_all(b, 0.1)
    assert not b.batch_due(0.1)
    (c,) = take_all(b, ["d"], 0.1)
    b.submitted(FakeFuture(True), c)
    merge_all(b, 0.2)
    assert b.batch_due(0.2)
    points, acks = b.batch()
    assert acks == ["a", "b", "c", "d"] and len(points[None]) == 4


def test_batch_by_age_takes_in_everything_in_flight() -> None:
    """batch_s = 1: the timer starts with the first message (t = 5); at 5.99 s nothing is
    due, at 6.0 s the chunk still being encoded is merged into the batch and it is due."""
    b = make(batch_points=1000, batch_s=1.0)
    (c,) = take_all(b, ["a"], 5.0)
    b.submitted(FakeFuture(False), c)
    assert merge_all(b, 5.99) == [] and not b.batch_due(5.99)
    assert merge_all(b, 6.0) == ["a"]
    assert b.batch_due(6.0)


def test_handing_over_opens_a_new_batch_with_its_own_timer() -> None:
    b = make(batch_s=1.0)
    (c,) = take_all(b, ["a"], 0.0)
    b.submitted(FakeFuture(True), c)
    merge_all(b, 1.0)
    assert b.batch_due(1.0)
    b.handed_over(1.5)
    assert b.batch() == ({}, []) and b.n_points == 0 and not b.batch_due(1.5)
    (c,) = take_all(b, ["b"], 2.0)  # nothing in flight: the new batch's timer starts here
    b.submitted(FakeFuture(True), c)
    merge_all(b, 2.0)
    assert not b.batch_due(2.99) and b.batch_due(3.0)


def test_a_message_arriving_while_nothing_is_in_flight_starts_the_timer() -> None:
    b = make(batch_s=1.0)
    b.handed_over(0.0)
    take_all(b, ["a"], 7.0)
    assert b.started == 7.0


def test_waits() -> None:
    """Idle: until the next tick, at most 0.2 s; chunks in flight: poll; batch open: until
    the batch is due."""
    b = make(batch_s=1.0, stats_s=0.05, health_s=60.0)
    assert b.wait_s(0.0) == pytest.approx(0.05)
    assert make(stats_s=10.0).wait_s(0.0) == IDLE_MAX_S
    (c,) = take_all(b, ["a"], 0.0)
    b.submitted(FakeFuture(True), c)
    assert b.wait_s(0.0) == POLL_S
    merge_all(b, 0.3)
    assert b.wait_s(0.3) == pytest.approx(0.7)
    assert b.wait_s(2.0) == 0.0


def test_ticker_fires_once_per_interval() -> None:
    t = Ticker(10.0, 0.0)
    assert not t.due(9.9)
    assert t.due(10.0) and not t.due(10.1)
    assert t.due(20.5) and t.next == pytest.approx(30.5)


def test_stop_takes_in_exactly_what_was_queued_then_finishes() -> None:
    """Stop with 2 messages queued: both are taken (without waiting), the last one cuts the
    chunk, nothing more is taken, the last batch is due at once, and after it is handed
    over the batcher is finished."""
    b = make(batch_points=1000, batch_s=60.0, chunk_items=100)
    b.stop(queued=2)
    b.stop(queued=50)  # a later stop does not move the mark
    assert b.wait_s(0.0) == 0.0
    assert not b.take("a", 0.0)
    assert b.take("b", 0.0)  # the last queued one: cut
    assert b.wait_s(0.0) is None
    b.submitted(FakeFuture(False), b.cut())
    assert not b.finished()
    assert merge_all(b, 0.0) == ["a", "b"]  # stopping: merged although not done
    assert b.batch_due(0.0) and not b.finished()
    b.handed_over(0.0)
    assert b.finished()


def test_stop_with_an_empty_queue_finishes_at_once() -> None:
    b = make()
    b.stop(queued=0)
    assert b.wait_s(0.0) is None and b.finished() and not b.batch_due(0.0)


def test_backoff_doubles_up_to_the_maximum() -> None:
    """0.25, 0.5, 1, 2, then 2 s with max_backoff_s = 2."""
    b = Backoff(2.0)
    assert [b.next_wait() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_backoff_honours_retry_after_clamped_and_keeps_doubling() -> None:
    """A Retry-After of 7 s is waited as such (not capped by max_backoff_s); a negative
    one is 0, two hours are one hour; the doubling underneath went on meanwhile."""
    b = Backoff(30.0)
    assert b.next_wait(7.0) == 7.0
    assert b.next_wait(-3.0) == 0.0
    assert b.next_wait(7200.0) == 3600.0
    assert b.next_wait() == 2.0  # 0.25 -> 0.5 -> 1 -> 2


def test_backoff_below_the_first_wait() -> None:
    """max_backoff_s may be 0.1 s: the first wait is still 0.25 s, then 0.1 s."""
    b = Backoff(0.1)
    assert [b.next_wait() for _ in range(3)] == [0.25, 0.1, 0.1]
