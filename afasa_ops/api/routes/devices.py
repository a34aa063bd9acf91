"""Devices: UbiBot sync, the tenant's devices, enable/disable as asynchronous commands.

Every route has two mounts, `/api/...` and `/api/tb/...`, as tb-adapter serves them. All
database work goes through the platform library as the application role, tenant set
transaction-locally, so row-level security decides what a tenant sees.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from afasa_ops.api.errors import NotFound, UpstreamError
from afasa_ops.api.routes.deps import Admin, Caller, Correlation, Runtime
from afasa_ops.api.routes.views import as_json
from afasa_ops.config import secret_value
from afasa_ops.errors import AfasaOpsError, ConfigError

router = APIRouter()


def _sync(runtime: Runtime, caller: Admin, correlation: Correlation) -> dict[str, Any]:
    from afasa_ops.platform.accounts import (
        AccountKeyUnreadable,
        MissingAccountKey,
        account_key_for,
        configured_key,
        master_key_or_none,
    )
    from afasa_ops.platform.devices import sync_ubibot

    ubibot = runtime.settings.ubibot
    try:
        # The configured key belongs to [ubibot] tenant_id only; any other caller's key is
        # its own secret, so a sync never fetches one tenant's channels into another.
        key = account_key_for(
            runtime.engine,
            caller.tenant_id,
            configured_key(ubibot.tenant_id, secret_value(ubibot.account_key)),
            master_key_or_none(),
        )
    except MissingAccountKey as exc:
        raise HTTPException(409, exc.message) from exc
    except (AccountKeyUnreadable, ConfigError) as exc:
        raise HTTPException(503, f"UbiBot sync is not available: {exc.message}") from exc
    try:
        counts = sync_ubibot(
            runtime.engine,
            caller.tenant_id,
            base_url=ubibot.base_url,
            account_key=key,
            correlation_id=correlation,
        )
    except AfasaOpsError as exc:
        raise UpstreamError(str(exc), retryable=bool(getattr(exc, "retryable", False))) from exc
    return {
        "devices_found": counts.devices_found,
        "inserted": counts.inserted,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
    }


router.add_api_route("/api/discovery/ubibot/sync", _sync, methods=["POST"])
router.add_api_route("/api/tb/integrations/ubibot/sync", _sync, methods=["POST"])


@router.get("/api/devices")
def list_devices(
    runtime: Runtime, caller: Caller, provider: str | None = None, kind: str | None = None
) -> dict[str, Any]:
    from afasa_ops.platform.devices import list_devices as list_tenant_devices

    found = list_tenant_devices(runtime.engine, caller.tenant_id, provider=provider, kind=kind)
    return {"devices": [as_json(d) for d in found]}


@router.get("/api/devices/{device_id}")
def get_device(runtime: Runtime, caller: Caller, device_id: uuid.UUID) -> dict[str, Any]:
    from afasa_ops.platform.devices import get_device as get_tenant_device

    found = get_tenant_device(runtime.engine, caller.tenant_id, device_id)
    if found is None:
        raise NotFound("device")
    return as_json(found)


def _command(
    runtime: Runtime, caller: Admin, correlation: Correlation, device_id: uuid.UUID, enabled: bool
) -> JSONResponse:
    from afasa_ops.platform.devices import set_device_enabled

    command_id = set_device_enabled(
        runtime.engine,
        caller.tenant_id,
        device_id,
        enabled,
        actor=caller.subject,
        correlation_id=correlation,
    )
    if command_id is None:
        raise NotFound("device")
    body = {
        "command_id": str(command_id),
        "device_id": str(device_id),
        "desired_enabled": enabled,
        "status": "requested",
    }
    return JSONResponse(body, status_code=202)


def enable(
    runtime: Runtime, caller: Admin, correlation: Correlation, device_id: uuid.UUID
) -> JSONResponse:
    return _command(runtime, caller, correlation, device_id, True)


def disable(
    runtime: Runtime, caller: Admin, correlation: Correlation, device_id: uuid.UUID
) -> JSONResponse:
    return _command(runtime, caller, correlation, device_id, False)


for _prefix in ("/api/devices", "/api/tb/devices"):
    router.add_api_route(
        f"{_prefix}/{{device_id}}/enable", enable, methods=["POST"], status_code=202
    )
    router.add_api_route(
        f"{_prefix}/{{device_id}}/disable", disable, methods=["POST"], status_code=202
    )
