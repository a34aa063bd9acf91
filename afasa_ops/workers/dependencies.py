"""Outages of a worker's dependencies (the database, storage): which are down, one log line
when one goes and one when it is back, and a prober per outage that finds out when.

While a dependency is down the worker fetches nothing and its in-flight jobs wait (their
messages kept alive with in_progress) instead of spending deliveries on retries that cannot
succeed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from afasa_ops.platform.availability import one_line, outage_of
from afasa_ops.redact import redactor

log = logging.getLogger("afasa_ops.worker")

Probe = Callable[[], object]

PROBE_TIMEOUT_S = 10.0


@dataclass
class _Outage:
    since: float
    back: asyncio.Event = field(default_factory=asyncio.Event)
    prober: asyncio.Task[None] | None = None


class Dependencies:
    def __init__(
        self,
        worker: str,
        probes: dict[str, Probe],
        *,
        first_probe_s: float = 0.5,
        max_probe_s: float = 2.0,
    ) -> None:
        self.worker = worker
        self.probes = probes
        self.first_probe_s = first_probe_s
        self.max_probe_s = max_probe_s
        self._down: dict[str, _Outage] = {}
        # Probes get their own threads: job threads may be stuck on the very dependency.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="probe")

    def is_down(self, name: str | None = None) -> bool:
        return bool(self._down) if name is None else name in self._down

    def down_names(self) -> list[str]:
        return sorted(self._down)

    def report(self, name: str, exc: BaseException) -> None:
        """A job or the relay met an outage of `name`: logged once, probed until it ends."""
        if name in self._down:
            return
        log.warning(
            "%s unavailable: %s; fetching paused, in-flight jobs held until it answers",
            name,
            redactor.redact(one_line(exc)),
            extra={"worker": self.worker},
        )
        outage = _Outage(time.monotonic())
        self._down[name] = outage
        outage.prober = asyncio.create_task(self._probe_until_up(name, outage))

    async def wait_up(self, name: str) -> None:
        outage = self._down.get(name)
        if outage is not None:
            await outage.back.wait()

    async def wait_all_up(self) -> None:
        for name in list(self._down):
            await self.wait_up(name)

    async def _probe_until_up(self, name: str, outage: _Outage) -> None:
        probe = self.probes.get(name)
        delay = self.first_probe_s
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(delay)
            if probe is None:
                break  # nothing to ask: try the work again after the delay
            try:
                await asyncio.wait_for(
                    loop.run_in_executor(self._executor, probe), timeout=PROBE_TIMEOUT_S
                )
                break
            except Exception as exc:
                if not isinstance(exc, TimeoutError) and outage_of(exc) is None:
                    break  # it answered, if only with an error: the work decides what that means
            delay = min(delay * 2, self.max_probe_s)
        log.info(
            "%s available again after %.1fs; resuming",
            name,
            time.monotonic() - outage.since,
            extra={"worker": self.worker},
        )
        del self._down[name]
        outage.back.set()

    def close(self) -> None:
        for outage in self._down.values():
            if outage.prober is not None:
                outage.prober.cancel()
        with contextlib.suppress(Exception):
            self._executor.shutdown(wait=False, cancel_futures=True)


def database_probe(engine: object) -> Probe:
    from sqlalchemy import Engine, text

    assert isinstance(engine, Engine)

    def ping() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return ping
