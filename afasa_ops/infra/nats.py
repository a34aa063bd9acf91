"""The NATS JetStream driver: connect with endless reconnects, ensure the stream and durable
consumers explicitly, publish with Nats-Msg-Id. nats-py errors become DriverError here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afasa_ops.errors import DriverError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from nats.js.api import ConsumerConfig, StreamConfig

log = logging.getLogger("afasa_ops.nats")

# JetStream API error codes (nats-server): stream name in use with another config, subjects
# overlapping another stream.
ERR_STREAM_NAME_IN_USE = 10058
ERR_SUBJECTS_OVERLAP = 10065


@dataclass
class StreamReport:
    """What ensure_stream found or did: created, unchanged, updated, or differs (not touched)."""

    name: str
    action: str
    differences: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.action != "differs"


@dataclass
class NatsConnection:
    nc: Client
    js: JetStreamContext

    async def close(self) -> None:
        if not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception:  # already closing or disconnected: close is what we want
                await self.nc.close()


async def connect(
    url: str,
    *,
    name: str = "afasa-ops",
    on_reconnected: Callable[[], Awaitable[None]] | None = None,
    on_disconnected: Callable[[], Awaitable[None]] | None = None,
    connect_timeout_s: float = 5.0,
) -> NatsConnection:
    """Connect and keep reconnecting for ever: a worker outlives NATS restarts."""
    import nats
    from nats.errors import NoServersError

    async def _reconnected() -> None:
        log.info("nats reconnected", extra={"url": url})
        if on_reconnected is not None:
            await on_reconnected()

    async def _disconnected() -> None:
        log.warning("nats disconnected", extra={"url": url})
        if on_disconnected is not None:
            await on_disconnected()

    async def _error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    try:
        nc = await nats.connect(
            url,
            name=name,
            connect_timeout=connect_timeout_s,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
            reconnected_cb=_reconnected,
            disconnected_cb=_disconnected,
            error_cb=_error,
        )
    except (TimeoutError, NoServersError, OSError) as exc:
        raise DriverError(
            f"NATS at {url}: cannot connect ({type(exc).__name__}: {exc})",
            hint="check [nats] url and that nats-server runs with -js",
        ) from exc
    return NatsConnection(nc=nc, js=nc.jetstream())


async def probe_stream(url: str, stream: str, timeout_s: float = 2.0) -> None:
    """One connection, no reconnects: JetStream answers and the stream exists (a readiness
    probe, not a TCP check). Errors raise as they are, for the probe to report."""
    import nats

    nc = await nats.connect(
        url, connect_timeout=timeout_s, max_reconnect_attempts=0, allow_reconnect=False
    )
    try:
        await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()


def stream_config(
    name: str, subjects: list[str], duplicate_window_s: float = 120.0
) -> StreamConfig:
    from nats.js.api import StreamConfig

    return StreamConfig(name=name, subjects=subjects, duplicate_window=duplicate_window_s)


def _differences(want: StreamConfig, have: StreamConfig) -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    if sorted(want.subjects or []) != sorted(have.subjects or []):
        out["subjects"] = (want.subjects, have.subjects)
    if want.duplicate_window and have.duplicate_window != want.duplicate_window:
        out["duplicate_window"] = (want.duplicate_window, have.duplicate_window)
    return out


async def ensure_stream(
    js: JetStreamContext, want: StreamConfig, *, update: bool = False
) -> StreamReport:
    """Create the stream when missing; when it exists with another config, report it and
    leave it alone unless update=True (then update in place, never delete)."""
    from nats.js.errors import APIError, NotFoundError

    assert want.name is not None
    try:
        info = await js.stream_info(want.name)
    except NotFoundError:
        try:
            await js.add_stream(want)
        except APIError as exc:
            raise _api_error(f"creating stream {want.name}", exc) from exc
        return StreamReport(want.name, "created")
    diff = _differences(want, info.config)
    if not diff:
        return StreamReport(want.name, "unchanged")
    if not update:
        return StreamReport(want.name, "differs", diff)
    merged = info.config
    merged.subjects = want.subjects
    merged.duplicate_window = want.duplicate_window
    try:
        await js.update_stream(merged)
    except APIError as exc:
        raise _api_error(f"updating stream {want.name}", exc) from exc
    return StreamReport(want.name, "updated", diff)


def _api_error(doing: str, exc: Exception) -> DriverError:
    code = getattr(exc, "err_code", None)
    hint = None
    if code == ERR_SUBJECTS_OVERLAP:
        hint = "another stream already captures these subjects; remove or narrow it"
    elif code == ERR_STREAM_NAME_IN_USE:
        hint = "the stream exists with another config; update it instead of adding"
    return DriverError(f"NATS {doing}: {exc}", hint=hint)


def consumer_config(
    durable: str,
    filter_subject: str,
    *,
    ack_wait_s: float,
    max_deliver: int,
    max_ack_pending: int = 1000,
) -> ConsumerConfig:
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    return ConsumerConfig(
        durable_name=durable,
        filter_subject=filter_subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        # The server stops redelivering after max_deliver; the runtime dead-letters on the
        # last delivery itself, so a message is never left silently exhausted.
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
    )


async def ensure_consumer(js: JetStreamContext, stream: str, want: ConsumerConfig) -> str:
    """Create or update the durable consumer explicitly: pull_subscribe(durable=...) would
    bind to an existing one and silently ignore a changed config."""
    from nats.js.errors import APIError, NotFoundError

    assert want.durable_name is not None
    try:
        info = await js.consumer_info(stream, want.durable_name)
    except NotFoundError:
        try:
            await js.add_consumer(stream, want)
        except APIError as exc:
            raise _api_error(f"creating consumer {want.durable_name}", exc) from exc
        return "created"
    have = info.config
    same = (
        have.filter_subject == want.filter_subject
        and have.ack_wait == want.ack_wait
        and have.max_deliver == want.max_deliver
        and have.max_ack_pending == want.max_ack_pending
    )
    if same:
        return "unchanged"
    try:
        await js.add_consumer(stream, want)  # add with the same durable name updates it
    except APIError as exc:
        raise _api_error(f"updating consumer {want.durable_name}", exc) from exc
    return "updated"


async def publish(
    js: JetStreamContext,
    subject: str,
    body: bytes,
    *,
    msg_id: str,
    stream: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 5.0,
) -> bool:
    """Publish with Nats-Msg-Id; returns False when JetStream reports a duplicate."""
    from nats.errors import Error as NatsError

    hdrs = {"Nats-Msg-Id": msg_id, **(headers or {})}
    try:
        ack = await js.publish(subject, body, timeout=timeout_s, stream=stream, headers=hdrs)
    except (TimeoutError, NatsError) as exc:
        raise DriverError(f"NATS publish to {subject}: {type(exc).__name__}: {exc}") from exc
    return not bool(getattr(ack, "duplicate", False))


@asynccontextmanager
async def watching(
    url: str, subject: str, *, connect_timeout_s: float = 5.0
) -> AsyncIterator[list[bytes]]:
    """A plain (core) subscription for the block's duration, consuming nothing from any
    stream: what is published on `subject` meanwhile is appended to the yielded list."""
    import nats
    from nats.errors import NoServersError

    try:
        nc = await nats.connect(
            url,
            name="afasa-ops-probe",
            connect_timeout=connect_timeout_s,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
    except (TimeoutError, NoServersError, OSError) as exc:
        raise DriverError(
            f"NATS at {url}: cannot connect ({type(exc).__name__}: {exc})",
            hint="check [nats] url",
        ) from exc
    seen: list[bytes] = []

    async def _append(msg: Any) -> None:
        seen.append(bytes(msg.data))

    try:
        await nc.subscribe(subject, cb=_append)
        await nc.flush(timeout=max(1, round(connect_timeout_s)))
        yield seen
    finally:
        await nc.close()
