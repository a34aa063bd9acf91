"""The PostgreSQL driver: connections with explicit timeouts, errors translated, DSNs redacted.

Every database call of the tool goes through here. psycopg errors become DriverError or
BlockedError with one line that names the database (password masked) and what to do. The
password of every DSN handed to this module is taught to the global redactor first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from afasa_ops.errors import AfasaOpsError, BlockedError, DriverError
from afasa_ops.redact import redactor

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Engine

    from afasa_ops.config import DatabaseSection

# SQLSTATEs that mean "someone else holds it" rather than "this is broken".
LOCK_STATES = {"55P03"}  # lock_not_available (lock_timeout)
AUTH_STATES = {"28P01", "28000"}  # invalid_password, invalid_authorization_specification


def redact_dsn(dsn: str) -> str:
    """The DSN with its password masked: safe to print, journal and bundle."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password is not None:
            redactor.add(parts.password)
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            netloc = f"{parts.username or ''}:***@{host}"
            return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return dsn
    return redactor.redact(dsn)


def dsn_target(dsn: str) -> str:
    """user@host:port/dbname for messages (no password, no query)."""
    if "://" in dsn:
        p = urlsplit(dsn)
        port = f":{p.port}" if p.port else ""
        return f"{p.username or ''}@{p.hostname or 'localhost'}{port}{p.path or '/'}"
    return redact_dsn(dsn)


def sqlalchemy_url(dsn: str) -> str:
    """A SQLAlchemy URL for psycopg 3 from a libpq URL DSN."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


@dataclass(frozen=True)
class Timeouts:
    """Every wait a database session can make, as values ([database] *_timeout_s)."""

    connect_s: float = 5.0
    lock_s: float = 10.0
    statement_s: float = 300.0
    # How long an engine waits for a free pooled connection.
    pool_s: float = 30.0

    @classmethod
    def of(cls, db: DatabaseSection) -> Timeouts:
        return cls(
            connect_s=db.connect_timeout_s,
            lock_s=db.lock_timeout_s,
            statement_s=db.statement_timeout_s,
            pool_s=db.pool_timeout_s,
        )

    def options(self) -> str:
        # Passed at connect time so every statement of the session, including the first, is
        # bounded: no hidden infinite waits on a lock held by a running service.
        return (
            f"-c lock_timeout={int(self.lock_s * 1000)} "
            f"-c statement_timeout={int(self.statement_s * 1000)}"
        )


def translate(exc: BaseException, dsn: str, doing: str) -> AfasaOpsError:
    """The most specific project error for a psycopg exception, one line, password masked."""
    import psycopg

    where = dsn_target(dsn)
    text = redactor.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    state = getattr(exc, "sqlstate", None)
    if isinstance(exc, psycopg.OperationalError) and state is None:
        lowered = text.lower()
        if "authentication" in lowered or ('role "' in lowered and "does not exist" in lowered):
            return DriverError(
                f"PostgreSQL at {where} refused the credentials while {doing}: {text}",
                hint="check the user and password of the DSN ([database] admin_dsn / app_dsn)",
            )
        if "does not exist" in lowered and "database" in lowered:
            return DriverError(
                f"PostgreSQL at {where}: {text}", hint="create the database or fix the DSN"
            )
        return DriverError(
            f"cannot reach PostgreSQL at {where} while {doing}: {text}",
            hint="is the server running and the host/port in the DSN right?",
        )
    if state in AUTH_STATES:
        return DriverError(
            f"PostgreSQL at {where} refused the credentials while {doing}: {text}",
            hint="check the user and password of the DSN ([database] admin_dsn / app_dsn)",
        )
    if state in LOCK_STATES:
        return BlockedError(
            f"PostgreSQL at {where}: a lock was not granted within lock_timeout while {doing}",
            hint="another session holds it; retry when it is done or raise "
            "[database] lock_timeout_s",
        )
    if state == "57014":  # query_canceled: statement_timeout
        return DriverError(
            f"PostgreSQL at {where}: a statement ran past statement_timeout while {doing}",
            hint="raise [database] statement_timeout_s or find what blocks it",
        )
    return DriverError(f"PostgreSQL at {where} failed while {doing}: {text}")


@contextmanager
def translated(dsn: str, doing: str) -> Iterator[None]:
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc, dsn, doing) from exc


def connect(
    dsn: str, *, timeouts: Timeouts | None = None, autocommit: bool = True
) -> psycopg.Connection[Any]:
    """A psycopg connection with lock/statement timeouts set for the session."""
    import psycopg

    redact_dsn(dsn)  # teaches the redactor the password before anything can print it
    t = timeouts or Timeouts()
    with translated(dsn, "connecting"):
        return psycopg.connect(
            dsn,
            autocommit=autocommit,
            connect_timeout=max(1, int(t.connect_s)),
            options=t.options(),
            application_name="afasa-ops",
        )


class Postgres:
    """One lazily opened admin connection per run (Context.postgres)."""

    def __init__(self, dsn: str, timeouts: Timeouts | None = None) -> None:
        self.dsn = dsn
        self.timeouts = timeouts or Timeouts()
        self._conn: psycopg.Connection[Any] | None = None
        redact_dsn(dsn)

    @property
    def target(self) -> str:
        return dsn_target(self.dsn)

    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, timeouts=self.timeouts)
        return self._conn

    def rows(self, sql: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> list[Any]:
        with translated(self.dsn, "querying"):
            return list(self.conn().execute(sql, params).fetchall())

    def scalar(self, sql: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None


def make_engine(
    dsn: str,
    *,
    timeouts: Timeouts | None = None,
    pool_size: int = 5,
    max_overflow: int | None = None,
    application_name: str = "afasa-ops",
) -> Engine:
    """The one SQLAlchemy 2 engine factory (psycopg 3) of every process (the CLI, `serve`, the
    workers): connect, lock and statement timeouts on every connection, a bounded wait for
    the pool, and the DSN's password taught to the redactor first."""
    from sqlalchemy import create_engine

    redact_dsn(dsn)
    t = timeouts or Timeouts()
    return create_engine(
        sqlalchemy_url(dsn),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=t.pool_s,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": max(1, int(t.connect_s)),
            "options": t.options(),
            "application_name": application_name,
        },
    )
