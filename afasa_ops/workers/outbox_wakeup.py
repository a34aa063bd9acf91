"""Wake the outbox relay when an event is committed, not at its next timed sweep.

outbox.enqueue sends `NOTIFY afasa_outbox` in the transaction that writes the event, so
PostgreSQL delivers it at commit. A thread of each worker LISTENs on a connection of its own
and sets an asyncio event the relay waits on. A device command or a report request then
reaches JetStream within milliseconds instead of up to `relay_interval_s` later.

The timed sweep stays: a notification missed while the listener reconnects (database
restarted, connection cut) costs at most one relay interval, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from afasa_ops.platform.availability import one_line
from afasa_ops.platform.outbox import CHANNEL
from afasa_ops.redact import redactor

log = logging.getLogger("afasa_ops.workers")

# How often the listening thread looks up from the socket to see whether it should stop.
_POLL_S = 0.5
# Between attempts to (re)connect while the database is away.
_RECONNECT_S = 2.0


class OutboxWakeup:
    """LISTENs on the outbox channel in a daemon thread; `event` is set on every
    notification and once after each (re)connect (events may have been committed unheard)."""

    def __init__(self, conninfo: str, loop: asyncio.AbstractEventLoop, worker: str) -> None:
        self.conninfo = conninfo
        self.event = asyncio.Event()
        self._loop = loop
        self._worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="outbox-wakeup", daemon=True)

    def start(self) -> OutboxWakeup:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _wake(self) -> None:
        # The loop may already be closed when a late notification arrives at shutdown.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.event.set)

    def _listen(self) -> None:
        import psycopg

        from afasa_ops.infra.postgres import Timeouts

        # TCP keepalives: a connection a firewall dropped silently fails, and is made again,
        # instead of waiting for ever on notifications that cannot come.
        args = Timeouts().connect_args("afasa-ops-outbox-listener")
        failing: str | None = None
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, **args) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failing is not None:
                        log.info("outbox listener reconnected", extra={"worker": self._worker})
                        failing = None
                    self._wake()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=_POLL_S):
                            self._wake()
            except psycopg.Error as exc:
                text = redactor.redact(one_line(exc))
                if text != failing:
                    log.warning(
                        "outbox listener: %s; the relay sweeps on its interval meanwhile",
                        text,
                        extra={"worker": self._worker},
                    )
                failing = text
                self._stop.wait(_RECONNECT_S)


def listen_conninfo(engine: Any) -> str | None:
    """The libpq connection string of a SQLAlchemy engine on PostgreSQL; None otherwise (a
    test double, another database): the relay then sweeps on its interval only."""
    url = getattr(engine, "url", None)
    if url is None or not str(getattr(url, "drivername", "")).startswith("postgresql"):
        return None
    rendered: str = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return rendered
