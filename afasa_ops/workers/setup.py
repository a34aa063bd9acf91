"""Settings -> what a worker needs: runtime options, the app-role engine, storage, clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from afasa_ops.errors import ConfigError
from afasa_ops.workers.runtime import RuntimeOptions

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from afasa_ops.config import Settings
    from afasa_ops.platform.thingsboard import ThingsboardClient


def runtime_options(
    settings: Settings, *, concurrency: int | None = None, port: int | None = None
) -> RuntimeOptions:
    w = settings.workers
    if w.max_deliver < 1:
        raise ConfigError(f"[workers] max_deliver = {w.max_deliver}: must be at least 1")
    if w.ack_wait_s <= 0:
        raise ConfigError(f"[workers] ack_wait_s = {w.ack_wait_s}: must be positive")
    conc = concurrency if concurrency is not None else w.concurrency
    if conc < 1:
        raise ConfigError(f"--concurrency {conc}: must be at least 1")
    return RuntimeOptions(
        nats_url=settings.nats.url,
        stream=settings.nats.stream,
        ack_wait_s=w.ack_wait_s,
        max_deliver=w.max_deliver,
        backoff_s=list(w.backoff_s),
        grace_s=w.grace_s,
        concurrency=conc,
        relay_interval_s=w.relay_interval_s,
        metrics_host=w.metrics_host,
        metrics_port=port if port is not None else w.metrics_port,
        update_stream=w.update_stream,
        reconcile_interval_s=w.reconcile_interval_s,
        reconcile_after_s=w.reconcile_after_s,
    )


def app_engine(settings: Settings, pool_size: int = 5) -> Engine:
    from afasa_ops.config import require
    from afasa_ops.infra.postgres import Timeouts, make_engine

    dsn = require(settings, "database", "app_dsn", "workers connect as the application role")
    db = settings.database
    return make_engine(
        dsn,
        timeouts=Timeouts.of(db, statement_s=db.worker_statement_timeout_s),
        pool_size=pool_size,
        application_name="afasa-ops-worker",
    )


def thingsboard_client(settings: Settings) -> ThingsboardClient | None:
    from afasa_ops.config import secret_value
    from afasa_ops.platform.thingsboard import ThingsboardClient

    tb = settings.thingsboard
    if not tb.base_url:
        return None
    password = secret_value(tb.password)
    if not tb.username or not password:
        raise ConfigError("[thingsboard] base_url is set but username or password is missing")
    return ThingsboardClient(tb.base_url, tb.username, password)
