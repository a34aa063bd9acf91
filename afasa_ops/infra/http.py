"""The HTTP driver: httpx clients whose timeouts are explicit values, and the one place
httpx's errors are translated (into HttpFailure, a DriverError naming what was asked).

httpx is imported inside functions so `afasa-ops --help` never loads it, and without its
command-line client (see below).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from afasa_ops.errors import DriverError
from afasa_ops.redact import redactor

if TYPE_CHECKING:
    import ssl

    import httpx


# httpx's __init__ imports its own command-line client (click, rich.syntax, every pygments
# lexer) whenever those are installed, and typer installs them: a third of the cost of
# `import httpx`, for a `main` afasa-ops never calls. A None entry makes that import fail,
# which httpx handles by defining a stub instead. Every module that imports httpx for a
# command imports this one first (infra/docker.py does).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


class HttpFailure(DriverError):
    """A request got no usable answer: it timed out, the connection failed, or (where the
    caller asked for it) the status was an error. `reason` is short: the httpx error's name."""

    def __init__(self, message: str, *, reason: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.timed_out = timed_out


@contextmanager
def translated(what: str, timeout_s: float) -> Iterator[None]:
    """httpx errors raised inside become HttpFailure: `WHAT timed out after Ns`, or
    `WHAT: ErrorName: detail` (redacted)."""
    import httpx

    try:
        yield
    except httpx.TimeoutException as exc:
        raise HttpFailure(
            f"{what} timed out after {timeout_s:g}s", reason=type(exc).__name__, timed_out=True
        ) from exc
    except httpx.HTTPError as exc:
        raise HttpFailure(
            f"{what}: {type(exc).__name__}: {redactor.redact(str(exc))}",
            reason=type(exc).__name__,
        ) from exc


def client(timeout_s: float, *, base_url: str = "", follow_redirects: bool = False) -> httpx.Client:
    """A client for several requests; every request is bounded by timeout_s. https requests
    are verified (_ssl_context); the CA bundle is loaded at the first of them, so a process
    that only speaks plain http (Traefik's API and entrypoint, a local API) never pays for it."""
    import httpx

    return httpx.Client(
        base_url=base_url,
        timeout=timeout_s,
        follow_redirects=follow_redirects,
        # Plain http never reaches TLS: its transport needs no CA bundle.
        transport=httpx.HTTPTransport(verify=False),
        mounts={"https://": _verifying_transport()},
    )


def _verifying_transport() -> httpx.BaseTransport:
    return _verifying_on_demand_class()()


@functools.cache
def _verifying_on_demand_class() -> type[httpx.BaseTransport]:
    """Defined at first use (it subclasses httpx's transport, and httpx loads on demand)."""
    import httpx

    class VerifyingOnDemand(httpx.BaseTransport):
        """httpx's verifying transport, made at the first https request."""

        def __init__(self) -> None:
            self._inner: httpx.HTTPTransport | None = None

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if self._inner is None:
                self._inner = httpx.HTTPTransport(verify=_ssl_context())
            return self._inner.handle_request(request)

        def close(self) -> None:
            if self._inner is not None:
                self._inner.close()

    return VerifyingOnDemand


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CAs, SSL_CERT_FILE/SSL_CERT_DIR honoured),
    built once per process: loading the CA bundle costs tens of milliseconds per client, and
    the routing checks make a client per probe round."""
    import httpx

    return httpx.create_ssl_context()


def request(
    method: str,
    url: str,
    *,
    timeout_s: float,
    what: str | None = None,
    using: httpx.Client | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request (on `using`, else a one-off client). A transport failure raises
    HttpFailure naming `what` (default: METHOD URL); any status is returned."""
    import httpx

    with translated(what or f"{method} {url}", timeout_s):
        if using is not None:
            return using.request(method, url, **kwargs)
        return httpx.request(method, url, timeout=timeout_s, **kwargs)
