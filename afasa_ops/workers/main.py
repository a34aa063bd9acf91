"""Entry points the CLI calls: build a worker from Settings and run it to completion."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from afasa_ops.errors import ConfigError
from afasa_ops.workers import logs
from afasa_ops.workers.setup import app_engine, runtime_options, thingsboard_client

if TYPE_CHECKING:
    from afasa_ops.config import Settings
    from afasa_ops.workers.runtime import Runtime
    from afasa_ops.workers.sync import PassResult


def _run(runtime: Runtime) -> int:
    return asyncio.run(runtime.run())


def _exit_code(code: int) -> int:
    """The runtime has stopped: exit now, even past job threads a hung database still holds."""
    from afasa_ops.workers.runtime import exit_without_waiting_for_blocked_threads

    return exit_without_waiting_for_blocked_threads(code)


def run_report(settings: Settings, *, concurrency: int | None, port: int | None) -> int:
    from afasa_ops.platform.storage import open_storage
    from afasa_ops.workers import report

    logs.setup()
    opts = runtime_options(settings, concurrency=concurrency, port=port)
    engine = app_engine(settings, pool_size=opts.concurrency + 2)
    storage = open_storage(settings.storage, settings.base_dir)
    workdir = Path(settings.workers.workdir) if settings.workers.workdir else None
    try:
        code = _run(report.build(opts, engine, storage, workdir))
    finally:
        engine.dispose()
    return _exit_code(code)


def run_commands(settings: Settings, *, concurrency: int | None, port: int | None) -> int:
    from afasa_ops.workers import commands

    logs.setup()
    opts = runtime_options(settings, concurrency=concurrency, port=port)
    engine = app_engine(settings, pool_size=opts.concurrency + 2)
    try:
        code = _run(commands.build(opts, engine, thingsboard_client(settings)))
    finally:
        engine.dispose()
    return _exit_code(code)


def sync_config(settings: Settings) -> object:
    from afasa_ops.config import secret_value
    from afasa_ops.platform.accounts import configured_key, master_key_or_none
    from afasa_ops.platform.secrets import MASTER_KEY_ENV
    from afasa_ops.workers.sync import SyncConfig

    ub = settings.ubibot
    configured = configured_key(ub.tenant_id, secret_value(ub.account_key))
    master = master_key_or_none()
    if master is None and configured is None:
        raise ConfigError(
            f"worker sync has no UbiBot keys to use: set {MASTER_KEY_ENV} (tenant secrets) "
            "or [ubibot] account_key and tenant_id"
        )
    return SyncConfig(
        base_url=ub.base_url,
        timeout_s=ub.timeout_s,
        interval_s=ub.interval_s,
        jitter_s=ub.jitter_s,
        config_tenant=str(configured.tenant_id) if configured else None,
        config_key=configured.key if configured else None,
        master_key=master,
    )


def run_sync(settings: Settings, *, once: bool, port: int | None) -> tuple[int, PassResult | None]:
    from afasa_ops.workers.sync import SyncConfig, SyncRuntime

    logs.setup(logging.INFO)
    cfg = sync_config(settings)
    assert isinstance(cfg, SyncConfig)
    opts = runtime_options(settings, concurrency=1, port=port)
    if once:
        opts.metrics_port = None  # a one-shot pass serves nothing
    engine = app_engine(settings)
    runtime = SyncRuntime(opts, engine, cfg, once=once)
    try:
        code = _run(runtime)
    finally:
        engine.dispose()
    return code, runtime.last
