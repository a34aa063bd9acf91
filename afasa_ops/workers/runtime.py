"""The JetStream worker runtime.

One durable pull consumer per worker, created or updated explicitly; explicit acks; retries
with nak(delay=) on a backoff schedule; in_progress() heartbeats while a job runs; at most
`concurrency` jobs in flight; on the last delivery (or an unparseable body, or a permanent
error) the job is marked failed and the message is republished to afasa.dlq.<subject> and
terminated. A dependency outage (database or storage not answering) is not a job failure: the
worker stops fetching and holds its in-flight messages until the dependency is back.
SIGTERM/SIGINT stop fetching and give in-flight jobs `grace_s` to finish; then the rest are
abandoned cleanly (statements cancelled, rows released, messages handed back) and the process
exits; a second signal exits at once. The same process relays the transactional outbox to
JetStream and reconciles jobs the stream no longer carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from afasa_ops.errors import AfasaOpsError
from afasa_ops.infra import nats as natsdrv
from afasa_ops.platform import outbox
from afasa_ops.platform.availability import DATABASE, one_line, outage_of
from afasa_ops.platform.events import STREAM_SUBJECTS, Envelope, EnvelopeError, dlq_subject
from afasa_ops.redact import redactor
from afasa_ops.workers.dependencies import Dependencies, Probe, database_probe
from afasa_ops.workers.outbox_wakeup import OutboxWakeup, listen_conninfo

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger("afasa_ops.worker")


class PermanentError(Exception):
    """Retrying cannot help (the job is not visible to its tenant, its data is invalid)."""


class Abandoned(Exception):
    """Raised in a job's thread after shutdown gave up on it: no upload, no commit after this."""


# A second SIGTERM/SIGINT exits at once with 128 + the signal number, as shells report it.
EXIT_SECOND_SIGNAL_BASE = 128


@dataclass(frozen=True)
class Job:
    envelope: Envelope
    subject: str
    deliveries: int
    last_attempt: bool
    # True when this attempt follows one interrupted by an outage (same delivery, not counted).
    resumed: bool = False

    @property
    def log_extra(self) -> dict[str, Any]:
        return {
            "tenant_id": self.envelope.tenant_id,
            "event_id": self.envelope.event_id,
            "correlation_id": self.envelope.correlation_id,
            "subject": self.subject,
            "deliveries": self.deliveries,
        }


Handler = Callable[[Job], Awaitable[None]]
FailureHook = Callable[[Job, str], Awaitable[None]]
AbandonHook = Callable[[Job], None]
# reconcile(live_since, max_attempts) -> (re-announced, failed): runs in a thread.
ReconcileHook = Callable[[datetime | None, int], tuple[int, int]]


@dataclass
class WorkerSpec:
    name: str
    subject: str
    handle: Handler
    # A failed attempt that will be retried (record the error), and a final failure.
    on_retry: FailureHook | None = None
    on_dead: FailureHook | None = None
    # Shutdown gave up on the job: put its row back as it was before the attempt (blocking).
    on_abandon: AbandonHook | None = None
    # Make the database agree with the stream: jobs left queued with no live message.
    reconcile: ReconcileHook | None = None
    # Dependencies besides the database, by name ("storage"): a blocking check.
    probes: dict[str, Probe] = field(default_factory=dict)


@dataclass
class RuntimeOptions:
    nats_url: str
    stream: str = "AFASA"
    ack_wait_s: float = 30.0
    max_deliver: int = 5
    backoff_s: list[float] = field(default_factory=lambda: [1.0, 5.0, 30.0, 120.0])
    grace_s: float = 30.0
    concurrency: int = 2
    relay_interval_s: float = 0.5
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = 9102  # None: no health server (tests, benchmarks)
    update_stream: bool = False
    fetch_timeout_s: float = 1.0
    # With no message for this long, ask the server whether the consumer has pending work:
    # pull subscriptions can stall after a server restart (nats.py #504).
    stall_check_s: float = 5.0
    # Reconciliation sweep: how often (0: never), and how long a job's row must be untouched.
    reconcile_interval_s: float = 60.0
    reconcile_after_s: float = 300.0

    def backoff(self, deliveries: int) -> float:
        if not self.backoff_s:
            return 0.0
        return self.backoff_s[min(max(deliveries, 1) - 1, len(self.backoff_s) - 1)]


class Metrics:
    def __init__(self, worker: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "afasa_worker_jobs_total",
            "Jobs by outcome.",
            ["worker", "outcome"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "afasa_worker_job_seconds", "Job duration.", ["worker"], registry=self.registry
        )
        self.inflight = Gauge(
            "afasa_worker_inflight", "Jobs in flight.", ["worker"], registry=self.registry
        )
        self.connected = Gauge(
            "afasa_worker_nats_connected",
            "1 while connected to NATS.",
            ["worker"],
            registry=self.registry,
        )
        self.relayed = Counter(
            "afasa_outbox_published_total",
            "Outbox events published.",
            ["worker"],
            registry=self.registry,
        )
        self.resubscribes = Counter(
            "afasa_worker_resubscribes_total",
            "Pull subscription rebinds.",
            ["worker"],
            registry=self.registry,
        )
        self.worker = worker

    def job(self, outcome: str) -> None:
        self.jobs.labels(self.worker, outcome).inc()


class Runtime:
    def __init__(
        self, spec: WorkerSpec | None, options: RuntimeOptions, engine: Engine, name: str = ""
    ) -> None:
        self.spec = spec
        self.opts = options
        self.engine = engine
        self.name = name or (spec.name if spec else "worker")
        self.metrics = Metrics(self.name)
        self.stopping = asyncio.Event()
        self._closing = asyncio.Event()  # in-flight work is over: the relay's last sweep
        self.abandoning = threading.Event()  # grace is over: job threads must not go on
        self._stop_at: float | None = None
        self.deps = Dependencies(
            self.name, {DATABASE: database_probe(engine), **(spec.probes if spec else {})}
        )
        self._checked_out: set[Any] = set()
        self._track_connections()
        self.conn: natsdrv.NatsConnection | None = None
        self._psub: Any = None
        self._advisory_sub: Any = None
        self._rebind = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(max_workers=max(options.concurrency, 1) + 2)
        self._health: Any = None
        self.health_port: int | None = None
        self.stream_report: natsdrv.StreamReport | None = None

    @property
    def durable(self) -> str:
        return f"afasa-{self.name}"

    def check_abandoned(self) -> None:
        """Called by job threads before a step with effects (an upload): after the grace
        deadline nothing more may happen for an abandoned job."""
        if self.abandoning.is_set():
            raise Abandoned("shutdown gave up on this job")

    def _track_connections(self) -> None:
        """Remember the DBAPI connections jobs hold, to cancel their statements at shutdown."""
        from sqlalchemy import Engine, event

        if not isinstance(self.engine, Engine):
            return
        lock = threading.Lock()

        def checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            with lock:
                self._checked_out.add(dbapi_conn)

        def checkin(dbapi_conn: Any, _record: Any) -> None:
            with lock:
                self._checked_out.discard(dbapi_conn)

        event.listen(self.engine, "checkout", checkout)
        event.listen(self.engine, "checkin", checkin)

    def _cancel_statements(self) -> None:
        """Cancel every statement in progress on this engine, so the jobs' transactions roll
        back. cancel_safe() polls without holding the GIL and gives up after its timeout (the
        plain cancel() blocks the whole process on a hung server)."""
        for dbapi_conn in list(self._checked_out):
            cancel = getattr(dbapi_conn, "cancel_safe", None)
            if cancel is not None:
                threading.Thread(
                    target=_quietly, args=(lambda c=cancel: c(timeout=2.0),), daemon=True
                ).start()

    # --- plumbing ------------------------------------------------------------------------

    async def in_thread(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run blocking work (SQL, HTTP, rendering) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kw))

    def status(self) -> dict[str, Any]:
        connected = bool(self.conn and self.conn.nc.is_connected)
        return {
            "ok": connected and not self.stopping.is_set(),
            "worker": self.name,
            "nats_connected": connected,
            "inflight": len(self._inflight),
            "stopping": self.stopping.is_set(),
        }

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Not available off the main thread (embedded runtimes): they call request_stop.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            self.request_stop(sig.name)
            return
        # The operator insists: no more grace. Messages in flight are redelivered after
        # ack_wait; rows left processing are picked up by that redelivery.
        log.warning(
            "second %s: exiting now with %s job(s) in flight",
            sig.name,
            len(self._inflight),
            extra={"worker": self.name},
        )
        hard_exit(EXIT_SECOND_SIGNAL_BASE + int(sig))

    def request_stop(self, why: str = "requested") -> None:
        if not self.stopping.is_set():
            log.info("stopping: %s", why, extra={"worker": self.name})
            self._stop_at = time.monotonic()
            self.stopping.set()

    async def connect(self) -> None:
        async def reconnected() -> None:
            self.metrics.connected.labels(self.name).set(1)
            self._rebind = True  # do not trust the old pull subscription

        async def disconnected() -> None:
            self.metrics.connected.labels(self.name).set(0)

        conn = await natsdrv.connect(
            self.opts.nats_url,
            name=f"afasa-ops-{self.name}",
            on_reconnected=reconnected,
            on_disconnected=disconnected,
        )
        try:
            self.stream_report = await natsdrv.ensure_stream(
                conn.js,
                natsdrv.stream_config(self.opts.stream, STREAM_SUBJECTS),
                update=self.opts.update_stream,
            )
        except Exception:
            await conn.close()
            raise
        self.conn = conn
        self.metrics.connected.labels(self.name).set(1)
        if not self.stream_report.ok:
            log.warning(
                "stream %s exists with another config (%s); left as is",
                self.opts.stream,
                self.stream_report.differences,
                extra={"worker": self.name},
            )

    async def _connect_until_ok(self) -> bool:
        """NATS may start after the worker (compose, restarts): keep trying until stopped.
        The attempt races the stop event, so SIGTERM is honoured while NATS is away."""
        delay = 0.5
        while not self.stopping.is_set():
            attempt = asyncio.create_task(self.connect())
            stop = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait({attempt, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if attempt not in done:
                attempt.cancel()
                await asyncio.gather(attempt, return_exceptions=True)
                return False
            try:
                attempt.result()
                return True
            except AfasaOpsError as exc:
                log.warning("%s; retrying in %ss", exc, delay, extra={"worker": self.name})
                await self._sleep(delay)
                delay = min(delay * 2, 10.0)
        return False

    async def bind(self) -> None:
        """Ensure the durable consumer (explicitly) and bind a fresh pull subscription."""
        assert self.conn is not None and self.spec is not None
        js = self.conn.js
        if self._psub is not None:
            # The old subscription may already be gone with the connection.
            with contextlib.suppress(Exception):
                await self._psub.unsubscribe()
            self._psub = None
        await natsdrv.ensure_stream(
            js, natsdrv.stream_config(self.opts.stream, STREAM_SUBJECTS), update=False
        )
        action = await natsdrv.ensure_consumer(
            js,
            self.opts.stream,
            natsdrv.consumer_config(
                self.durable,
                self.spec.subject,
                ack_wait_s=self.opts.ack_wait_s,
                max_deliver=self.opts.max_deliver,
                max_ack_pending=max(self.opts.concurrency * 4, 64),
            ),
        )
        self._psub = await js.pull_subscribe_bind(durable=self.durable, stream=self.opts.stream)
        self._rebind = False
        log.info("consumer %s %s", self.durable, action, extra={"worker": self.name})

    # --- the consume loop -----------------------------------------------------------------

    async def run(self) -> int:
        """Run until stopped; returns the process exit code (0 after a graceful stop)."""
        self._install_signals()
        self._start_health()
        if not await self._connect_until_ok():
            await self.close()
            return 0
        relay = asyncio.create_task(self.relay_loop())
        sweeper = asyncio.create_task(self.reconcile_loop())
        try:
            if self.spec is not None:
                await self._consume()
            else:
                await self.stopping.wait()
        finally:
            # The grace counts from the signal, not from when the fetch loop noticed it.
            stop_deadline = (self._stop_at or time.monotonic()) + self.opts.grace_s
            sweeper.cancel()
            await self._drain_inflight(stop_deadline)
            self._closing.set()
            # The relay ends its sweep, unless the database hangs under it: then it is cut.
            await asyncio.wait({relay}, timeout=max(stop_deadline + 0.5 - time.monotonic(), 0.2))
            relay_ok = relay.done()
            relay.cancel()
            await asyncio.gather(relay, sweeper, return_exceptions=True)
            if relay_ok:
                await self._last_relay(stop_deadline + 0.5)
            await self.close()
        return 0

    async def _last_relay(self, deadline: float) -> None:
        """Events written by the last jobs (ready, completed) go out before the exit."""
        if self.conn is None or not self.conn.nc.is_connected or self.deps.is_down(DATABASE):
            return
        try:
            sent = await asyncio.wait_for(
                self.relay_once(), timeout=max(deadline - time.monotonic(), 0.3)
            )
        except Exception as exc:
            log.warning(
                "last outbox relay before exit: %s; the next relay sends the rest",
                one_line(exc) if not isinstance(exc, TimeoutError) else "timed out",
                extra={"worker": self.name},
            )
            return
        if sent:
            log.info("relayed %s event(s) before exit", sent, extra={"worker": self.name})

    async def _consume(self) -> None:
        from nats.errors import TimeoutError as NatsTimeout

        await self._bind_until_ok()
        await self._watch_exhausted()
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            if self._rebind:
                self.metrics.resubscribes.labels(self.name).inc()
                await self._bind_until_ok()
            if self.deps.is_down():
                # Nothing new while a dependency is out: what we fetched would only wait too.
                await self._until(self.deps.wait_all_up())
                continue
            free = self.opts.concurrency - len(self._inflight)
            if free <= 0:
                await asyncio.wait(self._inflight, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                msgs = await self._psub.fetch(free, timeout=self.opts.fetch_timeout_s)
            except (TimeoutError, NatsTimeout):
                if time.monotonic() - idle_since > self.opts.stall_check_s:
                    idle_since = time.monotonic()
                    await self._check_stall()
                continue
            except Exception as exc:  # disconnected, closed, server gone: rebind when back
                log.warning("fetch failed: %s", exc, extra={"worker": self.name})
                self._rebind = True
                await self._sleep(0.5)
                continue
            idle_since = time.monotonic()
            for msg in msgs:
                task = asyncio.create_task(self._handle(msg))
                self._inflight.add(task)
                self.metrics.inflight.labels(self.name).set(len(self._inflight))
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self.metrics.inflight.labels(self.name).set(len(self._inflight))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def _until(self, aw: Awaitable[None], stop: asyncio.Event | None = None) -> bool:
        """Await `aw` unless `stop` (default: stopping) is set first; True when aw finished."""
        stop = stop or self.stopping
        work = asyncio.ensure_future(aw)
        halt = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({work, halt}, return_when=asyncio.FIRST_COMPLETED)
        halt.cancel()
        if work not in done:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            return False
        return True

    async def _through_outages(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Run make() until it gets past any outage: waits for the dependency, then again."""
        while True:
            try:
                return await make()
            except Exception as exc:
                dep = outage_of(exc)
                if dep is None:
                    raise
                self.deps.report(dep, exc)
                await self.deps.wait_up(dep)

    async def _bind_until_ok(self) -> None:
        delay = 0.2
        while not self.stopping.is_set():
            try:
                await self.bind()
                return
            except Exception as exc:
                log.warning("binding consumer failed: %s", exc, extra={"worker": self.name})
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _check_stall(self) -> None:
        """Nothing fetched for a while: if the server holds work for us, rebind."""
        assert self.conn is not None
        try:
            info = await self.conn.js.consumer_info(self.opts.stream, self.durable, timeout=2)
        except Exception as exc:
            log.warning("consumer_info failed: %s", exc, extra={"worker": self.name})
            self._rebind = True
            return
        if (info.num_pending or 0) > 0 and not self._inflight:
            log.warning(
                "consumer has %s pending but fetch got nothing: rebinding",
                info.num_pending,
                extra={"worker": self.name},
            )
            self._rebind = True

    async def _heartbeat(self, msg: Any) -> None:
        every = max(self.opts.ack_wait_s / 3, 0.2)
        while True:
            await asyncio.sleep(every)
            try:
                await msg.in_progress()
            except Exception as exc:  # disconnected: the job goes on; it is idempotent
                log.debug("in_progress failed: %s", exc)

    async def _handle(self, msg: Any) -> None:
        assert self.spec is not None
        deliveries = int(msg.metadata.num_delivered)
        try:
            envelope = Envelope.from_bytes(msg.data)
        except EnvelopeError as exc:
            await self._dead_letter(msg, None, f"unparseable event: {exc}", deliveries)
            return
        job = Job(envelope, msg.subject, deliveries, deliveries >= self.opts.max_deliver)
        beat = asyncio.create_task(self._heartbeat(msg))
        try:
            await self._attempt(job, msg)
        except asyncio.CancelledError:
            # Shutdown ran out of grace: put the row back, hand the message to another worker.
            await self._abandon(job, msg)
            raise
        finally:
            beat.cancel()

    async def _attempt(self, job: Job, msg: Any) -> None:
        assert self.spec is not None
        started = time.monotonic()
        while True:
            try:
                await self.spec.handle(job)
            except PermanentError as exc:
                await self._fail(job, msg, str(exc))
            except Exception as exc:
                dep = outage_of(exc)
                if dep is not None:
                    # Not the job's fault: hold the message (heartbeats go on), spend nothing.
                    self.deps.report(dep, exc)
                    await self.deps.wait_up(dep)
                    job = replace(job, resumed=True)
                    continue
                await self._retry_or_fail(job, msg, redactor.redact(f"{type(exc).__name__}: {exc}"))
            else:
                await self._ack(msg, job)
                self.metrics.job("ok")
                self.metrics.seconds.labels(self.name).observe(time.monotonic() - started)
                log.info("job done", extra=job.log_extra)
            return

    async def _retry_or_fail(self, job: Job, msg: Any, error: str) -> None:
        assert self.spec is not None
        if job.last_attempt:
            await self._fail(job, msg, error)
            return
        delay = self.opts.backoff(job.deliveries)
        log.warning(
            "job failed (delivery %s of %s), retrying in %ss: %s",
            job.deliveries,
            self.opts.max_deliver,
            delay,
            error,
            extra=job.log_extra,
        )
        on_retry = self.spec.on_retry
        if on_retry is not None:
            await self._quiet(self._through_outages(lambda: on_retry(job, error)))
        await self._quiet(msg.nak(delay=delay))
        self.metrics.job("retried")

    async def _abandon(self, job: Job, msg: Any) -> None:
        assert self.spec is not None
        log.warning("job abandoned at the grace deadline: handed back", extra=job.log_extra)
        on_abandon = self.spec.on_abandon
        if on_abandon is not None and not self.deps.is_down(DATABASE):
            try:
                await asyncio.wait_for(self._in_fresh_thread(on_abandon, job), timeout=ABANDON_S)
            except Exception as exc:
                reason = "timed out" if isinstance(exc, TimeoutError) else one_line(exc)
                log.warning("releasing the job's row: %s", reason, extra=job.log_extra)
        await self._quiet(msg.nak())
        self.metrics.job("abandoned")

    async def _in_fresh_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The job pool's threads may all be stuck on what is being abandoned."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def run() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

        threading.Thread(target=run, daemon=True).start()
        return await future

    async def _ack(self, msg: Any, job: Job) -> None:
        try:
            await msg.ack_sync(timeout=5)
        except Exception as exc:
            # The effect is committed; a redelivery finds it done and acks then.
            log.warning("ack not confirmed: %s", exc, extra=job.log_extra)

    async def _quiet(self, aw: Awaitable[Any]) -> None:
        try:
            await aw
        except Exception as exc:
            log.warning("%s", exc, extra={"worker": self.name})

    async def _fail(self, job: Job, msg: Any, error: str) -> None:
        assert self.spec is not None
        log.error("job failed for good: %s", error, extra=job.log_extra)
        on_dead = self.spec.on_dead
        if on_dead is not None:
            # The final state is written first and for sure: through an outage if need be.
            await self._quiet(self._through_outages(lambda: on_dead(job, error)))
        await self._dead_letter(msg, job, error, job.deliveries)

    async def _dead_letter(self, msg: Any, job: Job | None, error: str, deliveries: int) -> None:
        seq = int(msg.metadata.sequence.stream)
        if await self._publish_dlq(msg.subject, msg.data, seq, error, deliveries, job):
            await self._quiet(msg.term())

    async def _publish_dlq(
        self, subject: str, data: bytes, seq: int, error: str, deliveries: int, job: Job | None
    ) -> bool:
        assert self.conn is not None
        extra = job.log_extra if job else {"worker": self.name, "subject": subject}
        try:
            await natsdrv.publish(
                self.conn.js,
                dlq_subject(subject),
                data,
                # One dead letter per stream message, however many workers report it.
                msg_id=f"dlq:{self.opts.stream}:{seq}",
                headers={
                    "Afasa-Error": error[:1000].replace("\n", " "),
                    "Afasa-Deliveries": str(deliveries),
                    "Afasa-Original-Subject": subject,
                    "Afasa-Stream-Seq": str(seq),
                },
            )
        except Exception as exc:
            log.error("dead-letter publish failed: %s", exc, extra=extra)
            self.metrics.job("dlq_failed")
            return False
        self.metrics.job("dead_lettered")
        log.error("dead-lettered to %s", dlq_subject(subject), extra=extra)
        return True

    async def _watch_exhausted(self) -> None:
        """The server gives up on its own when the last delivery was never acked (the worker
        holding it died): it announces that as an advisory. Fail and dead-letter the job then,
        so it never stays `processing` for ever."""
        assert self.conn is not None
        subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.opts.stream}.{self.durable}"
        self._advisory_sub = await self.conn.nc.subscribe(subject, cb=self._on_exhausted)

    async def _on_exhausted(self, advisory: Any) -> None:
        assert self.conn is not None and self.spec is not None
        try:
            doc = json.loads(advisory.data)
            seq = int(doc["stream_seq"])
            deliveries = int(doc.get("deliveries") or self.opts.max_deliver)
            raw = await self.conn.js.get_msg(self.opts.stream, seq)
        except Exception as exc:
            log.warning("max-deliveries advisory not handled: %s", exc, extra={"worker": self.name})
            return
        error = f"no ack after {deliveries} deliveries (a worker was lost mid-job)"
        job: Job | None = None
        with contextlib.suppress(EnvelopeError):
            envelope = Envelope.from_bytes(raw.data or b"")
            job = Job(envelope, raw.subject or self.spec.subject, deliveries, True)
        on_dead = self.spec.on_dead
        if job is not None and on_dead is not None:
            log.error("job failed for good: %s", error, extra=job.log_extra)
            failed = job
            await self._quiet(self._through_outages(lambda: on_dead(failed, error)))
        await self._publish_dlq(
            raw.subject or self.spec.subject, raw.data or b"", seq, error, deliveries, job
        )

    async def _drain_inflight(self, deadline: float) -> None:
        if not self._inflight:
            return
        left = max(deadline - time.monotonic(), 0.0)
        log.info(
            "waiting up to %.1fs for %s job(s)",
            left,
            len(self._inflight),
            extra={"worker": self.name},
        )
        _, pending = await asyncio.wait(set(self._inflight), timeout=left or None)
        if not pending:
            return
        log.warning(
            "grace of %ss is over: abandoning %s job(s)",
            self.opts.grace_s,
            len(pending),
            extra={"worker": self.name},
        )
        self.abandoning.set()  # job threads stop before their next effect (an upload)
        self._cancel_statements()  # and their statements end, rolling back
        for task in pending:
            task.cancel()
        # Each cancelled job releases its row and naks its message; bounded, so the exit is.
        await asyncio.wait(pending, timeout=ABANDON_S + 0.1)

    async def close(self) -> None:
        if self._psub is not None:
            with contextlib.suppress(Exception):
                await self._psub.unsubscribe()
        if self.conn is not None:
            await self.conn.close()
        if self._health is not None:
            self._health.stop()
        self.deps.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _start_health(self) -> None:
        if self.opts.metrics_port is None:
            return
        from afasa_ops.workers.health import HealthServer

        self._health = HealthServer(
            self.opts.metrics_host, self.opts.metrics_port, self.metrics.registry, self.status
        )
        self._health.start()
        self.health_port = self._health.port
        log.info("health and metrics on port %s", self.health_port, extra={"worker": self.name})

    # --- the outbox relay ------------------------------------------------------------------

    async def relay_loop(self) -> None:
        """Relay until the worker's jobs are over (so their last events go out too). Failures
        back off and are logged when they change, not at every attempt."""
        failing: str | None = None
        delay = self.opts.relay_interval_s
        wakeup = self._start_wakeup()
        try:
            while not self._closing.is_set():
                if wakeup is not None:
                    wakeup.event.clear()  # what commits from now on wakes the next sweep
                failing, delay = await self._relay_sweep(failing, delay)
                # A failing relay backs off whatever is committed meanwhile.
                waits: list[Awaitable[Any]] = [self._closing.wait()]
                if wakeup is not None and failing is None:
                    waits.append(wakeup.event.wait())
                await _first_of(waits, delay)
        finally:
            if wakeup is not None:
                wakeup.stop()

    def _start_wakeup(self) -> OutboxWakeup | None:
        conninfo = listen_conninfo(self.engine)
        if conninfo is None:
            return None
        return OutboxWakeup(conninfo, asyncio.get_running_loop(), self.name).start()

    async def _relay_sweep(self, failing: str | None, delay: float) -> tuple[str | None, float]:
        """One sweep; returns the failure it is in (None: healthy) and the next pause."""
        try:
            await self.relay_once()
        except Exception as exc:
            dep = outage_of(exc)
            if dep is not None:
                self.deps.report(dep, exc)  # one line for the outage, not one per sweep
                await self._until(self.deps.wait_up(dep), self._closing)
                return failing, 0.0
            text = redactor.redact(one_line(exc))
            if text != failing:
                log.warning(
                    "outbox relay failing: %s; backing off", text, extra={"worker": self.name}
                )
            return text, min(max(delay, 0.1) * 2, RELAY_MAX_BACKOFF_S)
        if failing is not None:
            log.info("outbox relay recovered", extra={"worker": self.name})
        return None, self.opts.relay_interval_s

    # --- reconciliation ----------------------------------------------------------------------

    async def reconcile_loop(self) -> None:
        if self.spec is None or self.spec.reconcile is None or self.opts.reconcile_interval_s <= 0:
            return
        while not self.stopping.is_set():
            await self._sleep(self.opts.reconcile_interval_s)
            if self.stopping.is_set() or self.deps.is_down():
                continue
            try:
                await self.reconcile_once()
            except Exception as exc:
                log.warning("reconciliation: %s", one_line(exc), extra={"worker": self.name})

    async def reconcile_once(self) -> tuple[int, int]:
        """Re-announce or fail jobs whose rows wait with no live message on the stream."""
        assert self.spec is not None and self.spec.reconcile is not None
        live_since = await self._oldest_live_message()
        sweep = self.spec.reconcile
        reannounced, failed = await self.in_thread(sweep, live_since, self.opts.max_deliver)
        if reannounced or failed:
            log.warning(
                "reconciliation: %s job(s) re-announced, %s failed (no live message)",
                reannounced,
                failed,
                extra={"worker": self.name},
            )
        return reannounced, failed

    async def _oldest_live_message(self) -> datetime | None:
        """When the oldest message that may still be live was stored: every message before
        the consumer's ack floor was acked or terminated. None: nothing is live."""
        assert self.conn is not None and self.spec is not None
        from nats.js.errors import NotFoundError

        info = await self.conn.js.consumer_info(self.opts.stream, self.durable, timeout=5)
        floor = int(info.ack_floor.stream_seq if info.ack_floor else 0)
        try:
            msg = await self.conn.js.get_msg(
                self.opts.stream, seq=floor + 1, subject=self.spec.subject, next=True
            )
        except NotFoundError:
            return None
        stamp = msg.time
        if stamp is None:
            return None
        return stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp))

    async def relay_once(self) -> int:
        """Publish every tenant's unpublished outbox events; returns how many."""
        assert self.conn is not None
        total = 0
        for tenant in await self.in_thread(outbox.tenants_with_pending, self.engine):
            total += await self._relay_tenant(tenant)
        return total

    async def _relay_tenant(self, tenant: Any) -> int:
        assert self.conn is not None
        sent: list[Any] = []
        try:
            for item in await self.in_thread(outbox.pending, self.engine, tenant):
                try:
                    await natsdrv.publish(
                        self.conn.js,
                        item.subject,
                        item.body,
                        msg_id=item.event_id,
                        stream=self.opts.stream,
                    )
                except Exception as exc:
                    await self.in_thread(
                        outbox.mark_failed, self.engine, tenant, item.row_id, str(exc)
                    )
                    raise
                sent.append(item.row_id)
        finally:
            if sent:
                await self.in_thread(outbox.mark_published, self.engine, tenant, sent)
                self.metrics.relayed.labels(self.name).inc(len(sent))
        return len(sent)


RELAY_MAX_BACKOFF_S = 10.0
# At the grace deadline: how long an abandoned job may take to release its row.
ABANDON_S = 0.5


async def _first_of(waits: Sequence[Awaitable[Any]], timeout: float) -> None:
    """Return when the first of `waits` finishes or after `timeout` seconds."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _quietly(fn: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):
        fn()


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def hard_exit(code: int) -> None:
    """Leave now: threads blocked on a hung dependency are not waited for."""
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def exit_without_waiting_for_blocked_threads(code: int) -> int:
    """After the runtime stopped: if a job thread is still blocked (a hung database), the
    interpreter would wait for it at exit. Say so and leave with the runtime's code."""
    deadline = time.monotonic() + 0.2  # idle pool threads are on their way out: let them go
    blocked = _non_daemon_threads()
    while blocked and time.monotonic() < deadline:
        blocked[0].join(timeout=max(deadline - time.monotonic(), 0.01))
        blocked = _non_daemon_threads()
    if blocked:
        log.warning(
            "exiting with %s blocked thread(s) left behind", len(blocked), extra={"worker": "main"}
        )
        hard_exit(code)
    return code


def _non_daemon_threads() -> list[threading.Thread]:
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]
