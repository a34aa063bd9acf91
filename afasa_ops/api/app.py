"""The reference AFASA service: FastAPI app factory, error mapping, metrics middleware."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram

from afasa_ops import __version__
from afasa_ops.api.auth import AuthError
from afasa_ops.api.errors import NotFound, UpstreamError
from afasa_ops.api.hardening import install_hardening
from afasa_ops.api.runtime import ApiRuntime
from afasa_ops.api.schemas import FieldError
from afasa_ops.errors import AfasaOpsError, UsageError
from afasa_ops.redact import redact


def create_app(runtime: ApiRuntime) -> FastAPI:
    from afasa_ops.api import outages
    from afasa_ops.api.routes import devices, health, reports

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        runtime.close()

    app = FastAPI(
        title="AFASA reference service",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.registry = CollectorRegistry()
    install_hardening(app, runtime.settings.api)
    outages.install(app, runtime.settings.api.request_timeout_s)  # inside the metrics
    _install_metrics(app)
    _install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(devices.router)
    app.include_router(reports.router)
    return app


def _install_metrics(app: FastAPI) -> None:
    registry: CollectorRegistry = app.state.registry
    requests = Counter(
        "afasa_api_requests_total",
        "HTTP requests by route template, method and status.",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "afasa_api_request_seconds",
        "HTTP request latency by route template.",
        ["route", "method"],
        registry=registry,
    )

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = "500"  # an exception nobody handled is answered 500: count it as such
        try:
            response = await call_next(request)
            status = str(response.status_code)
            return response
        finally:
            # The route template, not the raw path: ids would explode the label space.
            route = getattr(request.scope.get("route"), "path", "unmatched")
            requests.labels(route, request.method, status).inc()
            latency.labels(route, request.method).observe(time.perf_counter() - started)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status == 401 else {}
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=headers)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        # The same answer for "no such id" and "another tenant's id": nothing leaks.
        return JSONResponse({"detail": f"{exc.what} not found"}, status_code=404)

    @app.exception_handler(UpstreamError)
    async def upstream(request: Request, exc: UpstreamError) -> JSONResponse:
        headers = {"Retry-After": "60"} if exc.status == 503 else {}
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(AfasaOpsError)
    async def domain_error(request: Request, exc: AfasaOpsError) -> JSONResponse:
        # The platform's own checks (a report range it refuses): the caller's mistake.
        if isinstance(exc, UsageError):
            return JSONResponse({"detail": redact(str(exc))}, status_code=422)
        return JSONResponse({"detail": redact(str(exc))}, status_code=502)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, 422)


def _field_error(err: Any) -> dict[str, str]:
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return {"field": cause.field, "message": cause.message}
    if err.get("type") == "json_invalid":
        # loc is ("body", <character offset>): a position, not a field.
        where = next((p for p in err.get("loc", ()) if isinstance(p, int)), None)
        at = f" at character {where}" if where is not None else ""
        return {"field": "body", "message": f"malformed JSON{at}: {cause or 'decode error'}"}
    # loc is ("body", "format") or ("query", "provider") or ("path", "device_id").
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or "body"
    return {"field": field, "message": str(err.get("msg", "invalid"))}
