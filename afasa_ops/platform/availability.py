"""Telling an outage from a failure.

A dependency that does not answer (PostgreSQL down, restarting or out of reach, the pool
exhausted, S3 refusing connections) says nothing about the job or the request that met it:
the workers hold their work until it answers again, the API answers 503. Everything else is a
failure of the work itself. This module is the one place that decides which is which.
"""

from __future__ import annotations

from collections.abc import Iterator

from afasa_ops.errors import DriverError

DATABASE = "database"
STORAGE = "storage"

# SQLSTATEs that mean the server is going away or not yet there, not that the SQL is wrong.
# Class 08 (connection exception) is matched by prefix.
_DB_UNAVAILABLE_STATES = {
    "57P01",  # admin_shutdown: terminating connection due to administrator command
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: the database system is starting up / shutting down
    "53300",  # too_many_connections
}
# A statement or lock timeout on a request path: the database is slow or hung, retry later.
_DB_BUSY_STATES = {"57014", "55P03"}


class Unavailable(DriverError):
    """A dependency did not answer. `dependency` is "database" or "storage"."""

    def __init__(self, dependency: str, message: str) -> None:
        super().__init__(message)
        self.dependency = dependency


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's .orig) and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        orig = getattr(cur, "orig", None)
        todo += [cur.__cause__, cur.__context__, orig if isinstance(orig, BaseException) else None]


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def outage_of(exc: BaseException) -> str | None:
    """The dependency this exception says is unavailable, or None for a real failure."""
    try:
        import psycopg
        from sqlalchemy import exc as saexc
    except ImportError:  # pragma: no cover - both are dependencies of the package
        return None
    for cur in _chain(exc):
        if isinstance(cur, Unavailable):
            return cur.dependency
        if isinstance(cur, saexc.TimeoutError):  # QueuePool: no connection within pool_timeout
            return DATABASE
        if isinstance(cur, saexc.DBAPIError) and cur.connection_invalidated:
            return DATABASE
        if isinstance(cur, psycopg.OperationalError):
            state = _sqlstate(cur)
            # No SQLSTATE: the server never answered (refused, reset, timed out, closed).
            if state is None or state.startswith("08") or state in _DB_UNAVAILABLE_STATES:
                return DATABASE
    return None


def busy_or_unavailable(exc: BaseException) -> str | None:
    """For request paths: an outage, or the database too slow to answer in time."""
    found = outage_of(exc)
    if found is not None:
        return found
    for cur in _chain(exc):
        if _sqlstate(cur) in _DB_BUSY_STATES:
            return DATABASE
    return None


def one_line(exc: BaseException) -> str:
    """The innermost useful message of an exception, on one line."""
    for cur in _chain(exc):
        orig = getattr(cur, "orig", None)
        if isinstance(orig, BaseException):
            cur = orig
        text = str(cur).strip().splitlines()
        if text:
            return f"{type(cur).__name__}: {text[0]}"
    return type(exc).__name__
