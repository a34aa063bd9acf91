"""Dependencies shared by the routes: the runtime, the caller, a correlation id."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Request

from afasa_ops.api.auth import Principal
from afasa_ops.api.hardening import known_tenants
from afasa_ops.api.runtime import ApiRuntime


def runtime_of(request: Request) -> ApiRuntime:
    runtime: ApiRuntime = request.app.state.runtime
    return runtime


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    runtime = runtime_of(request)
    caller = runtime.verifier.verify(authorization)
    known_tenants(request).require(runtime.engine, caller.tenant_id)
    return caller


def admin(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    caller.require_admin()
    return caller


def correlation_id(
    x_correlation_id: Annotated[str | None, Header()] = None,
    x_request_id: Annotated[str | None, Header()] = None,
) -> str:
    """The caller's correlation id (bounded), or a new one: it follows the work into events."""
    given = (x_correlation_id or x_request_id or "").strip()
    return given[:128] if given else str(uuid.uuid4())


Runtime = Annotated[ApiRuntime, Depends(runtime_of)]
Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]
Correlation = Annotated[str, Depends(correlation_id)]
