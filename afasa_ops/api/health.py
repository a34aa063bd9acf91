"""Readiness probes: the database, NATS JetStream and the report storage, each on its own.

/readyz runs them all and answers 503 naming every one that failed, with its one-line cause.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from afasa_ops.config import Settings
from afasa_ops.redact import redactor

PROBE_TIMEOUT_S = 3.0
# The probes' own threads: request threads stuck on a hung database cannot starve /readyz.
# A probe stuck past its timeout keeps its thread; four cover a few rounds of that.
_PROBE_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


async def in_probe_thread(fn: Callable[[], None]) -> None:
    await asyncio.get_running_loop().run_in_executor(_PROBE_THREADS, fn)


Probe = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ProbeResult:
    name: str
    ok: bool
    detail: str


async def run_probes(probes: dict[str, Probe]) -> list[ProbeResult]:
    async def one(name: str, probe: Probe) -> ProbeResult:
        try:
            await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
        except TimeoutError:
            return ProbeResult(name, False, f"no answer within {PROBE_TIMEOUT_S:.0f}s")
        except Exception as exc:
            text = str(exc).strip().splitlines()
            return ProbeResult(
                name, False, redactor.redact(f"{type(exc).__name__}: {text[0] if text else ''}")
            )
        return ProbeResult(name, True, "ok")

    return list(await asyncio.gather(*(one(n, p) for n, p in probes.items())))


def database_probe(engine: object) -> Probe:
    from sqlalchemy import Engine, text

    assert isinstance(engine, Engine)

    def ping() -> None:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles "
                    "WHERE rolname = current_user"
                )
            ).one()
        # A superuser or BYPASSRLS role ignores every policy: tenants would see each other.
        if row[1]:
            raise RuntimeError(
                f"connected as {row[0]}, a superuser or BYPASSRLS role: row-level security "
                "is not enforced; set [database] app_dsn to the application role"
            )

    async def probe() -> None:
        await in_probe_thread(ping)

    return probe


def nats_probe(url: str, stream: str) -> Probe:
    async def probe() -> None:
        from afasa_ops.infra.nats import probe_stream

        # JetStream and the stream the platform publishes to, not only a TCP socket.
        await probe_stream(url, stream, timeout_s=2.0)

    return probe


def storage_probe(settings: Settings) -> Probe:
    from afasa_ops.platform.storage import FileStorage, open_storage

    storage = open_storage(settings.storage, settings.base_dir)

    def check() -> None:
        if isinstance(storage, FileStorage):
            # The report worker creates the directory on its first put; so may we.
            storage.root.mkdir(parents=True, exist_ok=True)
            if not os.access(storage.root, os.W_OK):
                raise RuntimeError(f"storage directory {storage.root} is not writable")
            return
        # A HEAD of a key that need not exist: proves the endpoint answers and the
        # credentials are accepted (a bad signature raises, a missing key does not).
        storage.exists(".afasa-readyz")

    async def probe() -> None:
        await in_probe_thread(check)

    return probe
