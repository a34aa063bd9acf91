"""What `create_app` adds for hostile input: the request guard (body size and deadline, NUL
bytes) and the registry of known tenants the caller dependency consults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from afasa_ops.api.limits import RequestGuard
from afasa_ops.api.tenants import KnownTenants

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

    from afasa_ops.config import ApiSection


def install_hardening(app: FastAPI, api: ApiSection) -> None:
    # Added before the metrics middleware, so the metrics (outside) count its refusals too.
    app.add_middleware(
        RequestGuard,
        max_body_bytes=api.max_body_bytes,
        body_timeout_s=api.body_timeout_s,
    )
    app.state.known_tenants = KnownTenants()


def known_tenants(request: Request) -> KnownTenants:
    found = getattr(request.app.state, "known_tenants", None)
    if not isinstance(found, KnownTenants):
        found = request.app.state.known_tenants = KnownTenants()
    return found
