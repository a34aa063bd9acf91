"""worker sync: every tenant with a UbiBot account key, upserted as devices, on an interval
with jitter (or once). A tenant's failure is reported and retried without stopping others."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afasa_ops.errors import AfasaOpsError
from afasa_ops.platform import devices
from afasa_ops.platform.db import tenant_ids
from afasa_ops.platform.secrets import load_secret
from afasa_ops.workers.runtime import Runtime, RuntimeOptions

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger("afasa_ops.worker")


@dataclass
class SyncConfig:
    base_url: str
    timeout_s: float = 10.0
    interval_s: float = 300.0
    jitter_s: float = 30.0
    # One tenant whose key comes from config (single-tenant setups), besides the secrets.
    config_tenant: str | None = None
    config_key: str | None = None
    master_key: bytes | None = None
    retries: int = 2


@dataclass
class TenantResult:
    tenant_id: str
    counts: devices.SyncCounts | None = None
    error: str | None = None
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "counts": self.counts.as_dict() if self.counts else None,
            "error": self.error,
            "attempts": self.attempts,
        }


@dataclass
class PassResult:
    tenants: list[TenantResult] = field(default_factory=list)

    @property
    def failed(self) -> list[TenantResult]:
        return [t for t in self.tenants if t.error]

    def as_dict(self) -> dict[str, Any]:
        return {"tenants": [t.as_dict() for t in self.tenants], "failed": len(self.failed)}


@dataclass(frozen=True)
class Account:
    tenant_id: str
    key: str | None
    error: str | None = None


def accounts(engine: Engine, cfg: SyncConfig) -> list[Account]:
    """Every tenant that has a UbiBot key; a key that cannot be read is that tenant's error."""
    found: list[Account] = []
    if cfg.config_tenant and cfg.config_key:
        found.append(Account(cfg.config_tenant, cfg.config_key))
    if cfg.master_key is None:
        return found
    for tid in tenant_ids(engine):
        if any(a.tenant_id == str(tid) for a in found):
            continue
        try:
            key = load_secret(engine, tid, devices.UBIBOT_SECRET_PURPOSE, cfg.master_key)
        except AfasaOpsError as exc:
            found.append(Account(str(tid), None, f"tenant {tid}: UbiBot key unreadable: {exc}"))
            continue
        if key:
            found.append(Account(str(tid), key))
    return found


def sync_tenant(
    engine: Engine, cfg: SyncConfig, tenant: str, key: str, corr: str
) -> devices.SyncCounts:
    return devices.sync_ubibot(
        engine,
        tenant,
        base_url=cfg.base_url,
        account_key=key,
        timeout_s=cfg.timeout_s,
        correlation_id=corr,
    )


async def sync_pass(runtime: Runtime, engine: Engine, cfg: SyncConfig) -> PassResult:
    result = PassResult()
    corr = str(uuid.uuid4())
    found: list[Account] = await runtime.in_thread(accounts, engine, cfg)
    by_tenant = {a.tenant_id: TenantResult(a.tenant_id, error=a.error) for a in found}
    result.tenants = list(by_tenant.values())
    todo = [(a.tenant_id, a.key) for a in found if a.key]
    for attempt in range(cfg.retries + 1):
        if not todo:
            break
        if attempt:
            await asyncio.sleep(runtime.opts.backoff(attempt))
        retry: list[tuple[str, str]] = []
        for tenant, key in todo:
            res = by_tenant[tenant]
            res.attempts += 1
            extra = {"worker": runtime.name, "tenant_id": tenant, "correlation_id": corr}
            try:
                res.counts = await runtime.in_thread(sync_tenant, engine, cfg, tenant, key, corr)
                res.error = None
                log.info("synced: %s", res.counts.as_dict(), extra=extra)
            except AfasaOpsError as exc:
                res.error = exc.message
                log.error("%s", exc.message, extra=extra)
                if getattr(exc, "retryable", False):
                    retry.append((tenant, key))
            except Exception as exc:  # a database error for one tenant must not stop the rest
                res.error = f"tenant {tenant}: {type(exc).__name__}: {exc}"
                log.error("%s", res.error, extra=extra)
                retry.append((tenant, key))
        todo = retry
    return result


class SyncRuntime(Runtime):
    def __init__(
        self, options: RuntimeOptions, engine: Engine, cfg: SyncConfig, once: bool
    ) -> None:
        super().__init__(None, options, engine, name="sync")
        self.cfg = cfg
        self.once = once
        self.last: PassResult | None = None

    async def run(self) -> int:
        self._install_signals()
        self._start_health()
        if self.once:
            try:
                await self.connect()
            except AfasaOpsError as exc:
                log.warning(
                    "no NATS (%s): events stay in the outbox", exc, extra={"worker": self.name}
                )
        elif not await self._connect_until_ok():
            await self.close()
            return 0
        try:
            while not self.stopping.is_set():
                self.last = await sync_pass(self, self.engine, self.cfg)
                if self.conn is not None:
                    try:
                        await self.relay_once()
                    except Exception as exc:
                        log.warning("outbox relay: %s", exc, extra={"worker": self.name})
                if self.once:
                    break
                await self._sleep(self.cfg.interval_s + random.uniform(0, self.cfg.jitter_s))
        finally:
            await self.close()
        # --once reports the pass in its exit code; a long-running worker stopped by a signal
        # exits 0 (its tenants' failures were logged and are retried next interval).
        if self.once:
            return 1 if self.last and self.last.failed else 0
        return 0
