"""Readiness probes: the database, NATS JetStream and the report storage, each on its own.

/readyz runs them all and answers 503 naming every one that failed, with its one-line cause.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from afasa_ops.config import Settings, secret_value
from afasa_ops.redact import redactor

PROBE_TIMEOUT_S = 3.0

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
            conn.execute(text("SELECT 1"))

    async def probe() -> None:
        await asyncio.to_thread(ping)

    return probe


def nats_probe(url: str, stream: str) -> Probe:
    async def probe() -> None:
        import nats

        nc = await nats.connect(
            url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False
        )
        try:
            # JetStream and the stream the platform publishes to, not only a TCP socket.
            await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()

    return probe


def storage_probe(settings: Settings) -> Probe:
    url = settings.storage.url
    parts = urlsplit(url)
    if parts.scheme == "file":
        root = file_storage_root(settings)

        async def file_probe() -> None:
            if not root.is_dir():
                raise RuntimeError(f"storage directory {root} does not exist")
            if not os.access(root, os.W_OK):
                raise RuntimeError(f"storage directory {root} is not writable")

        return file_probe
    if parts.scheme == "s3":
        bucket = parts.netloc

        def bucket_exists() -> None:
            client = minio_client(settings)
            if not client.bucket_exists(bucket):
                raise RuntimeError(f"bucket {bucket!r} does not exist")

        async def s3_probe() -> None:
            await asyncio.to_thread(bucket_exists)

        return s3_probe
    raise ValueError(f"[storage] url {url!r}: scheme must be file:// or s3://")


def file_storage_root(settings: Settings) -> Path:
    """file://DIR: absolute, or relative to the AFASA repo (where .afasa-ops/ lives)."""
    raw = settings.storage.url[len("file://") :]
    path = Path(raw)
    return path if path.is_absolute() else settings.repo_path / path


def minio_client(settings: Settings):  # type: ignore[no-untyped-def]
    from minio import Minio

    endpoint = settings.storage.endpoint or ""
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    return Minio(
        parts.netloc,
        access_key=secret_value(settings.storage.access_key),
        secret_key=secret_value(settings.storage.secret_key),
        secure=parts.scheme == "https",
        region=settings.storage.region,
    )
