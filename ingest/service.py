"""Wiring of the ingest: paho subscriber -> validation -> batches -> InfluxDB -> ack.

Threads and processes
---------------------
* paho's network thread reads the socket; plain QoS 0/1 PUBLISH packets are parsed
  by :mod:`klankkast.ingest._pahofast` and given to :meth:`IngestService._on_publishes`
  in runs, everything else goes through paho (:meth:`IngestService._on_message` for
  any PUBLISH it handles); both only append to a queue (never block, never touch
  InfluxDB);
* the writer thread (:meth:`IngestService._writer_loop`) cuts the queue into chunks
  that encoder processes (``[ingest] workers``, default 2; 0 = in this process)
  validate and turn into line protocol (:func:`klankkast.ingest.validate.encode_chunk`),
  and collects the results, in arrival order, into batches by size (``batch_points``)
  and age (``batch_ms``);
* the flusher thread writes each batch to InfluxDB and, only after every point of it
  got HTTP 204, acknowledges the batch's MQTT messages (paho ``manual_ack``, all
  PUBACKs of a batch in one write) in the order they arrived. A crash at any moment
  therefore loses nothing: unacknowledged messages stay in the broker's persistent
  session and are redelivered; a redelivered message has the same series and
  timestamp and overwrites itself, so nothing is duplicated either;
* with ``[ingest] acks`` on (the default), the flusher then also tells each node
  which of its frames are stored, on ``klankkast/v1/{site}/{node}/ack``
  (:mod:`klankkast.ingest.acks`: coalesced, at most one message per node per
  second, QoS 1, published with the same client). A node with ``[outbox] confirm =
  "ingest"`` deletes a frame only then, so delivery no longer depends on how well
  the broker keeps what it acknowledged. The ack topics fall under the
  subscription; what comes back on them is acknowledged and ignored.

Write failures are sorted as Telegraf's InfluxDB output sorts them: 429, 5xx and
connection errors -> keep the batch, back off (honouring ``Retry-After``) and retry,
acknowledging nothing meanwhile; 413 -> split the batch; other 4xx -> bisect to the
offending lines, drop and count them (logging each), write the rest. 401, 403 and
404 (credentials, permissions, database missing) say nothing about the data, so
they are retried like 5xx (after trying to create the layout again) rather than
dropping every point.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from klankkast.influx import (
    M_INGEST_STATS,
    RP_RAW,
    InfluxHTTP,
    PermanentWriteError,
    RetryableWriteError,
    line,
)
from klankkast.ingest._pahofast import Publish, ReadBuffer, bulk_ack
from klankkast.ingest.acks import AckCoalescer
from klankkast.ingest.batcher import Backoff, Batcher, BatchLimits
from klankkast.ingest.config import (
    CentralConfig,
    default_client_id,
    make_influx_client,
    make_mqtt_client,
    mqtt_connect,
)
from klankkast.ingest.health import HealthTracker
from klankkast.ingest.validate import Encoding, encode_chunk, rejection_payload
from klankkast.sensor import wire

__all__ = ["SUBSCRIPTION", "IngestService", "Stats", "WriteOutcome", "write_lines"]

log = logging.getLogger("klankkast.ingest")

#: The node topics, shared between the members of ``share_group``.
SUBSCRIPTION = f"{wire.TOPIC_ROOT}/+/+/#"
_UNRETRYABLE_AUTH = (401, 403, 404)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Inbound:
    mid: int
    qos: int
    topic: str
    payload: bytes
    recv_ms: int
    gen: int
    #: (site, node, kind, seq) of a frame the ingest finished with: acknowledged to the node
    frame: tuple[str, str, str, int] | None = None


@dataclass(slots=True)
class WriteOutcome:
    """What :func:`write_lines` did: points written and lines dropped (with why)."""

    written: int = 0
    dropped: int = 0
    requests: int = 0


def write_lines(
    influx: InfluxHTTP,
    lines: Sequence[str],
    rp: str | None,
    on_drop: Callable[[str, PermanentWriteError], None],
    outcome: WriteOutcome | None = None,
) -> WriteOutcome:
    """Write ``lines`` to InfluxDB, splitting on 413 and bisecting on other 4xx.

    Returns when every line was either written (204) or dropped as permanently
    invalid (``on_drop`` is called for each). :class:`RetryableWriteError` (and a
    :class:`PermanentWriteError` with status 401/403/404) propagates: the caller
    keeps the batch and retries all of it, which is safe because writes are
    idempotent (same series + timestamp overwrites).
    """
    out = outcome or WriteOutcome()
    if not lines:
        return out
    try:
        out.requests += 1
        influx.write(lines, rp=rp, precision="ms")
    except PermanentWriteError as err:  # 413 (PayloadTooLargeError) included: split alike
        if err.status in _UNRETRYABLE_AUTH:
            raise
        if len(lines) == 1:
            out.dropped += 1
            on_drop(lines[0], err)
            return out
        half = len(lines) // 2
        write_lines(influx, lines[:half], rp, on_drop, out)
        write_lines(influx, lines[half:], rp, on_drop, out)
        return out
    out.written += len(lines)
    return out


#: Messages per chunk handed to an encoder process.
_CHUNK = 500


def _watch_parent(parent_pid: int) -> None:
    """Encoder-process initializer: exit as soon as the ingest process is gone.

    A SIGKILLed ingest cannot shut its pool down, and an orphaned worker would
    otherwise wait forever on its task queue.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _frame_id(topic: str, payload: bytes) -> tuple[str, str, str, int] | None:
    """(site, node, kind, seq) of a refused ``second``/``minute`` frame, if it names one.

    A frame refused for good is acknowledged too, so the node stops sending it
    (sending it again cannot change the outcome); one without a readable seq cannot be.
    """
    try:
        site, node, kind = wire.parse_topic(topic)
        seq = json.loads(payload).get("seq") if kind in wire.FRAME_KINDS else None
    except (wire.SchemaError, ValueError, AttributeError, TypeError):
        return None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return None
    return site, node, kind, seq


class _Done:
    """An already-computed result with the ``done()``/``result()`` of a Future."""

    def __init__(self, value: list[Encoding]) -> None:
        self._value = value

    def done(self) -> bool:
        return True

    def result(self) -> list[Encoding]:
        return self._value


class Stats:
    """The ingest's own counters (written by the writer thread; read for logging)."""

    def __init__(self) -> None:
        self.messages_in = 0
        self.points_written = 0
        self.write_dropped = 0
        self.ignored = 0
        self.batches = 0
        self.retries = 0
        self.rejected: Counter[str] = Counter()
        self._latencies_ms: list[float] = []
        self.taken = 0  # taken from the queue by the writer thread
        self.acked = 0  # acknowledged by the flusher thread
        self.node_acks = 0  # ack messages published to nodes

    def add_latency(self, ms: float) -> None:
        self._latencies_ms.append(ms)

    def take_latencies(self) -> list[float]:
        out, self._latencies_ms = self._latencies_ms, []
        return out

    def fields(self, backlog: int) -> dict[str, float | int | str | bool]:
        lat = self.take_latencies()
        fields: dict[str, float | int | str | bool] = {
            "messages_in": self.messages_in,
            "points_written": self.points_written,
            "write_dropped": self.write_dropped,
            "ignored": self.ignored,
            "batches": self.batches,
            "retries": self.retries,
            "rejected": sum(self.rejected.values()),
            "backlog": backlog,
            "node_acks": self.node_acks,
        }
        if lat:
            fields["write_latency_ms_mean"] = sum(lat) / len(lat)
            fields["write_latency_ms_max"] = max(lat)
        for reason, n in self.rejected.items():
            fields[f"rejected_{reason}"] = n
        return fields


class IngestService:
    """The ingest process: construct, :meth:`start`, :meth:`run` until stopped, :meth:`stop`.

    Nothing connects in ``__init__``. ``influx`` may be injected (tests). With
    ``[ingest] workers`` > 0 the encoder processes are started with the ``spawn``
    method, which imports the program's main module again: a script that embeds the
    service must keep its own start-up under ``if __name__ == "__main__":`` (the
    ``klankkast-ingest`` command does).
    """

    def __init__(
        self,
        cfg: CentralConfig,
        *,
        client_id: str | None = None,
        influx: InfluxHTTP | None = None,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self._influx = influx
        self._clock_ms = clock_ms
        self._queue: queue.SimpleQueue[_Inbound] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._client: Any = None
        self._gen = 0
        self._connected = threading.Event()
        self.stats = Stats()
        self.health = HealthTracker()
        self._last_reject_log: dict[str, float] = {}
        self.writer_error: BaseException | None = None
        # batches handed from the writer (batching) to the flusher (InfluxDB + ack), so
        # encoding the next batch overlaps writing this one; 2 deep, then backpressure
        self._flushq: queue.Queue[tuple[dict[str | None, list[str]], list[_Inbound]] | None] = (
            queue.Queue(maxsize=2)
        )
        self._flusher: threading.Thread | None = None
        self._raw_ms: int | None = cfg.influxdb.raw_retention_days * 86_400_000
        self._pool: ProcessPoolExecutor | None = None
        # acknowledgements to the nodes (flusher thread only)
        self._acker: AckCoalescer | None = AckCoalescer() if cfg.ingest.acks else None
        #: [ingest] fast_paths: _pahofast's receive/ack paths and _fastframe's encoder
        self._fast = cfg.ingest.fast_paths

    # -- paho callbacks (network thread: never block) ---------------------------------
    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, props: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        self._gen += 1
        from paho.mqtt.subscribeoptions import SubscribeOptions

        # Subscribe on every connect: Mosquitto 2.0 does not restore shared
        # subscriptions from its persistence file after a restart.
        client.subscribe(self.cfg.mqtt.subscription, options=SubscribeOptions(qos=1))
        self._connected.set()
        log.info(
            "MQTT connected to %s (session present: %s); subscribing to %s",
            self.cfg.mqtt.url,
            getattr(flags, "session_present", "?"),
            self.cfg.mqtt.subscription,
        )

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, reason_codes: Any, props: Any
    ) -> None:
        """SUBACK: only now does the broker route frames to us (logged as "subscribed")."""
        failed = [rc for rc in reason_codes if getattr(rc, "is_failure", False)]
        if failed:
            log.error(
                "MQTT subscription to %s refused: %s (check the broker's ACL for this user)",
                self.cfg.mqtt.subscription,
                ", ".join(map(str, failed)),
            )
            return
        log.info("subscribed %s", self.cfg.mqtt.subscription)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, props: Any
    ) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT disconnected (%s); paho reconnects", reason_code)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._queue.put(_Inbound(msg.mid, msg.qos, msg.topic, msg.payload, _now_ms(), self._gen))

    def _on_publishes(self, msgs: list[Publish]) -> None:
        """The QoS 0/1 PUBLISH packets that :class:`ReadBuffer` parsed itself, in order."""
        now, gen, put = _now_ms(), self._gen, self._queue.put
        for mid, qos, topic, payload in msgs:
            put(_Inbound(mid, qos, topic, payload, now, gen))

    # -- lifecycle -------------------------------------------------------------------
    @property
    def influx(self) -> InfluxHTTP:
        if self._influx is None:
            self._influx = make_influx_client(self.cfg.influxdb)
        return self._influx

    def start(self) -> None:
        """Create the InfluxDB layout (retrying until reachable), connect MQTT, start threads."""
        self._ensure_layout()
        self.client_id = self.client_id or self.cfg.mqtt.client_id or default_client_id()
        self.health.instance = self.client_id
        client = make_mqtt_client(self.cfg.mqtt, client_id=self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        if self._fast:  # [ingest] fast_paths: paho's receive path through _pahofast
            ReadBuffer.install(client, self._on_publishes)
        # Reconnect quickly: after a broker restart, frames published before we
        # subscribe again are not queued for a shared subscription (see ingest/README.md).
        client.reconnect_delay_set(min_delay=0.1, max_delay=5)  # type: ignore[arg-type,unused-ignore]
        self._client = client
        if self.cfg.ingest.workers > 0:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                self.cfg.ingest.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_watch_parent,
                initargs=(os.getpid(),),
            )
            # start the workers now (they import the encoder), not on the first message
            try:
                n = self.cfg.ingest.workers
                for fut in [self._pool.submit(encode_chunk, [], 0) for _ in range(n)]:
                    fut.result(timeout=60)
            except Exception as err:
                log.error("encoder processes did not start (%s); encoding in-process", err)
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        self._flusher = threading.Thread(
            target=self._flusher_main, name="ingest-flusher", daemon=True
        )
        self._flusher.start()
        self._writer = threading.Thread(target=self._writer_main, name="ingest-writer", daemon=True)
        self._writer.start()
        mqtt_connect(client, self.cfg.mqtt)
        client.loop_start()

    def _ensure_layout(self) -> None:
        backoff = Backoff(self.cfg.ingest.max_backoff_s, first_s=0.5)
        while not self._stop.is_set():
            try:
                self.influx.ensure_layout(self.cfg.influxdb.raw_retention_days)
                # Frames older than the server's raw policy keeps are refused by
                # InfluxDB; reject them up front (0s = infinite: no limit).
                self._raw_ms = self.influx.retention_ms(RP_RAW)
                return
            except Exception as err:
                delay = backoff.next_wait()
                log.warning("InfluxDB layout not ready (%s); retrying in %.1f s", err, delay)
                self._stop.wait(delay)

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def run(self) -> None:
        """Block until :meth:`request_stop` (or a signal handler calling it)."""
        while not self._stop.wait(0.5):
            for thread in (self._writer, self._flusher):
                if thread is not None and not thread.is_alive():
                    return

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ordered shutdown: stop the writer (it flushes and acks what it can), disconnect."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in (self._writer, self._flusher):
            if thread is not None:
                thread.join(max(0.1, deadline - time.monotonic()))
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._influx is not None:
            self._influx.close()

    # -- writer thread ----------------------------------------------------------------
    def _writer_main(self) -> None:
        try:
            self._writer_loop()
        except BaseException as err:  # pragma: no cover - logged, process exits
            self.writer_error = err
            log.exception("ingest writer died")
            self._stop.set()

    def _flusher_main(self) -> None:
        try:
            while True:
                timeout = None
                if self._acker is not None:
                    due = self._acker.next_due_s()
                    if due is not None:
                        timeout = max(0.0, due - time.monotonic())
                try:
                    job = self._flushq.get(timeout=timeout)
                except queue.Empty:
                    self._send_node_acks()
                    continue
                if job is None:
                    self._send_node_acks(final=True)
                    return
                if not self._flush(*job):
                    return  # stopped during an outage: the rest stays unacknowledged
                self._send_node_acks()
        except BaseException as err:  # pragma: no cover - logged, process exits
            self.writer_error = err
            log.exception("ingest flusher died")
            self._stop.set()

    def _hand_over(self, job: tuple[dict[str | None, list[str]], list[_Inbound]] | None) -> bool:
        """Give a batch (or the end marker) to the flusher; False if the flusher is gone.

        Without a flusher thread (tests driving the loop directly) flush right here.
        """
        if self._flusher is None:
            return job is None or self._flush(*job)
        while True:
            try:
                self._flushq.put(job, timeout=0.5)
                return True
            except queue.Full:
                if not self._flusher.is_alive():
                    return False

    def _writer_loop(self) -> None:
        """Take, encode, merge and hand over as the :class:`Batcher` decides (its docstring
        states the rules); this loop only does the I/O."""
        ing = self.cfg.ingest
        limits = BatchLimits(
            ing.batch_points, ing.batch_ms / 1000.0, _CHUNK, 2 * max(1, ing.workers) + 1
        )
        b: Batcher[_Inbound, Any] = Batcher(
            limits, time.monotonic(), ing.stats_interval_s, ing.health_interval_s
        )
        while True:
            if self._stop.is_set():
                b.stop(self._queue.qsize())
            wait = b.wait_s(time.monotonic())
            item = None if wait is None else self._get(wait)
            while item is not None:
                self.stats.taken += 1
                if b.take(item, time.monotonic()):
                    break  # the chunk is full (or the last one while stopping)
                item = self._get(None)
            chunk = b.cut()
            if chunk:
                b.submitted(self._submit(chunk), chunk)
            while (ready := b.ready()) is not None:
                self._merge_chunk(b, *ready)
            now = time.monotonic()
            while (ready := b.closing(now)) is not None:
                self._merge_chunk(b, *ready)
            if b.batch_due(now):
                if not self._hand_over(b.batch()):
                    return  # stopped during an outage: leave the rest to redelivery
                b.handed_over(time.monotonic())
            if b.stats_tick.due(now):
                self._write_stats()
            if b.health_tick.due(now):
                self._write_health()
            if b.finished():
                self._hand_over(None)
                if self._flusher is not None:
                    self._flusher.join(30.0)
                self._write_stats()
                self._write_health()
                return

    def _get(self, wait_s: float | None) -> _Inbound | None:
        """The next queued message: waiting up to ``wait_s`` (``None`` or 0: not waiting)."""
        try:
            if wait_s:
                return self._queue.get(timeout=wait_s)
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _merge_chunk(self, b: Batcher[_Inbound, Any], fut: Any, items: list[_Inbound]) -> None:
        b.merged(items, self._merge(items, self._result(fut, items), b.points))

    def _submit(self, items: list[_Inbound]) -> Any:
        raw = [(it.topic, it.payload) for it in items]
        now_ms = self._clock_ms()
        if self._pool is not None:
            try:
                return self._pool.submit(encode_chunk, raw, now_ms, self._raw_ms, self._fast)
            except Exception as err:  # broken pool: encode here from now on
                log.error("encoder process pool unusable (%s); encoding in-process", err)
                self._pool = None
        return _Done(encode_chunk(raw, now_ms, self._raw_ms, self._fast))

    def _result(self, fut: Any, items: list[_Inbound]) -> list[Encoding]:
        try:
            return list(fut.result())
        except Exception as err:
            log.error(
                "encoder process failed (%s); encoding %d messages in-process", err, len(items)
            )
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            raw = [(it.topic, it.payload) for it in items]
            return encode_chunk(raw, self._clock_ms(), self._raw_ms, self._fast)

    def _merge(
        self,
        items: Sequence[_Inbound],
        results: Sequence[Encoding],
        points: dict[str | None, list[str]],
    ) -> int:
        """Fold encoded results into the batch: points, rejections, node health."""
        n = 0
        stats = self.stats
        observe_frame = self.health.observe_frame
        group: list[str] | None = None
        group_rp: str | None = None
        for item, res in zip(items, results, strict=True):
            if res.ok is True:
                if group is None or res.rp != group_rp:
                    group_rp = res.rp
                    group = points.setdefault(res.rp, [])
                group.append(res.line)
                n += 1
                kind, site, node, seq = res.kind, res.site, res.node, res.seq
                if kind in wire.FRAME_KINDS:
                    assert seq is not None  # a frame always has one (the wire contract)
                    observe_frame(kind, site, node, res.t, seq, item.recv_ms)
                    item.frame = (site, node, kind, seq)
                else:
                    payload = {"t": res.t, "seq": seq, "state": res.state}
                    self.health.observe(wire.Message(kind, site, node, payload), item.recv_ms)
            elif res.ok is None:
                stats.ignored += 1
            else:
                self._reject(res.reason, res.message, item)
        stats.messages_in += len(items)
        return n

    def _process(self, item: _Inbound, points: dict[str | None, list[str]]) -> int:
        """Encode and merge one message in-process (the pool-less path, used by tests)."""
        res = encode_chunk([(item.topic, item.payload)], self._clock_ms(), self._raw_ms, self._fast)
        return self._merge([item], res, points)

    def _reject(self, reason: str, message: str, item: _Inbound) -> None:
        self.stats.rejected[reason] += 1
        if self._acker is not None:
            item.frame = _frame_id(item.topic, item.payload)
        now = time.monotonic()
        last = self._last_reject_log.get(reason)
        if last is None or now - last >= 60.0:
            self._last_reject_log[reason] = now
            log.warning(
                "rejected %s from %r: %s (%d so far with this reason; logged at most once a minute)",
                reason,
                item.topic[:200],
                message[:300],
                self.stats.rejected[reason],
            )
        if self.cfg.ingest.republish_rejected and self._client is not None:
            body = rejection_payload(
                reason, item.topic, item.payload, self.cfg.ingest.rejected_payload_max
            )
            self._client.publish(self.cfg.ingest.rejected_topic, json.dumps(body), qos=1)

    def _on_drop(self, lp: str, err: PermanentWriteError) -> None:
        self.stats.write_dropped += 1
        log.error(
            "InfluxDB refused a line (HTTP %d), dropped: %s -- %s",
            err.status,
            lp[:500],
            err.body[:300],
        )

    def _flush(self, points: dict[str | None, list[str]], acks: list[_Inbound]) -> bool:
        """Write every group of the batch, then ack. False if stopped before success."""
        backoff = Backoff(self.cfg.ingest.max_backoff_s)
        pending = dict(points)
        t0 = time.monotonic()
        while pending:
            rp, lines = next(iter(pending.items()))
            try:
                out = write_lines(self.influx, lines, rp, self._on_drop)
            except (RetryableWriteError, PermanentWriteError) as err:
                self.stats.retries += 1
                wait = backoff.next_wait(getattr(err, "retry_after_s", None))
                log.warning(
                    "InfluxDB write of %d points failed (%s); retrying in %.1f s, %d messages unacknowledged",
                    len(lines),
                    err,
                    wait,
                    len(acks),
                )
                if isinstance(err, PermanentWriteError) and err.status == 404:
                    try:
                        self.influx.ensure_layout(self.cfg.influxdb.raw_retention_days)
                    except Exception as e2:
                        log.warning("cannot create the InfluxDB layout: %s", e2)
                if self._stop.wait(wait):
                    return False
                continue
            self.stats.points_written += out.written
            del pending[rp]
        self.stats.add_latency((time.monotonic() - t0) * 1000.0)
        self.stats.batches += 1
        self._ack(acks)
        self.stats.acked += len(acks)
        if self._acker is not None:
            self._acker.add([it.frame for it in acks if it.frame is not None], time.monotonic())
        return True

    def _send_node_acks(self, *, final: bool = False) -> None:
        """Publish the acknowledgements that are due (flusher thread); ``final``: wait for all.

        At most one message per node per second, so the final round may take a second.
        """
        acker, client = self._acker, self._client
        if acker is None or client is None:
            return
        deadline = time.monotonic() + 2.5 * acker.interval_s
        while True:
            for topic, payload in acker.due(time.monotonic()):
                client.publish(topic, payload, qos=1)
                self.stats.node_acks += 1
            due = acker.next_due_s()
            if not final or due is None or time.monotonic() >= deadline:
                return
            time.sleep(max(0.0, min(due, deadline) - time.monotonic()))

    def _ack(self, acks: list[_Inbound]) -> None:
        client = self._client
        if client is None:
            return
        gen = self._gen
        mids = [item.mid for item in acks if item.qos == 1 and item.gen == gen]
        if self._fast:  # [ingest] fast_paths: all PUBACKs in one write (_pahofast)
            bulk_ack(client, mids)
        else:
            for mid in mids:
                client.ack(mid, 1)
        for item in acks:
            if item.qos == 2 and item.gen == gen:
                client.ack(item.mid, item.qos)

    def backlog(self) -> int:
        """Messages received and not yet acknowledged: queued, being encoded, in batches."""
        return self._queue.qsize() + max(0, self.stats.taken - self.stats.acked)

    def _write_stats(self) -> None:
        fields = self.stats.fields(self.backlog())
        log.info(
            "stats: in=%d written=%d rejected=%d dropped=%d backlog=%d batches=%d retries=%d latency_ms=%s",
            fields["messages_in"],
            fields["points_written"],
            fields["rejected"],
            fields["write_dropped"],
            fields["backlog"],
            fields["batches"],
            fields["retries"],
            fields.get("write_latency_ms_mean", "-"),
        )
        instance = self.client_id or "ingest"
        self._write_aux([line(M_INGEST_STATS, {"instance": instance}, fields, _now_ms())])

    def _write_health(self) -> None:
        self._write_aux(self.health.snapshot(_now_ms()))

    def _write_aux(self, lines: list[str]) -> None:
        """Write metrics/health lines once; on failure log and move on (they are not frames)."""
        if not lines:
            return
        try:
            write_lines(self.influx, lines, None, self._on_drop)
        except Exception as err:
            log.warning("could not write %d metric/health lines: %s", len(lines), err)
