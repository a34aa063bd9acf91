"""/healthz (the process answers), /readyz (its dependencies answer), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from afasa_ops.api.health import run_probes
from afasa_ops.api.routes.deps import runtime_of

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    # No dependency injection here: a sync dependency would run on the request thread pool,
    # which a hung database can fill. The probes have threads of their own.
    runtime = runtime_of(request)
    results = await run_probes(runtime.probes)
    failed = [r.name for r in results if not r.ok]
    body = {
        "status": "ok" if not failed else "unavailable",
        "failed": failed,
        "checks": {r.name: r.detail for r in results},
    }
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
